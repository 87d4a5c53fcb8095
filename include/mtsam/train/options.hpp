#pragma once

/// Options of the multi-task trainer. The defaults are the paper's recipe (section 4): Adam with
/// learning rate 1e-3 and weight decay 1e-6, a linear schedule with 5% warm-up, the orthogonal
/// regulariser with lambda 1, and NYUv2's batch size and epochs.

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace mtsam::train {

/// How the trainer runs: optimiser, schedule, loss weights, evaluation, checkpoints.
struct TrainerOptions {
  /// Passes over the training set.
  TORCH_ARG(int64_t, epochs) = 100;
  /// Samples per forward pass.
  TORCH_ARG(int64_t, batch_size) = 4;
  /// Forward passes whose gradients are summed before one optimiser step.
  TORCH_ARG(int64_t, grad_accumulation) = 1;
  /// Base learning rate of Adam.
  TORCH_ARG(double, lr) = 1e-3;
  /// Adam's L2 weight decay (added to the gradient, as torch.optim.Adam does).
  TORCH_ARG(double, weight_decay) = 1e-6;
  /// Adam's first-moment decay.
  TORCH_ARG(double, beta1) = 0.9;
  /// Adam's second-moment decay.
  TORCH_ARG(double, beta2) = 0.999;
  /// Adam's denominator epsilon.
  TORCH_ARG(double, adam_eps) = 1e-8;
  /// Fraction of all optimiser steps spent warming the learning rate up from 0.
  TORCH_ARG(double, warmup_ratio) = 0.05;
  /// Weight lambda of the orthogonal regulariser in the total loss.
  TORCH_ARG(double, regularizer_weight) = 1.0;
  /// Weight of each task's loss, normalised by their sum; empty takes each task's reference
  /// weight (`data::TaskSpec::loss_weight`: NYUv2 1, 1, 4; 1 elsewhere).
  TORCH_ARG(std::vector<double>, task_weights) = {};
  /// Clip the global gradient norm to this value; 0 disables clipping.
  TORCH_ARG(double, max_grad_norm) = 0.0;
  /// Evaluate on the test split every this many epochs (and after the last); 0: after the last.
  TORCH_ARG(int64_t, eval_every) = 1;
  /// Also evaluate before the first step (the "before fine-tuning" row).
  TORCH_ARG(bool, eval_before) = false;
  /// Samples per evaluation forward pass (the reference evaluates one image at a time).
  TORCH_ARG(int64_t, eval_batch_size) = 1;
  /// Evaluate on the first this many test samples only; 0 uses them all.
  TORCH_ARG(int64_t, max_eval_samples) = 0;
  /// Stop after this many optimiser steps (the schedule still spans every epoch); 0: no limit.
  TORCH_ARG(int64_t, max_steps) = 0;
  /// Seed of the data order and of LibTorch's generators.
  TORCH_ARG(uint64_t, seed) = 0;
  /// Visit the training samples in a new random order each epoch.
  TORCH_ARG(bool, shuffle) = true;
  /// Drop the last, smaller batch of an epoch.
  TORCH_ARG(bool, drop_last) = false;
  /// Folder of checkpoints, log and report.
  TORCH_ARG(std::filesystem::path, output_dir) = "runs/mtsam";
  /// Continue from the `last` checkpoint in `output_dir`.
  TORCH_ARG(bool, resume) = false;
  /// Keep a copy of the checkpoint of the best evaluation so far.
  TORCH_ARG(bool, save_best) = true;
  /// Test images drawn beside their ground truth in the report.
  TORCH_ARG(int64_t, report_images) = 3;
  /// Call the step callback every this many optimiser steps (the log gets every step).
  TORCH_ARG(int64_t, log_every) = 1;
  /// Where the model and the batches live.
  TORCH_ARG(torch::Device, device) = torch::kCPU;
};

namespace detail {

template <typename T>
void read_option(const nlohmann::json& json, const char* key, T& value) {
  if (json.contains(key)) {
    try {
      value = json.at(key).get<T>();
    } catch (const nlohmann::json::exception&) {
      throw std::invalid_argument(std::string("trainer option '") + key +
                                  "' has the wrong type: " + json.at(key).dump());
    }
  }
}

inline const std::vector<std::string>& trainer_option_keys() {
  static const std::vector<std::string> keys = {"epochs",
                                                "batch_size",
                                                "grad_accumulation",
                                                "lr",
                                                "weight_decay",
                                                "beta1",
                                                "beta2",
                                                "adam_eps",
                                                "warmup_ratio",
                                                "regularizer_weight",
                                                "task_weights",
                                                "max_grad_norm",
                                                "eval_every",
                                                "eval_before",
                                                "eval_batch_size",
                                                "max_eval_samples",
                                                "max_steps",
                                                "seed",
                                                "shuffle",
                                                "drop_last",
                                                "output_dir",
                                                "resume",
                                                "save_best",
                                                "report_images",
                                                "log_every",
                                                "device"};
  return keys;
}

}  // namespace detail

/// The options as JSON, one key per field (the device as its string, e.g. "cuda:0").
inline nlohmann::json to_json(const TrainerOptions& o) {
  return {{"epochs", o.epochs()},
          {"batch_size", o.batch_size()},
          {"grad_accumulation", o.grad_accumulation()},
          {"lr", o.lr()},
          {"weight_decay", o.weight_decay()},
          {"beta1", o.beta1()},
          {"beta2", o.beta2()},
          {"adam_eps", o.adam_eps()},
          {"warmup_ratio", o.warmup_ratio()},
          {"regularizer_weight", o.regularizer_weight()},
          {"task_weights", o.task_weights()},
          {"max_grad_norm", o.max_grad_norm()},
          {"eval_every", o.eval_every()},
          {"eval_before", o.eval_before()},
          {"eval_batch_size", o.eval_batch_size()},
          {"max_eval_samples", o.max_eval_samples()},
          {"max_steps", o.max_steps()},
          {"seed", o.seed()},
          {"shuffle", o.shuffle()},
          {"drop_last", o.drop_last()},
          {"output_dir", o.output_dir().string()},
          {"resume", o.resume()},
          {"save_best", o.save_best()},
          {"report_images", o.report_images()},
          {"log_every", o.log_every()},
          {"device", o.device().str()}};
}

/// Throws std::invalid_argument naming the first option whose value cannot work.
inline void validate(const TrainerOptions& o) {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) {
      throw std::invalid_argument(message);
    }
  };
  require(o.epochs() >= 1, "epochs must be at least 1, got " + std::to_string(o.epochs()));
  require(o.batch_size() >= 1,
          "batch_size must be at least 1, got " + std::to_string(o.batch_size()));
  require(o.grad_accumulation() >= 1,
          "grad_accumulation must be at least 1, got " + std::to_string(o.grad_accumulation()));
  require(o.lr() > 0.0, "lr must be positive, got " + std::to_string(o.lr()));
  require(o.weight_decay() >= 0.0,
          "weight_decay must be 0 or more, got " + std::to_string(o.weight_decay()));
  require(o.beta1() >= 0.0 && o.beta1() < 1.0 && o.beta2() >= 0.0 && o.beta2() < 1.0,
          "beta1 and beta2 must lie in [0, 1)");
  require(o.warmup_ratio() >= 0.0 && o.warmup_ratio() < 1.0,
          "warmup_ratio must lie in [0, 1), got " + std::to_string(o.warmup_ratio()));
  require(o.regularizer_weight() >= 0.0, "regularizer_weight must be 0 or more");
  for (double w : o.task_weights()) {
    require(w >= 0.0, "task_weights must be 0 or more, got " + std::to_string(w));
  }
  require(o.eval_every() >= 0, "eval_every must be 0 or more");
  require(o.eval_batch_size() >= 1, "eval_batch_size must be at least 1");
  require(o.max_eval_samples() >= 0 && o.max_steps() >= 0 && o.report_images() >= 0,
          "max_eval_samples, max_steps and report_images must be 0 or more");
  require(o.log_every() >= 1, "log_every must be at least 1");
  require(!o.output_dir().empty(), "output_dir must not be empty");
}

