#pragma once

/// The paper's learning-rate schedule: linear warm-up from 0, then linear decay to 0.

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace mtsam::train {

/// Linear warm-up then linear decay, as a factor of the base learning rate.
///
/// The optimiser step number k (0-based) uses `k / W` while `k < W` and
/// `(N - k) / (N - W)` after, where N is the total number of steps and
/// `W = floor(warmup_ratio * N)`. With W = 0 the first step uses the full rate.
class LinearWarmupSchedule {
 public:
  LinearWarmupSchedule(int64_t total_steps, double warmup_ratio)
      : total_steps_(total_steps),
        warmup_steps_(static_cast<int64_t>(std::floor(warmup_ratio * total_steps))) {
    TORCH_CHECK(total_steps >= 1, "a schedule needs at least one step, got ", total_steps);
    TORCH_CHECK(warmup_ratio >= 0.0 && warmup_ratio < 1.0, "warm-up ratio must lie in [0, 1), got ",
                warmup_ratio);
  }

  /// All optimiser steps N.
  int64_t total_steps() const { return total_steps_; }

  /// Warm-up steps W.
  int64_t warmup_steps() const { return warmup_steps_; }

  /// The factor of optimiser step `step` (0-based), in [0, 1].
  double factor(int64_t step) const {
    if (step < warmup_steps_) {
      return static_cast<double>(step) / static_cast<double>(warmup_steps_);
    }
    const double left = static_cast<double>(total_steps_ - step);
    return std::max(0.0, left / static_cast<double>(total_steps_ - warmup_steps_));
  }

  /// Sets every parameter group of `optimizer` to `base_lr * factor(step)`; returns that rate.
  double apply(torch::optim::Optimizer& optimizer, double base_lr, int64_t step) const {
    const double lr = base_lr * factor(step);
    for (auto& group : optimizer.param_groups()) {
      group.options().set_lr(lr);
    }
    return lr;
  }

 private:
  int64_t total_steps_;
  int64_t warmup_steps_;
};

}  // namespace mtsam::train
