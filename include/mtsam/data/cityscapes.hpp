#pragma once

/// CityScapes in the MTAN `.npy` layout (128x256), as a LibTorch data set.
///
/// `root/{train,val}/{image,label_7,label_19,depth}/{i}.npy`, i = 0..N-1 (2975 train, 500 val):
/// image `[H, W, 3]` in [0, 1]; label_7 / label_19 `[H, W]` with -1 void; depth `[H, W, 1]`, the
/// scaled disparity (about [0, 0.49]), 0 invalid. Any float or integer dtype is accepted. The
/// segmentation spec's channel count (7 or 19) picks the label folder.

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

/// Options of `CityScapesDataset`.
struct CityScapesOptions {
  CityScapesOptions() = default;
  /// Options for the data set under `root`.
  explicit CityScapesOptions(std::filesystem::path root) : root_(std::move(root)) {}

  /// Folder holding `train/` and `val/`.
  TORCH_ARG(std::filesystem::path, root);
  /// "train" or "val" ("test" is the same as "val").
  TORCH_ARG(std::string, split) = "train";
  /// Apply `scale_crop_flip` to every sample.
  TORCH_ARG(bool, augment) = false;
  /// Augmentation settings (the reference's by default).
  TORCH_ARG(AugmentOptions, augmentation) = AugmentOptions();
  /// Tasks to load, in this order; `cityscapes_tasks(19)` reads `label_19/`.
  TORCH_ARG(std::vector<TaskSpec>, tasks) = cityscapes_tasks(7);
};

/// The folder of each CityScapes task.
inline std::string cityscapes_folder(const TaskSpec& spec) {
  if (spec.name == kSemseg && (spec.channels == 7 || spec.channels == 19)) {
    return "label_" + std::to_string(spec.channels);
  }
  if (spec.name == kDepth)
    return "depth";
  throw std::invalid_argument("CityScapes layout has no folder for task '" + spec.name + "' with " +
                              std::to_string(spec.channels) +
                              " channels (known: semseg with 7 or 19 classes, depth)");
}

/// CityScapes as `torch::data::datasets::Dataset<CityScapesDataset, TaskSample>`. Copies share the
/// index and the epoch counter; `get` is safe to call from several loader workers at once.
class CityScapesDataset : public torch::data::datasets::Dataset<CityScapesDataset, TaskSample> {
 public:
  /// Indexes the split; throws naming the first missing folder or file.
  explicit CityScapesDataset(CityScapesOptions options) : options_(std::move(options)) {
    const std::string split = detail::split_folder(options_.split(), "CityScapes");
    std::vector<detail::FolderTask> tasks;
    for (const auto& spec : options_.tasks()) {
      tasks.push_back({spec, cityscapes_folder(spec)});
    }
    std::string layout = "root/{train,val}/{image";
    for (const auto& t : tasks)
      layout += "," + t.folder;
    layout += "}/{i}.npy";
    const auto dir = options_.root() / split;
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      throw std::runtime_error("CityScapes: expected the split folder " + dir.string() +
                               " (layout " + layout + "), but it does not exist");
    }
    folder_ = std::make_shared<detail::NpyTaskFolder>(dir, std::move(tasks), "CityScapes", layout);
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

  const CityScapesOptions& options() const { return options_; }

 private:
  CityScapesOptions options_;
  std::shared_ptr<const detail::NpyTaskFolder> folder_;
  SharedEpoch epoch_;
};

}  // namespace mtsam::data
