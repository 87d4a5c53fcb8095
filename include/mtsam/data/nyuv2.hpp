#pragma once

/// NYUv2 in the MTAN/LibMTL `.npy` layout, as a LibTorch data set.
///
/// `root/{train,val}/{image,label,depth,normal}/{i}.npy`, i = 0..N-1 (795 train, 654 val at
/// 288x384): image `[H, W, 3]` in [0, 1]; label `[H, W]`, 13 classes, -1 ignore; depth
/// `[H, W, 1]` in metres, 0 invalid; normal `[H, W, 3]` in [-1, 1], (0, 0, 0) invalid. Any
/// float or integer dtype is accepted. The scenes written by <mtsam/data/scene_dataset.hpp>
/// use the same layout and add `saliency/`.

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <mtsam/data/augment.hpp>
#include <mtsam/data/npy_folder.hpp>
#include <mtsam/data/tasks.hpp>

namespace mtsam::data {

/// Options of `NyuV2Dataset`.
struct NyuV2Options {
  NyuV2Options() = default;
  /// Options for the data set under `root`.
  explicit NyuV2Options(std::filesystem::path root) : root_(std::move(root)) {}

  /// Folder holding `train/` and `val/`.
  TORCH_ARG(std::filesystem::path, root);
  /// "train" or "val" ("test" is the same as "val").
  TORCH_ARG(std::string, split) = "train";
  /// Apply `scale_crop_flip` to every sample.
  TORCH_ARG(bool, augment) = false;
  /// Augmentation settings (the reference's by default).
  TORCH_ARG(AugmentOptions, augmentation) = AugmentOptions();
  /// Tasks to load, in this order; by default `nyuv2_tasks()`. A spec named `saliency` reads the
  /// `saliency/` folder of written scenes; number of classes comes from the segmentation spec.
  TORCH_ARG(std::vector<TaskSpec>, tasks) = nyuv2_tasks();
};

/// The folder of each NYUv2-layout task.
inline std::string nyuv2_folder(const TaskSpec& spec) {
  if (spec.name == kSemseg)
    return "label";
  if (spec.name == kDepth)
    return "depth";
  if (spec.name == kNormals)
    return "normal";
  if (spec.name == kSaliency)
    return "saliency";
  throw std::invalid_argument("NYUv2 layout has no folder for task '" + spec.name +
                              "' (known: semseg, depth, normals, saliency)");
}

/// NYUv2 as `torch::data::datasets::Dataset<NyuV2Dataset, TaskSample>`. Copies share the
/// index and the epoch counter; `get` is safe to call from several loader workers at once.
class NyuV2Dataset : public torch::data::datasets::Dataset<NyuV2Dataset, TaskSample> {
 public:
  /// Indexes the split; throws naming the first missing folder or file.
  explicit NyuV2Dataset(NyuV2Options options) : options_(std::move(options)) {
    const std::string split = detail::split_folder(options_.split(), "NYUv2");
    std::vector<detail::FolderTask> tasks;
    for (const auto& spec : options_.tasks()) {
      tasks.push_back({spec, nyuv2_folder(spec)});
    }
    std::string layout = "root/{train,val}/{image";
    for (const auto& t : tasks)
      layout += "," + t.folder;
    layout += "}/{i}.npy";
    const auto dir = options_.root() / split;
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      throw std::runtime_error("NYUv2: expected the split folder " + dir.string() + " (layout " +
                               layout + "), but it does not exist");
    }
    folder_ = std::make_shared<detail::NpyTaskFolder>(dir, std::move(tasks), "NYUv2", layout);
  }

  /// Sample `index` (augmented when `augment` is set, seeded by seed, epoch and index).
  TaskSample get(size_t index) override {
    TaskSample sample = folder_->load(index);
    if (options_.augment()) {
      SampleRng rng(options_.augmentation().seed(), epoch_.get(), static_cast<int64_t>(index));
      sample = scale_crop_flip(sample, options_.tasks(), options_.augmentation(), rng);
    }
    return sample;
  }

  std::optional<size_t> size() const override { return folder_->size(); }

  /// The tasks every sample carries.
  const std::vector<TaskSpec>& tasks() const { return options_.tasks(); }

  /// The epoch counter shared with every copy (set it before each epoch's `begin()`).
  SharedEpoch epoch() const { return epoch_; }

  const NyuV2Options& options() const { return options_; }

 private:
  NyuV2Options options_;
  std::shared_ptr<const detail::NpyTaskFolder> folder_;
  SharedEpoch epoch_;
};

}  // namespace mtsam::data
