#pragma once

/// The multi-task trainer: Adam with the linear warm-up schedule, weighted task losses plus the
/// regulariser, gradient accumulation, evaluation, atomic checkpoints with exact resume, the
/// JSON-lines log and the HTML report. It never prints: it reports through callbacks.

#include <mtsam/train/checkpoint.hpp>
#include <mtsam/train/evaluate.hpp>
#include <mtsam/train/log.hpp>
#include <mtsam/train/options.hpp>
#include <mtsam/train/pictures.hpp>
#include <mtsam/train/records.hpp>
#include <mtsam/train/report.hpp>
#include <mtsam/train/schedule.hpp>
#include <mtsam/train/task.hpp>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace mtsam::train {

/// How a run ended.
enum class RunStatus {
  finished,     ///< every step done
  interrupted,  ///< the stop callback asked; the state is saved for `resume`
  diverged,     ///< a loss became NaN or infinite; nothing after the last good checkpoint kept
};

/// "finished", "interrupted" or "diverged".
inline const char* to_string(RunStatus status) {
  switch (status) {
    case RunStatus::finished:
      return "finished";
    case RunStatus::interrupted:
      return "interrupted";
    case RunStatus::diverged:
      return "diverged";
  }
  return "unknown";
}

/// What `Trainer::run` returns.
struct TrainResult {
  RunStatus status = RunStatus::finished;
  /// Why the run stopped, naming the task and step for a divergence.
  std::string message;
  int64_t steps = 0;
  /// Every evaluation of the run, resumed parts included.
  std::vector<Evaluation> evaluations;
  std::optional<Evaluation> before;  ///< the evaluation at step 0, when made
  std::optional<Evaluation> best;
  std::filesystem::path last_checkpoint;  ///< empty when none was written
  std::filesystem::path report;
};

/// Hooks through which a program follows a run; all optional.
struct TrainerCallbacks {
  /// After every `log_every`-th optimiser step.
  std::function<void(const StepRecord&)> on_step;
  /// After each evaluation.
  std::function<void(const Evaluation&)> on_evaluation;
  /// During an evaluation: samples done, samples in all.
  std::function<void(int64_t, int64_t)> on_evaluation_progress;
  /// After a checkpoint folder is written.
  std::function<void(const std::filesystem::path&)> on_checkpoint;
  /// Polled after every optimiser step and after every evaluation batch; true saves the state
  /// and ends the run (an evaluation it cut short is made again on resume).
  std::function<bool()> should_stop;
};

/// The order of the training samples in `epoch`: a shuffle seeded by (seed, epoch) alone, so a
/// resumed run replays it without any saved generator.
inline std::vector<int64_t> epoch_order(int64_t size, uint64_t seed, int64_t epoch, bool shuffle) {
  std::vector<int64_t> order(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i) {
    order[static_cast<size_t>(i)] = i;
  }
  if (shuffle) {
    std::seed_seq sequence{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                           static_cast<uint32_t>(epoch), 0x6d74u};
    std::mt19937_64 rng(sequence);
    for (int64_t i = size - 1; i > 0; --i) {
      std::swap(order[static_cast<size_t>(i)],
                order[static_cast<size_t>(rng() % static_cast<uint64_t>(i + 1))]);
    }
  }
  return order;
}

/// Trains the trainable parameters of a model on several tasks at once.
class Trainer {
 public:
  Trainer(TrainerOptions options, TrainableModel model, std::vector<TaskHead> heads,
          DataSource train, DataSource test, TrainerCallbacks callbacks = {})
      : options_(std::move(options)),
        model_(std::move(model)),
        heads_(std::move(heads)),
        train_(std::move(train)),
        test_(std::move(test)),
        callbacks_(std::move(callbacks)) {
    validate(options_);
    TORCH_CHECK(model_.module && model_.forward, "Trainer: the model needs a module and a forward");
    TORCH_CHECK(!heads_.empty(), "Trainer: at least one task is needed");
    TORCH_CHECK(options_.task_weights().empty() || options_.task_weights().size() == heads_.size(),
                "Trainer: ", options_.task_weights().size(), " task weights given for ",
                heads_.size(), " tasks");
    TORCH_CHECK(train_.size > 0 && train_.get, "Trainer: the training split is empty");
    TORCH_CHECK(test_.size > 0 && test_.get, "Trainer: the test split is empty");
  }

  /// Measure Delta_b (and pick the best checkpoint) against this row instead of the run's first
  /// evaluation. Every task must be in it with every metric its spec reports, so that a wrong
  /// file is refused now rather than at the first evaluation.
  void set_baseline(std::vector<TaskEvaluation> baseline) {
    for (const auto& head : heads_) {
      const TaskEvaluation* found = nullptr;
      for (const auto& task : baseline) {
        found = task.task == head.spec.name ? &task : found;
      }
      TORCH_CHECK(found != nullptr, "the baseline has no results for task '", head.spec.name, "'");
      for (const auto& metric : head.spec.reported) {
        TORCH_CHECK(found->find(metric) != nullptr, "the baseline has no '", metric, "' for task '",
                    head.spec.name, "'");
      }
    }
    baseline_ = std::move(baseline);
  }

  /// The report's title and the configuration it shows (also saved in each checkpoint folder).
  void set_description(std::string title, nlohmann::json config) {
    title_ = std::move(title);
    config_ = std::move(config);
  }

  /// The folder of checkpoint `name` ("last" or "best").
  std::filesystem::path checkpoint_dir(const std::string& name) const {
    return options_.output_dir() / "checkpoints" / name;
  }

  /// Runs to the end, or until stopped or diverged.
  TrainResult run();

 private:
  std::vector<double> normalised_weights() const {
    // Without weights of the caller's, each task's reference weight (NYUv2: 1, 1, 4).
    std::vector<double> weights = options_.task_weights();
    if (weights.empty()) {
      for (const auto& head : heads_) {
        weights.push_back(head.spec.loss_weight);
      }
    }
    double sum = 0.0;
    for (double w : weights) {
      sum += w;
    }
    TORCH_CHECK(sum > 0.0, "Trainer: the task weights sum to 0");
    for (double& w : weights) {
      w /= sum;
    }
    return weights;
  }

  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

  void record_evaluation(Evaluation evaluation);
  Evaluation evaluate_now();
  void save_checkpoint(torch::optim::Adam& optimizer);
  void resume(torch::optim::Adam& optimizer);
  void update_report(const std::string& status);
  /// "<subject> is <value> at step N (epoch E); the step was not applied. <checkpoint>".
  std::string diverged_message(const std::string& subject, const std::string& value) const;

  TrainerOptions options_;
  TrainableModel model_;
  std::vector<TaskHead> heads_;
  DataSource train_;
  DataSource test_;
  TrainerCallbacks callbacks_;
  std::optional<std::vector<TaskEvaluation>> baseline_;
  std::string title_ = "MTSAM training report";
  nlohmann::json config_;

  std::vector<std::pair<std::string, torch::Tensor>> parameters_;
  TrainerState state_;
  JsonLinesLog log_;
  std::vector<StepRecord> steps_;
  std::vector<Evaluation> evaluations_;
  std::chrono::steady_clock::time_point start_;
  bool checkpoint_written_ = false;
  bool best_pending_ = false;
};

}  // namespace mtsam::train

#include <mtsam/train/detail/trainer_impl.hpp>
