#pragma once

/// Saliency maxF and max mIoU over thresholds, as the PASCAL-Context multi-task evaluation
/// computes them: per image and threshold t, the prediction is `probability > t` and the target
/// `target > 0.5`, pixels equal to the ignore value left out; IoU (1 when both are empty),
/// precision and recall are averaged over images; F = 2 P R / (P + R) from the averaged P and R;
/// maxF and max mIoU are the maxima over the thresholds (default `linspace(0.2, 0.9, 15)`).

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

namespace mtsam::metrics {

/// Accumulates per-image saliency figures at every threshold.
class SaliencyMetric {
 public:
  /// The default thresholds, `linspace(0.2, 0.9, 15)`.
  static std::vector<double> default_thresholds() {
    std::vector<double> t(15);
    for (size_t i = 0; i < t.size(); ++i)
      t[i] = 0.2 + 0.7 * static_cast<double>(i) / 14.0;
    return t;
  }

  /// `from_logits`: predictions are logits (sigmoid applied here) rather than probabilities.
  explicit SaliencyMetric(std::vector<double> thresholds = default_thresholds(),
                          bool from_logits = true, double ignore_value = 255.0)
      : thresholds_(std::move(thresholds)), from_logits_(from_logits), ignore_(ignore_value) {
    TORCH_CHECK(!thresholds_.empty(), "SaliencyMetric: no thresholds");
    reset();
  }

  /// Adds a batch: prediction and target `[B, 1, H, W]` (or `[B, H, W]`).
  void update(const torch::Tensor& pred, const torch::Tensor& target) {
    torch::NoGradGuard no_grad;
    TORCH_CHECK(pred.sizes() == target.sizes() && pred.dim() >= 3, "SaliencyMetric: prediction ",
                pred.sizes(), " and target ", target.sizes(), " must both be [B, 1, H, W]");
    torch::Tensor prob = pred.to(torch::kFloat32).flatten(1);
    if (from_logits_)
      prob = prob.sigmoid();
    const torch::Tensor t = target.to(torch::kFloat32).flatten(1);
    const torch::Tensor valid = t.ne(static_cast<float>(ignore_)).unsqueeze(1);  // [B, 1, N]
    const torch::Tensor gt = t.gt(0.5f).unsqueeze(1).logical_and(valid);
    const torch::Tensor thr = torch::tensor(thresholds_, torch::kFloat64)
                                  .to(prob.device(), torch::kFloat32)
                                  .view({1, -1, 1});
    const torch::Tensor pr = prob.unsqueeze(1).gt(thr).logical_and(valid);  // [B, T, N]
    const torch::Tensor tp = pr.logical_and(gt).sum(2).to(torch::kFloat64);
    const torch::Tensor np = pr.sum(2).to(torch::kFloat64);
    const torch::Tensor ng = gt.sum(2).to(torch::kFloat64).expand_as(tp);
    const torch::Tensor uni = np + ng - tp;
    const torch::Tensor iou = torch::where(uni.gt(0), tp / uni.clamp_min(1), torch::ones_like(tp));
    const torch::Tensor prec = tp / (np + 1e-12);
    const torch::Tensor rec = tp / (ng + 1e-12);
    iou_sum_ += iou.sum(0).cpu();
    prec_sum_ += prec.sum(0).cpu();
    rec_sum_ += rec.sum(0).cpu();
    images_ += static_cast<double>(tp.size(0));
  }

  /// Mean IoU over images at each threshold, `[T]` float64.
  torch::Tensor miou_per_threshold() const { return iou_sum_ / images_; }
  /// F-measure at each threshold from the image-averaged precision and recall, `[T]` float64.
  torch::Tensor f_per_threshold() const {
    const torch::Tensor p = prec_sum_ / images_;
    const torch::Tensor r = rec_sum_ / images_;
    return 2.0 * p * r / (p + r + 1e-12);
  }
  /// The best F over the thresholds (NaN before any image).
  double max_f() const { return images_ > 0 ? f_per_threshold().max().item<double>() : NAN; }
  /// The best mean IoU over the thresholds (NaN before any image).
  double max_miou() const { return images_ > 0 ? miou_per_threshold().max().item<double>() : NAN; }
  const std::vector<double>& thresholds() const { return thresholds_; }

  void reset() {
    const auto n = static_cast<int64_t>(thresholds_.size());
    iou_sum_ = torch::zeros({n}, torch::kFloat64);
    prec_sum_ = torch::zeros({n}, torch::kFloat64);
    rec_sum_ = torch::zeros({n}, torch::kFloat64);
    images_ = 0.0;
  }

 private:
  std::vector<double> thresholds_;
  bool from_logits_;
  double ignore_;
  torch::Tensor iou_sum_;
  torch::Tensor prec_sum_;
  torch::Tensor rec_sum_;
  double images_ = 0.0;
};

}  // namespace mtsam::metrics
