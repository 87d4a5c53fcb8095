#pragma once

/// Depth errors on valid pixels (target != 0): Abs Err = mean |p - g|, Rel Err = mean
/// |p - g| / g, averaged per image or pooled (see `data::Aggregation`).

#include <torch/torch.h>

#include <cmath>
#include <cstdint>

#include <mtsam/data/tasks.hpp>

namespace mtsam::metrics {

using data::Aggregation;

/// Accumulates Abs Err and Rel Err over batches.
class DepthMetric {
 public:
  /// `per_image` averages each image's errors (the reference with batch size 1); `pooled`
  /// averages over all valid pixels of all images (LibMTL). Images without a valid pixel do not
  /// count in `per_image`.
  explicit DepthMetric(Aggregation aggregation = Aggregation::per_image)
      : aggregation_(aggregation) {}

  /// Adds a batch: prediction and target `[B, 1, H, W]` (or `[B, H, W]`).
  void update(const torch::Tensor& pred, const torch::Tensor& target) {
    torch::NoGradGuard no_grad;
    TORCH_CHECK(pred.sizes() == target.sizes() && pred.dim() >= 3, "DepthMetric: prediction ",
                pred.sizes(), " and target ", target.sizes(), " must both be [B, 1, H, W]");
    const torch::Tensor p = pred.to(torch::kFloat32).flatten(1);
    const torch::Tensor g = target.to(torch::kFloat32).flatten(1);
    const torch::Tensor valid = g.ne(0).to(torch::kFloat32);
    const torch::Tensor abs = (p - g).abs() * valid;
    const torch::Tensor rel = abs / torch::where(g.ne(0), g, torch::ones_like(g));
    // Per image: [B] sums and counts, in float64 so that the pooled total does not drift.
    const torch::Tensor stats =
        torch::stack({abs.to(torch::kFloat64).sum(1), rel.to(torch::kFloat64).sum(1),
                      valid.to(torch::kFloat64).sum(1)})
            .cpu();
    const auto a = stats[0];
    const auto r = stats[1];
    const auto n = stats[2];
    if (aggregation_ == Aggregation::pooled) {
      abs_sum_ += a.sum().item<double>();
      rel_sum_ += r.sum().item<double>();
      count_ += n.sum().item<double>();
      return;
    }
    for (int64_t b = 0; b < n.size(0); ++b) {
      const double nb = n[b].item<double>();
      if (nb == 0)
        continue;
      abs_sum_ += a[b].item<double>() / nb;
      rel_sum_ += r[b].item<double>() / nb;
      count_ += 1;
    }
  }

  /// Mean absolute error (NaN before any valid pixel).
  double abs_err() const { return count_ > 0 ? abs_sum_ / count_ : NAN; }
  /// Mean relative error (NaN before any valid pixel).
  double rel_err() const { return count_ > 0 ? rel_sum_ / count_ : NAN; }
  Aggregation aggregation() const { return aggregation_; }

  void reset() { abs_sum_ = rel_sum_ = count_ = 0.0; }

 private:
  Aggregation aggregation_;
  double abs_sum_ = 0.0;
  double rel_sum_ = 0.0;
  double count_ = 0.0;  // valid pixels (pooled) or images (per image)
};

}  // namespace mtsam::metrics
