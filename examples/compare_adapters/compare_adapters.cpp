// Every adapter on the same model and data, as in the paper's tables: the quick start's
// configuration fine-tuned once per method (LoRA-HPS always, first: the reference of Delta_b),
// then one table with each method's test metrics, trainable parameters and Delta_b against
// LoRA-HPS. Exits with 1 when a method did not finish.
//
//   compare_adapters [--config examples/quickstart.toml] [--epochs N] [--rank R]
//                    [--methods lora-hps,tora,...] [--output out/compare]
//
// The backbone checkpoint the configuration names must exist (scripts/quickstart.sh makes it).

#include "cli_config.hpp"

#include <mtsam/train.hpp>
#include <tora/tora.hpp>

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace mtsam;

namespace {

struct Arguments {
  fs::path config = "examples/quickstart.toml";
  std::optional<int64_t> epochs;
  std::optional<int64_t> rank;
  std::vector<std::string> methods = {"lora-hps", "lora-stl", "multilora", "hydralora",
                                      "terra",    "tora",     "full"};
  fs::path output = "out/compare";
};

int compare(const Arguments& args) {
  const auto base = cli::load_config(args.config, {});
  if (!base.model.checkpoint.empty() && !fs::is_regular_file(base.model.checkpoint)) {
    throw cli::UsageError("the backbone '" + base.model.checkpoint.string() +
                          "' does not exist yet: run scripts/quickstart.sh (or "
                          "quickstart_backbone) first");
  }
  const auto specs = train::experiment_tasks(base.data);
  const auto heads = train::task_heads(specs);

  // LoRA-HPS is the reference of Delta_b: trained first, whether it was asked for or not.
  const std::string reference_method = "lora-hps";
  std::vector<std::string> methods = {reference_method};
  for (const auto& name : args.methods) {
    tora::method_from_string(name);  // an unknown name fails here, before any training
    if (name != reference_method) {
      methods.push_back(name);
    }
  }
  std::vector<train::ResultRow> rows;
  std::optional<std::vector<train::TaskEvaluation>> reference;
  std::vector<std::string> failed;
  for (const auto& name : methods) {
    auto config = base;
    config.adapter.method = tora::method_from_string(name);
    if (args.rank) {
      config.adapter.rank = *args.rank;
      config.adapter.alpha = static_cast<double>(*args.rank);
    }
    config.train.eval_before(false).eval_every(0).report_images(2).output_dir(args.output / name);
    if (args.epochs) {
      config.train.epochs(*args.epochs);
    }
    torch::manual_seed(config.train.seed());
    auto model = train::build_model(config, specs);
    auto [train_split, test_split] = train::experiment_data(config, specs);
    int64_t parameters = 0;
    for (const auto& [key, tensor] : train::named_trainable(*model)) {
      parameters += tensor.numel();
    }
    std::printf("%-10s %.3f M trainable parameters, training %ld epochs...\n", name.c_str(),
                static_cast<double>(parameters) / 1e6, static_cast<long>(config.train.epochs()));
    std::fflush(stdout);
    train::Trainer trainer(config.train, train::trainable_model(model, config.regularizer), heads,
                           train_split, test_split);
    const auto result = trainer.run();
    if (result.status != train::RunStatus::finished || result.evaluations.empty()) {
      std::printf("%-10s stopped: %s\n", name.c_str(), result.message.c_str());
      if (name == reference_method) {
        throw std::runtime_error("the reference method " + reference_method +
                                 " did not finish, so there is no Delta_b to give");
      }
      failed.push_back(name);
      continue;
    }
    const auto tasks = result.evaluations.back().tasks;
    const auto reported = train::reported_metrics(tasks, heads);
    if (name == reference_method) {
      reference = reported;
    }
    rows.push_back({name, tasks, parameters, train::delta_b(reported, *reference)});
    std::printf("%-10s done: %ld steps\n", name.c_str(), static_cast<long>(result.steps));
  }
  std::printf("\nAdapters compared on %s (%s; Δb against %s):\n", base.data.dataset.c_str(),
              base.name.c_str(), reference_method.c_str());
  const auto table = train::results_table(specs, rows);
  std::fwrite(table.data(), 1, table.size(), stdout);
  std::printf("(mIoU, Pix Acc and the within-t shares in %%; reports in %s/<method>/report.html)\n",
              args.output.string().c_str());
  if (!failed.empty()) {
    std::string names;
    for (const auto& name : failed) {
      names += (names.empty() ? "" : ", ") + name;
    }
    std::fprintf(stderr, "compare_adapters: these methods did not finish: %s\n", names.c_str());
    return 1;
  }
  return 0;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  for (std::string item; std::getline(stream, item, ',');) {
    if (!item.empty()) {
      items.push_back(item);
    }
  }
  return items;
}

}  // namespace

int main(int argc, char** argv) {
  Arguments args;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--config" && has_value) {
      args.config = argv[++i];
    } else if (arg == "--epochs" && has_value) {
      args.epochs = std::atoll(argv[++i]);
    } else if (arg == "--rank" && has_value) {
      args.rank = std::atoll(argv[++i]);
    } else if (arg == "--methods" && has_value) {
      args.methods = split_list(argv[++i]);
    } else if (arg == "--output" && has_value) {
      args.output = argv[++i];
    } else {
      std::fprintf(stderr,
                   "compare_adapters: error: unknown argument '%s' (usage: compare_adapters "
                   "[--config FILE] [--epochs N] [--rank R] [--methods a,b,...] [--output DIR])\n",
                   arg.c_str());
      return 2;
    }
  }
  try {
    return compare(args);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "compare_adapters: error: %s\n", e.what_without_backtrace());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "compare_adapters: error: %s\n", e.what());
  }
  return 1;
}
