#pragma once

// The subcommands of `mtsam`: train, eval, predict, merge, info.

#include "cli_config.hpp"
#include "progress.hpp"

#include <mtsam/data.hpp>
#include <mtsam/train.hpp>
#include <tora/tora.hpp>

#include <fmt/format.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mtsam::cli {

namespace fs = std::filesystem;
using Settings = std::vector<std::pair<std::string, nlohmann::json>>;

/// What every command that reads a configuration accepts.
struct ConfigArgs {
  std::string config;
  std::vector<std::string> sets;
  std::string sam;
  std::string data_root;
  std::string device;

  Settings settings() const {
    Settings out;
    if (!sam.empty())
      out.emplace_back("model.checkpoint", sam);
    if (!data_root.empty())
      out.emplace_back("data.root", data_root);
    if (!device.empty())
      out.emplace_back("train.device", device);
    return out;
  }
};

struct TrainArgs : ConfigArgs {
  std::string method, output, baseline;
  std::optional<int64_t> epochs, batch_size;
  std::optional<uint64_t> seed;
  std::optional<double> lr;
  bool resume = false;
  bool require_improvement = false;
};

struct CheckpointArgs : ConfigArgs {
  std::string checkpoint;
  std::string output;
};

inline std::atomic<bool> stop_requested{false};

inline void on_interrupt(int) {
  stop_requested = true;
  std::signal(SIGINT, SIG_DFL);
}

inline void out(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

inline int64_t count_trainable(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& [name, tensor] : train::named_trainable(module)) {
    n += tensor.numel();
  }
  return n;
}

/// One line per task: its reported metrics before -> after, and whether the task improved (the
/// mean signed relative change of those metrics is positive, as in Delta_b).
inline std::string task_changes(const train::Evaluation& before, const train::Evaluation& after,
                                const std::vector<train::TaskHead>& heads, bool& all_better) {
  std::string text;
  all_better = true;
  const auto b = train::reported_metrics(before.tasks, heads);
  const auto a = train::reported_metrics(after.tasks, heads);
  const auto shown = [](const train::MetricValue& m) {
    return train::is_percentage(m.name) ? fmt::format("{:.2f}", 100.0 * m.value)
                                        : fmt::format("{:.4g}", m.value);
  };
  for (size_t t = 0; t < a.size(); ++t) {
    const bool better = train::delta_b({a[t]}, b).value_or(0.0) > 0.0;
    all_better = all_better && better;
    std::string metrics;
    for (const auto& m : a[t].metrics) {
      for (const auto& task : b) {
        const auto* was = task.task == a[t].task ? task.find(m.name) : nullptr;
        if (was != nullptr) {
          metrics += fmt::format("{}{} {} -> {}", metrics.empty() ? "" : ", ", m.name, shown(*was),
                                 shown(m));
        }
      }
    }
    text += fmt::format("  {:<9} {}: {}\n", a[t].task, better ? "better" : "NOT better", metrics);
  }
  return text;
}