/// Options from JSON: every key optional (absent keys keep the defaults), unknown keys refused
/// with the list of known ones, the result validated.
inline TrainerOptions trainer_options_from_json(const nlohmann::json& json, TrainerOptions o = {}) {
  if (!json.is_object()) {
    throw std::invalid_argument("trainer options must be a table, got " + json.dump());
  }
  const auto& keys = detail::trainer_option_keys();
  for (const auto& item : json.items()) {
    if (std::find(keys.begin(), keys.end(), item.key()) == keys.end()) {
      std::string known;
      for (const auto& key : keys) {
        known += (known.empty() ? "" : ", ") + key;
      }
      throw std::invalid_argument("unknown trainer option '" + item.key() + "'; known: " + known);
    }
  }
  using detail::read_option;
  read_option(json, "epochs", o.epochs());
  read_option(json, "batch_size", o.batch_size());
  read_option(json, "grad_accumulation", o.grad_accumulation());
  read_option(json, "lr", o.lr());
  read_option(json, "weight_decay", o.weight_decay());
  read_option(json, "beta1", o.beta1());
  read_option(json, "beta2", o.beta2());
  read_option(json, "adam_eps", o.adam_eps());
  read_option(json, "warmup_ratio", o.warmup_ratio());
  read_option(json, "regularizer_weight", o.regularizer_weight());
  read_option(json, "task_weights", o.task_weights());
  read_option(json, "max_grad_norm", o.max_grad_norm());
  read_option(json, "eval_every", o.eval_every());
  read_option(json, "eval_before", o.eval_before());
  read_option(json, "eval_batch_size", o.eval_batch_size());
  read_option(json, "max_eval_samples", o.max_eval_samples());
  read_option(json, "max_steps", o.max_steps());
  read_option(json, "seed", o.seed());
  read_option(json, "shuffle", o.shuffle());
  read_option(json, "drop_last", o.drop_last());
  read_option(json, "resume", o.resume());
  read_option(json, "save_best", o.save_best());
  read_option(json, "report_images", o.report_images());
  read_option(json, "log_every", o.log_every());
  if (json.contains("output_dir")) {
    std::string dir;
    read_option(json, "output_dir", dir);
    o.output_dir(dir);
  }
  if (json.contains("device")) {
    std::string device;
    read_option(json, "device", device);
    try {
      o.device(torch::Device(device));
    } catch (const std::exception&) {
      throw std::invalid_argument(
          "trainer option 'device' must be like \"cpu\" or \"cuda:0\", got '" + device + "'");
    }
  }
  validate(o);
  return o;
}

/// The options that decide a run's numbers; resuming with any of them changed is refused.
inline nlohmann::json trajectory_options(const TrainerOptions& o) {
  auto json = to_json(o);
  for (const char* key : {"output_dir", "resume", "save_best", "report_images", "log_every",
                          "device", "eval_every", "eval_before", "max_steps"}) {
    json.erase(key);
  }
  return json;
}

}  // namespace mtsam::train
