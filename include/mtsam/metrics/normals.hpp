#pragma once

/// Surface normal angle errors on valid pixels (target channels not summing to 0, the
/// reference's test): angle = degrees(acos(clamp(normalize(p) . g, -1, 1))); the mean, the
/// median (the lower middle value, as `torch.median`) and the fractions under 11.25, 22.5 and
/// 30 degrees, averaged per image or pooled (see `data::Aggregation`).

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include <mtsam/data/tasks.hpp>

namespace mtsam::metrics {

using data::Aggregation;

/// Accumulates normal angle errors over batches. Pooled aggregation keeps every valid pixel's
/// angle (4 bytes each) for the exact median.
class NormalMetric {
 public:
  /// Thresholds of the "within" fractions, in degrees.
  static constexpr std::array<double, 3> kWithin = {11.25, 22.5, 30.0};

  /// `per_image`: each image's figures (median included) averaged over images, as the
  /// reference with batch size 1; `pooled`: figures over all valid pixels together (LibMTL).
  explicit NormalMetric(Aggregation aggregation = Aggregation::per_image)
      : aggregation_(aggregation) {}

  /// Adds a batch: prediction (any length; normalised here) and unit target `[B, 3, H, W]`.
  void update(const torch::Tensor& pred, const torch::Tensor& target) {
    torch::NoGradGuard no_grad;
    TORCH_CHECK(pred.dim() == 4 && pred.size(1) == 3 && pred.sizes() == target.sizes(),
                "NormalMetric: prediction ", pred.sizes(), " and target ", target.sizes(),
                " must both be [B, 3, H, W]");
    namespace F = torch::nn::functional;
    const torch::Tensor p =
        F::normalize(pred.to(torch::kFloat32), F::NormalizeFuncOptions().dim(1));
    const torch::Tensor g = target.to(torch::kFloat32);
    const torch::Tensor angle =
        torch::rad2deg(torch::acos((p * g).sum(1).clamp(-1.0, 1.0))).flatten(1).cpu();
    const torch::Tensor valid = g.sum(1).ne(0).flatten(1).cpu();
    for (int64_t b = 0; b < angle.size(0); ++b) {
      const torch::Tensor a = angle[b].masked_select(valid[b]).contiguous();
      if (a.numel() == 0)
        continue;
      const float* v = a.data_ptr<float>();
      const auto n = a.numel();
      if (aggregation_ == Aggregation::pooled) {
        pooled_.insert(pooled_.end(), v, v + n);
        continue;
      }
      std::vector<float> values(v, v + n);
      const auto figures = summarise(values);
      for (size_t i = 0; i < sums_.size(); ++i)
        sums_[i] += figures[i];
      images_ += 1;
    }
  }

  /// Mean angle in degrees (NaN before any valid pixel).
  double mean() const { return figures()[0]; }
  /// Median angle in degrees (lower middle value; per image: mean of the images' medians).
  double median() const { return figures()[1]; }
  /// Fraction of angles under `kWithin[i]` degrees, i = 0, 1, 2.
  double within(size_t i) const {
    TORCH_CHECK(i < kWithin.size(), "NormalMetric::within: index ", i, " out of range");
    return figures()[2 + i];
  }
  Aggregation aggregation() const { return aggregation_; }

  void reset() {
    pooled_.clear();
    sums_.fill(0.0);
    images_ = 0;
  }

 private:
  // mean, median, within 11.25, 22.5, 30 of the angles; reorders `values`.
  static std::array<double, 5> summarise(std::vector<float>& values) {
    std::array<double, 5> out{};
    if (values.empty()) {
      out.fill(NAN);
      return out;
    }
    double sum = 0.0;
    std::array<size_t, 3> under{};
    for (const float v : values) {
      sum += v;
      for (size_t i = 0; i < kWithin.size(); ++i)
        under[i] += v < kWithin[i] ? 1 : 0;
    }
    const auto n = static_cast<double>(values.size());
    const auto mid = values.begin() + static_cast<std::ptrdiff_t>((values.size() - 1) / 2);
    std::nth_element(values.begin(), mid, values.end());
    out[0] = sum / n;
    out[1] = *mid;
    for (size_t i = 0; i < kWithin.size(); ++i)
      out[2 + i] = static_cast<double>(under[i]) / n;
    return out;
  }

  std::array<double, 5> figures() const {
    if (aggregation_ == Aggregation::pooled) {
      std::vector<float> copy = pooled_;
      return summarise(copy);
    }
    std::array<double, 5> out{};
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = images_ > 0 ? sums_[i] / images_ : NAN;
    return out;
  }

  Aggregation aggregation_;
  std::vector<float> pooled_;
  std::array<double, 5> sums_{};
  double images_ = 0.0;
};

}  // namespace mtsam::metrics