inline int train_command(const TrainArgs& args) {
  auto settings = args.settings();
  if (!args.method.empty())
    settings.emplace_back("adapter.method", args.method);
  if (!args.output.empty())
    settings.emplace_back("train.output_dir", args.output);
  if (!args.baseline.empty())
    settings.emplace_back("baseline", args.baseline);
  if (args.epochs)
    settings.emplace_back("train.epochs", *args.epochs);
  if (args.batch_size)
    settings.emplace_back("train.batch_size", *args.batch_size);
  if (args.lr)
    settings.emplace_back("train.lr", *args.lr);
  if (args.seed)
    settings.emplace_back("train.seed", *args.seed);
  if (args.resume)
    settings.emplace_back("train.resume", true);
  const auto config = load_config(args.config, args.sets, settings);
  if (args.require_improvement && !config.train.eval_before()) {
    throw UsageError(
        "--require-improvement compares with the evaluation before training: set "
        "train.eval_before = true");
  }
  const auto specs = train::experiment_tasks(config.data);
  const auto heads = train::task_heads(specs);
  train::ensure_writable_directory(config.train.output_dir());

  Progress progress;
  std::string names;
  for (const auto& spec : specs)
    names += (names.empty() ? "" : ", ") + spec.name;
  progress.say(fmt::format("mtsam train: {} | {} data, tasks {} | {} | device {}", config.name,
                           config.data.dataset, names, tora::to_string(config.adapter.method),
                           config.train.device().str()));
  torch::manual_seed(config.train.seed());
  auto model = train::build_model(config, specs);
  auto [train_split, test_split] = train::experiment_data(config, specs);
  progress.say(fmt::format("model: SAM {} at {}px from {} | {:.3f} M trainable parameters",
                           config.model.preset, config.model.image_size,
                           config.model.checkpoint.empty() ? std::string("random weights")
                                                           : config.model.checkpoint.string(),
                           static_cast<double>(count_trainable(*model)) / 1e6));
  progress.say(fmt::format("data: {} training and {} test samples | output {}", train_split.size,
                           test_split.size, config.train.output_dir().string()));

  train::TrainerCallbacks callbacks;
  callbacks.on_step = [&](const train::StepRecord& s) { progress.step(s); };
  callbacks.on_evaluation_progress = [&](int64_t done, int64_t total) {
    progress.evaluating(done, total);
  };
  callbacks.on_evaluation = [&](const train::Evaluation& e) {
    std::string line = fmt::format("evaluation after epoch {} (step {}):", e.epoch, e.step);
    for (const auto& task : train::reported_metrics(e.tasks, heads)) {
      for (const auto& m : task.metrics) {
        line += fmt::format(" {} {} {:.4g};", task.task, m.name, m.value);
      }
    }
    if (e.delta_b)
      line += fmt::format(" Δb {:+.2f}%", 100.0 * *e.delta_b);
    progress.say(line);
  };
  callbacks.should_stop = [&] {
    if (stop_requested.exchange(false)) {
      progress.say("interrupted: saving the state after this step (Ctrl-C again to quit now)");
      return true;
    }
    return false;
  };
  train::Trainer trainer(config.train, train::trainable_model(model, config.regularizer), heads,
                         train_split, test_split, callbacks);
  if (!config.baseline.empty())
    trainer.set_baseline(train::read_results(config.baseline));
  trainer.set_description(config.name, train::to_json(config));
  std::signal(SIGINT, on_interrupt);
  const auto result = trainer.run();
  std::signal(SIGINT, SIG_DFL);
  progress.clear();

  if (result.status == train::RunStatus::diverged) {
    progress.say("mtsam: training diverged: " + result.message);
    return 3;
  }
  if (result.status == train::RunStatus::interrupted) {
    progress.say("mtsam: " + result.message + " (run again with --resume)");
    return 130;
  }
  bool all_better = true;
  std::vector<train::ResultRow> rows;
  // Delta_b against the run's own first evaluation is what picks the best checkpoint; against
  // an untrained start it is not a figure to read, so the table shows it for a baseline only.
  const bool show_delta = !config.baseline.empty();
  if (result.before) {
    rows.push_back({"before fine-tuning", result.before->tasks, std::nullopt, std::nullopt});
  }
  if (!result.evaluations.empty()) {
    const auto& last = result.evaluations.back();
    const auto delta = [&](const train::Evaluation& e) {
      return show_delta ? e.delta_b : std::nullopt;
    };
    rows.push_back({fmt::format("after fine-tuning ({} steps)", last.step), last.tasks,
                    count_trainable(*model), delta(last)});
    if (result.best && result.best->step != last.step && result.best->step != 0) {
      rows.push_back({fmt::format("best evaluation (step {})", result.best->step),
                      result.best->tasks, std::nullopt, delta(*result.best)});
    }
    out(fmt::format("\nTest metrics of {} ({}{}; mIoU, Pix Acc and within-t in %):\n", config.name,
                    tora::to_string(config.adapter.method),
                    show_delta ? ", Δb against " + config.baseline.string() : std::string()));
    out(train::results_table(specs, rows));
    nlohmann::json results = train::to_json(last);
    results["name"] = config.name;
    results["method"] = tora::to_string(config.adapter.method);
    results["trainable_parameters"] = count_trainable(*model);
    train::write_text_atomically(config.train.output_dir() / "results.json",
                                 results.dump(2) + "\n");
    if (result.before) {
      const auto changes = task_changes(*result.before, last, heads, all_better);
      out(fmt::format("\nChange per task (before -> after):\n{}{}\n", changes,
                      all_better ? "Every task improved." : "Not every task improved."));
    }
  }
  out(fmt::format("report: {}\ncheckpoints: {}\n", result.report.string(),
                  (config.train.output_dir() / "checkpoints").string()));
  if (args.require_improvement && (!all_better || !result.before)) {
    progress.say(result.before ? "mtsam: not every task improved over the evaluation before "
                                 "training"
                               : "mtsam: the run holds no evaluation before training to compare "
                                 "with");
    return 4;
  }
  return 0;
}

