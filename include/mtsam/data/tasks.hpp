#pragma once

/// What a benchmark's tasks are (name, kind, channels, ignore value, loss, metrics), the sample
/// every data set returns, and the collate transform that stacks samples into a batch.
///
/// Target conventions, per sample (a batch adds a leading `B`):
/// - segmentation (`semseg`, `parts`): int64 `[H, W]`, class ids, `ignore_index` where unknown;
/// - depth: float32 `[1, H, W]`, 0 where invalid;
/// - normals: float32 `[3, H, W]`, unit vectors, (0, 0, 0) where invalid;
/// - saliency: float32 `[1, H, W]`, 1 salient, 0 not, 255 ignore.
/// The image is float32 `[3, H, W]` in [0, 1], RGB.

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace mtsam::data {

/// Task names used as keys of `TaskSample::targets` by every data set.
inline constexpr const char* kSemseg = "semseg";
inline constexpr const char* kDepth = "depth";
inline constexpr const char* kNormals = "normals";
inline constexpr const char* kParts = "parts";
inline constexpr const char* kSaliency = "saliency";

/// The kind of dense prediction a task is; selects its metric.
enum class TaskKind { segmentation, depth, normals, saliency };

/// The training loss of a task (see <mtsam/losses/dense.hpp>).
enum class LossKind {
  cross_entropy,  ///< NLL of log-softmax, ignoring `ignore_index`
  masked_l1,      ///< L1 over pixels whose target is not 0
  cosine,         ///< 1 - mean dot product of unit normals over valid pixels
  normals_l1,     ///< L1 between unit normals over valid pixels
  balanced_bce,   ///< class-balanced binary cross entropy on logits
};

/// How depth and normal figures are averaged over a test set.
enum class Aggregation {
  per_image,  ///< each image's figure over its valid pixels, then the mean over images
  pooled,     ///< one figure over the valid pixels of all images together
};

/// One task of a benchmark.
struct TaskSpec {
  /// Key in `TaskSample::targets` (and a natural name for the model's head).
  std::string name;
  TaskKind kind = TaskKind::segmentation;
  /// Output channels the head predicts: classes, 1 (depth, saliency logit) or 3 (normals).
  int64_t channels = 1;
  /// Value of ignored pixels in segmentation targets (-1 NYUv2/CityScapes, 255 PASCAL).
  int64_t ignore_index = -1;
  LossKind loss = LossKind::cross_entropy;
  /// The reference's loss weight of this task (NYUv2: 1, 1, 4), before normalising by the sum.
  double loss_weight = 1.0;
  /// Whether a class that is neither in the targets nor predicted counts as IoU 0 (PASCAL
  /// convention) instead of being left out of the mean (NYUv2 convention).
  bool empty_class_counts_zero = false;
  /// How depth and normal figures are averaged over images.
  Aggregation aggregation = Aggregation::per_image;
  /// The metric names that enter result tables and Delta_b, in table order.
  std::vector<std::string> reported;
};

/// NYUv2: 13-class segmentation, depth in metres, normals. Reference loss weights 1, 1, 4.
inline std::vector<TaskSpec> nyuv2_tasks() {
  return {
      {kSemseg,
       TaskKind::segmentation,
       13,
       -1,
       LossKind::cross_entropy,
       1.0,
       false,
       Aggregation::per_image,
       {"mIoU", "Pix Acc"}},
      {kDepth,
       TaskKind::depth,
       1,
       -1,
       LossKind::masked_l1,
       1.0,
       false,
       Aggregation::per_image,
       {"Abs Err", "Rel Err"}},
      {kNormals,
       TaskKind::normals,
       3,
       -1,
       LossKind::cosine,
       4.0,
       false,
       Aggregation::per_image,
       {"Mean", "Median", "11.25", "22.5", "30"}},
  };
}

/// CityScapes: 7- or 19-class segmentation and disparity "depth".
inline std::vector<TaskSpec> cityscapes_tasks(int64_t classes = 7) {
  TORCH_CHECK(classes == 7 || classes == 19, "cityscapes_tasks: classes must be 7 or 19, got ",
              classes);
  return {
      {kSemseg,
       TaskKind::segmentation,
       classes,
       -1,
       LossKind::cross_entropy,
       1.0,
       false,
       Aggregation::per_image,
       {"mIoU", "Pix Acc"}},
      {kDepth,
       TaskKind::depth,
       1,
       -1,
       LossKind::masked_l1,
       1.0,
       false,
       Aggregation::per_image,
       {"Abs Err", "Rel Err"}},
  };
}

/// PASCAL-Context: 21-class segmentation, 7-class human parts, saliency, normals; one reported
/// metric per task as in the paper's table (saliency by its max mIoU).
inline std::vector<TaskSpec> pascal_context_tasks() {
  return {
      {kSemseg,
       TaskKind::segmentation,
       21,
       255,
       LossKind::cross_entropy,
       1.0,
       true,
       Aggregation::pooled,
       {"mIoU"}},
      {kParts,
       TaskKind::segmentation,
       7,
       255,
       LossKind::cross_entropy,
       1.0,
       true,
       Aggregation::pooled,
       {"mIoU"}},
      {kSaliency,
       TaskKind::saliency,
       1,
       255,
       LossKind::balanced_bce,
       1.0,
       false,
       Aggregation::per_image,
       {"mIoU"}},
      {kNormals,
       TaskKind::normals,
       3,
       -1,
       LossKind::normals_l1,
       1.0,
       false,
       Aggregation::pooled,
       {"Mean"}},
  };
}

/// The samples of every data set: an image and one target per task.
struct TaskSample {
  /// Float32 `[3, H, W]` in [0, 1] (`[B, 3, H, W]` once stacked).
  torch::Tensor image;
  /// Task name -> target, with the conventions of the header comment.
  std::map<std::string, torch::Tensor> targets;

  /// The target of `task`; throws naming the task and the ones present when it is missing.
  const torch::Tensor& target(const std::string& task) const {
    const auto it = targets.find(task);
    if (it == targets.end()) {
      std::string have;
      for (const auto& [name, t] : targets) {
        have += (have.empty() ? "" : ", ") + name;
      }
      throw std::out_of_range("sample has no target '" + task + "' (it has: " + have + ")");
    }
    return it->second;
  }
};

/// Stacks samples into one batch sample; all samples must have the same tasks and shapes.
/// Use as `dataset.map(mtsam::data::StackSamples())`.
struct StackSamples : torch::data::transforms::BatchTransform<std::vector<TaskSample>, TaskSample> {
  TaskSample apply_batch(std::vector<TaskSample> samples) override {
    TORCH_CHECK(!samples.empty(), "StackSamples: empty batch");
    TaskSample batch;
    std::vector<torch::Tensor> parts;
    parts.reserve(samples.size());
    for (const auto& s : samples) {
      TORCH_CHECK(s.image.sizes() == samples.front().image.sizes(),
                  "StackSamples: images of different sizes ", samples.front().image.sizes(),
                  " and ", s.image.sizes(), "; resize them to one size (data set options)");
      parts.push_back(s.image);
    }
    batch.image = torch::stack(parts);
    for (const auto& s : samples) {
      TORCH_CHECK(s.targets.size() == samples.front().targets.size(),
                  "StackSamples: samples with different task sets in one batch");
    }
    for (const auto& [name, first] : samples.front().targets) {
      parts.clear();
      for (const auto& s : samples) {
        const torch::Tensor& t = s.target(name);
        TORCH_CHECK(t.sizes() == first.sizes(), "StackSamples: task '", name,
                    "' has targets of sizes ", first.sizes(), " and ", t.sizes());
        parts.push_back(t);
      }
      batch.targets.emplace(name, torch::stack(parts));
    }
    return batch;
  }
};

}  // namespace mtsam::data
