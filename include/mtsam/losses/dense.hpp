#pragma once

/// Training losses of the dense tasks, as the reference code defines them.
///
/// Every loss averages over the pixels that count and returns 0 (with a graph) when no pixel
/// counts, where plain `torch` reductions would return NaN; none of them synchronises with the
/// device.

#include <torch/torch.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include <mtsam/data/tasks.hpp>

namespace mtsam::losses {

namespace detail {

inline void check_dense(const torch::Tensor& pred, const torch::Tensor& target, int64_t channels,
                        const char* who) {
  TORCH_CHECK(pred.dim() == 4 && (channels == 0 || pred.size(1) == channels), who,
              ": expected a prediction [B, ", (channels == 0 ? "C" : std::to_string(channels)),
              ", H, W], got ", pred.sizes());
  TORCH_CHECK(target.dim() == 4 && target.size(0) == pred.size(0) &&
                  target.size(2) == pred.size(2) && target.size(3) == pred.size(3),
              who, ": target ", target.sizes(), " does not match prediction ", pred.sizes());
}

}  // namespace detail

/// Negative log-likelihood of `log_softmax(logits)` averaged over pixels whose label is not
/// `ignore_index` (-1 NYUv2/CityScapes, 255 PASCAL). logits `[B, C, H, W]`, labels int64
/// `[B, H, W]`. Labels outside [0, C) other than `ignore_index` are an error.
inline torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                                       int64_t ignore_index = -1) {
  TORCH_CHECK(logits.dim() == 4 && labels.dim() == 3 && labels.size(0) == logits.size(0) &&
                  labels.size(1) == logits.size(2) && labels.size(2) == logits.size(3),
              "segmentation_loss: expected logits [B, C, H, W] and labels [B, H, W], got ",
              logits.sizes(), " and ", labels.sizes());
  const torch::Tensor target = labels.to(torch::kInt64);
  namespace F = torch::nn::functional;
  const torch::Tensor total =
      F::nll_loss(F::log_softmax(logits, F::LogSoftmaxFuncOptions(1)), target,
                  F::NLLLossFuncOptions().ignore_index(ignore_index).reduction(torch::kSum));
  return total / target.ne(ignore_index).sum().clamp_min(1).to(total.dtype());
}

/// Mean |pred - target| over pixels whose target is not 0. `[B, 1, H, W]` both.
inline torch::Tensor depth_loss(const torch::Tensor& pred, const torch::Tensor& target) {
  detail::check_dense(pred, target, 1, "depth_loss");
  const torch::Tensor mask = target.ne(0).to(pred.dtype());
  const torch::Tensor count = mask.sum();
  return ((pred - target).abs() * mask).sum() / count.clamp_min(1.0);
}

/// `1 - mean(dot(normalize(pred), target))` over pixels whose target channels do not sum to 0
/// (the reference's valid test). `[B, 3, H, W]` both; the target is used as it is.
inline torch::Tensor normal_loss(const torch::Tensor& pred, const torch::Tensor& target) {
  detail::check_dense(pred, target, 3, "normal_loss");
  namespace F = torch::nn::functional;
  const torch::Tensor unit = F::normalize(pred, F::NormalizeFuncOptions().dim(1));
  const torch::Tensor mask = target.sum(1).ne(0).to(pred.dtype());
  const torch::Tensor count = mask.sum();
  const torch::Tensor mean_dot = ((unit * target).sum(1) * mask).sum() / count.clamp_min(1.0);
  return count.gt(0).to(pred.dtype()) * (1.0 - mean_dot);
}

/// Mean |normalize(pred) - target| over the channels of pixels whose target is not (0, 0, 0)
/// (the PASCAL-Context normals loss). `[B, 3, H, W]` both.
inline torch::Tensor normal_l1_loss(const torch::Tensor& pred, const torch::Tensor& target) {
  detail::check_dense(pred, target, 3, "normal_l1_loss");
  namespace F = torch::nn::functional;
  const torch::Tensor unit = F::normalize(pred, F::NormalizeFuncOptions().dim(1));
  const torch::Tensor mask = target.ne(0).any(1, true).to(pred.dtype());
  const torch::Tensor count = mask.sum() * 3.0;
  return ((unit - target).abs() * mask).sum() / count.clamp_min(1.0);
}

/// Class-balanced binary cross entropy on logits (the PASCAL-Context saliency loss): positives
/// weighted by the fraction of negatives `w`, negatives by `1 - w`, over pixels whose target is
/// not `ignore_value`, summed and divided by their count. `pos_weight` in (0, 1) fixes `w`.
/// logits and target `[B, 1, H, W]`, target in {0, 1} (>= 0.5 is positive).
inline torch::Tensor balanced_bce_loss(const torch::Tensor& logits, const torch::Tensor& target,
                                       double ignore_value = 255.0, double pos_weight = 0.0) {
  detail::check_dense(logits, target, 1, "balanced_bce_loss");
  const torch::Tensor valid = target.ne(ignore_value).to(logits.dtype());
  const torch::Tensor positive = target.ge(0.5).to(logits.dtype()) * valid;
  const torch::Tensor negative = valid - positive;
  const torch::Tensor count = valid.sum().clamp_min(1.0);
  const torch::Tensor w =
      pos_weight > 0.0 ? torch::full({}, pos_weight, logits.options()) : negative.sum() / count;
  // Binary cross entropy with logits, stable for large |x|: max(x, 0) - x y + log(1 + e^-|x|).
  const torch::Tensor bce =
      logits.clamp_min(0) - logits * positive + torch::log1p(torch::exp(-logits.abs()));
  const torch::Tensor loss = w * (bce * positive).sum() + (1.0 - w) * (bce * negative).sum();
  return loss / count;
}

/// The loss `spec.loss` of a task, for a head output and a batched target with the conventions
/// of <mtsam/data/tasks.hpp>.
inline torch::Tensor task_loss(const data::TaskSpec& spec, const torch::Tensor& pred,
                               const torch::Tensor& target) {
  switch (spec.loss) {
    case data::LossKind::cross_entropy:
      return segmentation_loss(pred, target, spec.ignore_index);
    case data::LossKind::masked_l1:
      return depth_loss(pred, target);
    case data::LossKind::cosine:
      return normal_loss(pred, target);
    case data::LossKind::normals_l1:
      return normal_l1_loss(pred, target);
    case data::LossKind::balanced_bce:
      return balanced_bce_loss(pred, target);
  }
  throw std::invalid_argument("task_loss: unknown loss kind for task '" + spec.name + "'");
}

}  // namespace mtsam::losses