/// A checkpoint folder (config.json + trainable.safetensors), or a run folder's best (else last).
inline fs::path resolve_checkpoint(const fs::path& path) {
  const auto is_checkpoint = [](const fs::path& p) {
    return fs::is_regular_file(p / "config.json") && fs::is_regular_file(p / train::trainable_file);
  };
  for (const auto& candidate :
       {path, path / "checkpoints" / "best", path / "checkpoints" / "last"}) {
    if (is_checkpoint(candidate))
      return candidate;
  }
  throw UsageError("'" + path.string() +
                   "' is neither a checkpoint folder (config.json, trainable.safetensors) nor a "
                   "run folder with checkpoints/best or checkpoints/last");
}

/// The model of a checkpoint folder, rebuilt from its config.json (plus overrides) and loaded.
struct LoadedCheckpoint {
  train::ExperimentConfig config;
  std::vector<data::TaskSpec> specs;
  MTSAM model{nullptr};
  train::TrainableModel trainable;
};

inline LoadedCheckpoint load_checkpoint(const CheckpointArgs& args) {
  const auto folder = resolve_checkpoint(args.checkpoint);
  Settings settings = {{"train.device", "auto"}, {"train.resume", false}};
  for (auto& item : args.settings())
    settings.push_back(std::move(item));
  std::vector<std::string> sets = args.sets;
  LoadedCheckpoint loaded;
  loaded.config = load_config(args.config.empty() ? folder / "config.json" : fs::path(args.config),
                              sets, settings);
  loaded.specs = train::experiment_tasks(loaded.config.data);
  torch::manual_seed(loaded.config.train.seed());
  loaded.model = train::build_model(loaded.config, loaded.specs);
  train::load_mtsam_checkpoint(*loaded.model, folder);
  loaded.model->to(loaded.config.train.device());
  loaded.model->eval();
  loaded.trainable = train::trainable_model(loaded.model, loaded.config.regularizer);
  return loaded;
}

inline int eval_command(const CheckpointArgs& args, int64_t max_samples) {
  auto loaded = load_checkpoint(args);
  auto [train_split, test_split] = train::experiment_data(loaded.config, loaded.specs);
  Progress progress;
  const auto heads = train::task_heads(loaded.specs);
  const auto evaluation =
      train::evaluate(loaded.trainable, heads, test_split,
                      train::EvaluateOptions()
                          .batch_size(loaded.config.train.eval_batch_size())
                          .max_samples(max_samples)
                          .device(loaded.config.train.device())
                          .progress([&](int64_t d, int64_t t) { progress.evaluating(d, t); }));
  progress.clear();
  std::optional<double> delta;
  if (!loaded.config.baseline.empty()) {
    delta = train::delta_b(train::reported_metrics(evaluation.tasks, heads),
                           train::read_results(loaded.config.baseline));
  }
  out(fmt::format("Test metrics of {} on {} samples:\n", args.checkpoint, evaluation.samples));
  const std::vector<train::ResultRow> rows = {
      {std::string(tora::to_string(loaded.config.adapter.method)), evaluation.tasks,
       count_trainable(*loaded.model), delta}};
  out(train::results_table(loaded.specs, rows));
  if (!args.output.empty()) {
    auto results = train::to_json(evaluation);
    results["delta_b"] = delta ? nlohmann::json(*delta) : nlohmann::json(nullptr);
    train::write_text_atomically(args.output, results.dump(2) + "\n");
    out("results: " + args.output + "\n");
  }
  return 0;
}

