// mtsam: fine-tune Segment Anything for several dense tasks at once with ToRA (or any adapter of
// the LoRA family), evaluate, predict, fold adapters into per-task weights, and count
// parameters.

#include "cli_config.hpp"
#include "commands.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <vector>

namespace {

using mtsam::cli::CheckpointArgs;
using mtsam::cli::ConfigArgs;
using mtsam::cli::TrainArgs;

void add_config_options(CLI::App& app, ConfigArgs& args, bool file) {
  if (file) {
    app.add_option("-c,--config", args.config, "TOML configuration file (see examples/)")
        ->check(CLI::ExistingFile);
  }
  app.add_option("-s,--set", args.sets,
                 "Override a configuration key, e.g. -s train.lr=1e-4 -s adapter.p=16 "
                 "(repeatable; TOML values, bare text for paths)");
  app.add_option("--sam", args.sam, "SAM checkpoint (.pth or safetensors): model.checkpoint");
  app.add_option("--data", args.data_root, "Data set folder: data.root");
  app.add_option("--device", args.device, "cpu, cuda, cuda:N or auto (default: auto)");
}

std::string one_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  return text;
}

std::string program_description() {
  return "mtsam: multi-task fine-tuning of Segment Anything with ToRA and the LoRA family.\n\n"
         "Examples:\n"
         "  mtsam train -c examples/nyuv2.toml --sam sam_vit_l_0b3195.pth --data data/nyuv2\n"
         "  mtsam train -c examples/nyuv2.toml --resume        (continue after Ctrl-C)\n"
         "  mtsam eval out/nyuv2                              (test metrics of the best epoch)\n"
         "  mtsam predict out/nyuv2 room.jpg -o out/          (one PNG per task)\n"
         "  mtsam merge out/nyuv2 -o deploy/                  (per-task weights, no adapters)\n"
         "  mtsam info -c examples/nyuv2.toml                  (trainable parameters per method)";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(program_description(), "mtsam");
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show the help of every command");

  TrainArgs train_args;
  auto* train = app.add_subcommand("train", "Fine-tune MTSAM on a data set");
  add_config_options(*train, train_args, true);
  train->add_option("-m,--method", train_args.method,
                    "lora-hps, lora-stl, multilora, hydralora, terra, tora or full");
  train->add_option("-o,--output", train_args.output, "Output folder: train.output_dir");
  train->add_option("--epochs", train_args.epochs, "train.epochs");
  train->add_option("--batch-size", train_args.batch_size, "train.batch_size");
  train->add_option("--lr", train_args.lr, "train.lr");
  train->add_option("--seed", train_args.seed, "train.seed");
  train
      ->add_option("--baseline", train_args.baseline,
                   "Results file (e.g. a LoRA-HPS run's results.json) for Delta_b")
      ->check(CLI::ExistingFile);
  train->add_flag("--resume", train_args.resume, "Continue the run saved in the output folder");
  train->add_flag("--require-improvement", train_args.require_improvement,
                  "Exit with status 4 unless every task's test metrics improved over the "
                  "evaluation before training (needs train.eval_before)");

  CheckpointArgs eval_args;
  int64_t max_samples = 0;
  auto* eval = app.add_subcommand("eval", "Evaluate a checkpoint on the test split");
  eval->add_option("checkpoint", eval_args.checkpoint, "Checkpoint folder or run folder")
      ->required();
  add_config_options(*eval, eval_args, false);
  eval->add_option("-o,--output", eval_args.output, "Write the results as JSON to this file");
  eval->add_option("--max-samples", max_samples, "Evaluate the first N test samples only");

  CheckpointArgs predict_args;
  std::vector<std::string> images;
  bool npy = false;
  auto* predict = app.add_subcommand("predict", "Predict every task for images: one PNG per task");
  predict->add_option("checkpoint", predict_args.checkpoint, "Checkpoint folder or run folder")
      ->required();
  predict->add_option("images", images, "PNG or JPEG images")->required()->check(CLI::ExistingFile);
  add_config_options(*predict, predict_args, false);
  predict->add_option("-o,--output", predict_args.output, "Output folder (default: predictions)");
  predict->add_flag("--npy", npy, "Also write each task's raw output as .npy");

  CheckpointArgs merge_args;
  auto* merge = app.add_subcommand("merge", "Fold the adapters into per-task weights");
  merge->add_option("checkpoint", merge_args.checkpoint, "Checkpoint folder or run folder")
      ->required();
  add_config_options(*merge, merge_args, false);
  merge->add_option("-o,--output", merge_args.output,
                    "Output folder (default: <checkpoint>/merged)");

  ConfigArgs info_args;
  std::vector<std::string> methods;
  auto* info =
      app.add_subcommand("info", "Trainable parameters of each method for a configuration");
  add_config_options(*info, info_args, true);
  info->add_option("--methods", methods, "Methods to count (default: all multi-task methods)");

  const auto is_command = [&app](const char* name) {
    const CLI::App& root = app;
    const std::function<bool(const CLI::App*)> every = [](const CLI::App*) { return true; };
    for (const auto* command : root.get_subcommands(every)) {
      if (command->check_name(name)) {
        return true;
      }
    }
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !is_command(argv[1])) {
    std::fprintf(stderr,
                 "mtsam: error: unknown command '%s' (commands: train, eval, predict, merge, "
                 "info; see mtsam --help)\n",
                 argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const std::string message = one_line(e.what());
    const auto* command = app.get_subcommands().empty() ? nullptr : app.get_subcommands().front();
    std::fprintf(stderr, "mtsam: error: %s (see mtsam %s--help)\n", message.c_str(),
                 command != nullptr ? (command->get_name() + " ").c_str() : "");
    return 2;
  }

  try {
    if (*train)
      return mtsam::cli::train_command(train_args);
    if (*eval)
      return mtsam::cli::eval_command(eval_args, max_samples);
    if (*predict)
      return mtsam::cli::predict_command(predict_args, images, npy);
    if (*merge)
      return mtsam::cli::merge_command(merge_args);
    if (*info)
      return mtsam::cli::info_command(info_args, methods);
  } catch (const mtsam::cli::UsageError& e) {
    std::fprintf(stderr, "mtsam: error: %s\n", one_line(e.what()).c_str());
    return 2;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "mtsam: error: %s\n", one_line(e.what()).c_str());
    return 2;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "mtsam: error: %s\n", one_line(e.what_without_backtrace()).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mtsam: error: %s\n", one_line(e.what()).c_str());
    return 1;
  }
  return 0;
}
