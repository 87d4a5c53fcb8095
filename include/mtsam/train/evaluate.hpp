#pragma once

/// Evaluation of a model on a data split: every task's mean loss and every metric of its kind.

#include <mtsam/metrics/task_meter.hpp>
#include <mtsam/train/records.hpp>
#include <mtsam/train/task.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace mtsam::train {

/// How `evaluate` runs.
struct EvaluateOptions {
  /// Samples per forward pass.
  TORCH_ARG(int64_t, batch_size) = 1;
  /// Evaluate the first this many samples only; 0 uses them all.
  TORCH_ARG(int64_t, max_samples) = 0;
  /// Where the model lives.
  TORCH_ARG(torch::Device, device) = torch::kCPU;
  /// Called after each batch with (samples done, samples in all).
  TORCH_ARG(std::function<void(int64_t, int64_t)>, progress) = nullptr;
  /// Polled after each batch; true abandons the evaluation with `EvaluationInterrupted`.
  TORCH_ARG(std::function<bool()>, should_stop) = nullptr;
};

/// Thrown by `evaluate` when its `should_stop` asked to stop: no figures were made.
struct EvaluationInterrupted : std::runtime_error {
  explicit EvaluationInterrupted(int64_t done, int64_t total)
      : std::runtime_error("the evaluation was stopped after " + std::to_string(done) + " of " +
                           std::to_string(total) + " samples") {}
};

/// Runs `model` in eval mode without gradients over `split` (epoch 0, so without augmentation
/// randomness) and returns each head's mean loss (weighted by batch size) and metrics. The
/// module is left in eval mode.
inline Evaluation evaluate(const TrainableModel& model, const std::vector<TaskHead>& heads,
                           const DataSource& split, const EvaluateOptions& options = {}) {
  TORCH_CHECK(split.size > 0, "evaluate: the split is empty");
  TORCH_CHECK(options.batch_size() >= 1, "evaluate: batch_size must be at least 1, got ",
              options.batch_size());
  const auto start = std::chrono::steady_clock::now();
  const int64_t count =
      options.max_samples() > 0 ? std::min(options.max_samples(), split.size) : split.size;
  model.module->eval();
  torch::NoGradGuard no_grad;

  std::vector<metrics::TaskMeter> meters;
  for (const auto& head : heads) {
    meters.emplace_back(head.spec);
  }
  std::vector<double> loss_sums(heads.size(), 0.0);
  for (int64_t begin = 0; begin < count; begin += options.batch_size()) {
    const int64_t end = std::min(count, begin + options.batch_size());
    std::vector<int64_t> indices;
    for (int64_t i = begin; i < end; ++i) {
      indices.push_back(i);
    }
    auto [images, targets] = load_batch(split, indices, 0, heads, options.device());
    const auto outputs = model.forward(images);
    TORCH_CHECK(outputs.size() == heads.size(), "the model returned ", outputs.size(),
                " outputs for ", heads.size(), " tasks");
    for (size_t t = 0; t < heads.size(); ++t) {
      loss_sums[t] += heads[t].compute_loss(outputs[t], targets[t]).item<double>() *
                      static_cast<double>(end - begin);
      meters[t].update(outputs[t], targets[t]);
    }
    if (options.progress()) {
      options.progress()(end, count);
    }
    if (end < count && options.should_stop() && options.should_stop()()) {
      throw EvaluationInterrupted(end, count);
    }
  }

  Evaluation evaluation;
  evaluation.samples = count;
  for (size_t t = 0; t < heads.size(); ++t) {
    TaskEvaluation task;
    task.task = heads[t].spec.name;
    task.loss = loss_sums[t] / static_cast<double>(count);
    task.metrics = meters[t].all();
    evaluation.tasks.push_back(std::move(task));
  }
  evaluation.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return evaluation;
}

/// The metrics of `tasks` that `heads` report in tables and Delta_b (all when a head names none).
inline std::vector<TaskEvaluation> reported_metrics(const std::vector<TaskEvaluation>& tasks,
                                                    const std::vector<TaskHead>& heads) {
  std::vector<TaskEvaluation> reported;
  for (const auto& task : tasks) {
    TaskEvaluation kept = task;
    for (const auto& head : heads) {
      if (head.spec.name == task.task && !head.spec.reported.empty()) {
        kept.metrics.clear();
        for (const auto& name : head.spec.reported) {
          if (const auto* metric = task.find(name)) {
            kept.metrics.push_back(*metric);
          }
        }
      }
    }
    reported.push_back(std::move(kept));
  }
  return reported;
}

}  // namespace mtsam::train