inline int predict_command(const CheckpointArgs& args, const std::vector<std::string>& images,
                           bool npy) {
  auto loaded = load_checkpoint(args);
  const fs::path folder = args.output.empty() ? fs::path("predictions") : fs::path(args.output);
  train::ensure_writable_directory(folder);
  torch::NoGradGuard no_grad;
  for (const auto& path : images) {
    const auto pixels = data::read_image(path, 3);  // [H, W, 3] uint8
    const auto image = pixels.permute({2, 0, 1}).to(torch::kFloat32).div(255.0).unsqueeze(0);
    const auto outputs = loaded.trainable.forward(image.to(loaded.config.train.device()));
    const std::string stem = fs::path(path).stem().string();
    for (size_t t = 0; t < loaded.specs.size(); ++t) {
      const auto& spec = loaded.specs[t];
      const auto file = folder / (stem + "_" + spec.name + ".png");
      data::write_png(file, train::render_prediction(spec, outputs[t][0]));
      out(file.string() + "\n");
      if (npy) {
        data::write_npy(folder / (stem + "_" + spec.name + ".npy"),
                        outputs[t][0].to(torch::kCPU).contiguous());
      }
    }
  }
  return 0;
}

inline int merge_command(const CheckpointArgs& args) {
  auto loaded = load_checkpoint(args);
  const fs::path folder =
      args.output.empty() ? fs::path(args.checkpoint) / "merged" : fs::path(args.output);
  train::ensure_writable_directory(folder);
  auto& model = *loaded.model;
  const int64_t size = model.options.shape().img_size;
  torch::NoGradGuard no_grad;
  const auto probe = torch::rand({1, 3, size, size}).to(loaded.config.train.device());
  for (int64_t t = 0; t < model.num_tasks(); ++t) {
    const auto& task = model.options.tasks()[static_cast<size_t>(t)];
    const auto tensors = train::merged_task_tensors(model, t);
    const tora::io::Metadata metadata = {{"format", "mtsam-merged-task"},
                                         {"task", task.name},
                                         {"channels", std::to_string(task.channels)},
                                         {"kind", std::string(to_string(task.kind))},
                                         {"shape", shape_to_json(model.options.shape()).dump()}};
    const auto file = folder / (task.name + ".safetensors");
    tora::io::write_safetensors(file, tensors, metadata);
    auto single = train::single_task_model(model, t, tensors);
    single->to(loaded.config.train.device());
    single->eval();
    const double error =
        (single->forward_task(probe, 0) - model.forward_task(probe, t)).abs().max().item<double>();
    out(fmt::format("{}: {} (max |merged - adapted| on a random image: {:.2e})\n", task.name,
                    file.string(), error));
  }
  return 0;
}

inline int info_command(const ConfigArgs& args, const std::vector<std::string>& methods) {
  const auto base = load_config(args.config, args.sets, args.settings());
  const auto specs = train::experiment_tasks(base.data);
  std::vector<std::string> chosen = methods;
  if (chosen.empty()) {
    chosen = {"lora-hps", "lora-stl", "multilora", "hydralora", "terra", "tora", "full"};
  }
  out(fmt::format("Trainable parameters of MTSAM (SAM {}, {}px input, {} tasks), per method:\n",
                  base.model.preset, base.model.image_size, specs.size()));
  std::string table = fmt::format("{:<10}  {:>14}  {:>16}  {:>14}\n", "method", "adapters (M)",
                                  "trainable (M)", "float32 (MB)");
  for (const auto& name : chosen) {
    auto config = base;
    try {
      config.adapter.method = tora::method_from_string(name);
    } catch (const std::exception& e) {
      throw UsageError(e.what());
    }
    auto model = train::build_model(config, specs, false);
    const int64_t adapters = [&] {
      int64_t n = 0;
      for (const auto& [key, tensor] : tora::adapter_parameters(*model))
        n += tensor.numel();
      return n;
    }();
    const int64_t trainable = count_trainable(*model);
    table += fmt::format("{:<10}  {:>14.3f}  {:>16.3f}  {:>14.2f}\n", name,
                         static_cast<double>(adapters) / 1e6, static_cast<double>(trainable) / 1e6,
                         static_cast<double>(trainable) * 4.0 / (1024.0 * 1024.0));
  }
  out(table);
  out(
      fmt::format("ranks: LoRA family r={}, ToRA p={} q={} v={}; trainable = adapters + every "
                  "LayerNorm + task embeddings + task decoders\n",
                  base.adapter.rank, base.adapter.p, base.adapter.q, base.adapter.v));
  return 0;
}

}  // namespace mtsam::cli
