#pragma once

/// Segmentation mIoU and pixel accuracy from one confusion matrix accumulated over all pixels
/// of all images, counting pixels whose label lies in [0, C) (ignore values fall outside).

#include <torch/torch.h>

#include <cmath>
#include <cstdint>

namespace mtsam::metrics {

/// Accumulates a `[C, C]` confusion matrix (rows: target class, columns: predicted class).
class SegmentationMetric {
 public:
  /// `empty_class_counts_zero`: a class with no target and no predicted pixel has IoU 0 (PASCAL
  /// convention) instead of being left out of the mean (NYUv2/CityScapes).
  explicit SegmentationMetric(int64_t classes, bool empty_class_counts_zero = false)
      : classes_(classes), empty_zero_(empty_class_counts_zero) {
    TORCH_CHECK(classes > 0, "SegmentationMetric: classes must be positive, got ", classes);
    reset();
  }

  /// Adds a batch: `pred` logits `[B, C, H, W]` (arg-max taken) or labels `[B, H, W]`, `target`
  /// labels `[B, H, W]`.
  void update(const torch::Tensor& pred, const torch::Tensor& target) {
    torch::NoGradGuard no_grad;
    const torch::Tensor labels = pred.dim() == target.dim() + 1 ? pred.argmax(1) : pred;
    TORCH_CHECK(labels.sizes() == target.sizes(), "SegmentationMetric: prediction ", pred.sizes(),
                " does not match target ", target.sizes(),
                " (expected logits [B, C, H, W] or labels [B, H, W])");
    if (pred.dim() == target.dim() + 1) {
      TORCH_CHECK(pred.size(1) == classes_, "SegmentationMetric: logits have ", pred.size(1),
                  " channels for ", classes_, " classes");
    }
    const torch::Tensor t = target.to(torch::kInt64).flatten();
    const torch::Tensor p = labels.to(torch::kInt64).flatten();
    const torch::Tensor keep = t.ge(0).logical_and(t.lt(classes_));
    const torch::Tensor kept = p.masked_select(keep);
    if (pred.dim() == target.dim() && kept.numel() > 0) {
      // Given labels (not logits) may hold anything: one out of range would be miscounted.
      const auto range = torch::stack({kept.min(), kept.max()}).cpu();
      TORCH_CHECK(range[0].item<int64_t>() >= 0 && range[1].item<int64_t>() < classes_,
                  "SegmentationMetric: predicted labels must be in [0, ", classes_,
                  ") where the target is valid, got values from ", range[0].item<int64_t>(), " to ",
                  range[1].item<int64_t>());
    }
    const torch::Tensor codes = t.masked_select(keep) * classes_ + kept;
    confusion_ += torch::bincount(codes, {}, classes_ * classes_).view({classes_, classes_}).cpu();
  }

  /// IoU of every class, `[C]` float64; empty classes are NaN, or 0 with the PASCAL convention.
  torch::Tensor iou() const {
    const torch::Tensor h = confusion_.to(torch::kFloat64);
    const torch::Tensor diag = h.diagonal();
    const torch::Tensor uni = h.sum(0) + h.sum(1) - diag;
    const torch::Tensor empty_value = torch::full_like(uni, empty_zero_ ? 0.0 : NAN);
    return torch::where(uni.gt(0), diag / uni.clamp_min(1), empty_value);
  }

  /// Mean IoU over the classes that count (NaN when none does).
  double miou() const { return iou().nanmean().item<double>(); }

  /// Correct pixels over counted pixels (NaN before any pixel).
  double pixel_accuracy() const {
    const auto total = confusion_.sum().item<int64_t>();
    return total == 0 ? NAN
                      : static_cast<double>(confusion_.trace().item<int64_t>()) /
                            static_cast<double>(total);
  }

  /// The confusion matrix, int64 `[C, C]`.
  const torch::Tensor& confusion() const { return confusion_; }
  int64_t classes() const { return classes_; }

  void reset() { confusion_ = torch::zeros({classes_, classes_}, torch::kInt64); }

 private:
  int64_t classes_;
  bool empty_zero_;
  torch::Tensor confusion_;
};

}  // namespace mtsam::metrics
