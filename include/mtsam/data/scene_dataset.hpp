#pragma once

/// The built-in data set: procedurally rendered indoor scenes (<mtsam/data/scene/layout.hpp>,
/// <mtsam/data/scene/render.hpp>) with exact segmentation (10 classes), depth, normals and
/// saliency, deterministic for a seed and any size. Usable in memory as a LibTorch data set, or
/// written in the NYUv2 `.npy` layout (plus `saliency/`) for `NyuV2Dataset` to read.

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <mtsam/data/augment.hpp>
#include <mtsam/data/npy.hpp>
#include <mtsam/data/npy_folder.hpp>
#include <mtsam/data/scene/layout.hpp>
#include <mtsam/data/scene/render.hpp>
#include <mtsam/data/tasks.hpp>

namespace mtsam::data {

using scene::kSceneClasses;

/// The scene tasks: NYUv2's three (10 classes, same losses and metrics) plus saliency.
inline std::vector<TaskSpec> scene_tasks() {
  std::vector<TaskSpec> tasks = nyuv2_tasks();
  tasks[0].channels = kSceneClasses;
  tasks.push_back({kSaliency,
                   TaskKind::saliency,
                   1,
                   255,
                   LossKind::balanced_bce,
                   1.0,
                   false,
                   Aggregation::per_image,
                   {"maxF", "mIoU"}});
  return tasks;
}

/// Options of `SceneDataset`.
struct SceneOptions {
  /// Image height in pixels.
  TORCH_ARG(int64_t, height) = 96;
  /// Image width in pixels.
  TORCH_ARG(int64_t, width) = 128;
  /// Number of scenes in the split.
  TORCH_ARG(int64_t, count) = 256;
  /// Seed of the scenes; the same seed gives the same scenes at any size.
  TORCH_ARG(uint64_t, seed) = 0;
  /// "train" or "val" ("test"): the two splits draw disjoint scene streams from one seed.
  TORCH_ARG(std::string, split) = "train";
  /// Render every scene once at construction and keep it (about 40 bytes per pixel).
  TORCH_ARG(bool, cache) = false;
  /// Apply `scale_crop_flip` to every sample.
  TORCH_ARG(bool, augment) = false;
  /// Augmentation settings (the NYUv2 reference's by default).
  TORCH_ARG(AugmentOptions, augmentation) = AugmentOptions();
  /// Tasks each sample carries, a subset of `scene_tasks()`.
  TORCH_ARG(std::vector<TaskSpec>, tasks) = scene_tasks();
};

/// Scene `index` of a split: the layout drawn from (seed, split stream, index), rendered.
inline TaskSample render_scene_sample(uint64_t seed, const std::string& split, int64_t index,
                                      int64_t height, int64_t width) {
  const std::string folder = detail::split_folder(split, "scenes");
  SampleRng rng(seed, folder == "train" ? -1 : -2, index);
  return scene::render_scene(scene::sample_scene(rng), height, width);
}

/// The procedural scenes as `torch::data::datasets::Dataset<SceneDataset, TaskSample>`.
class SceneDataset : public torch::data::datasets::Dataset<SceneDataset, TaskSample> {
 public:
  explicit SceneDataset(SceneOptions options = SceneOptions()) : options_(std::move(options)) {
    TORCH_CHECK(options_.count() > 0, "SceneDataset: count must be positive, got ",
                options_.count());
    detail::split_folder(options_.split(), "SceneDataset");
    for (const auto& spec : options_.tasks()) {
      TORCH_CHECK(spec.name == kSemseg || spec.name == kDepth || spec.name == kNormals ||
                      spec.name == kSaliency,
                  "SceneDataset: no task '", spec.name,
                  "' (known: semseg, depth, normals, saliency)");
    }
    if (options_.cache()) {
      auto cache = std::make_shared<std::vector<TaskSample>>(static_cast<size_t>(options_.count()));
      at::parallel_for(0, options_.count(), 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
          (*cache)[static_cast<size_t>(i)] = render(i);
      });
      cache_ = std::move(cache);
    }
  }

  /// Scene `index`, rendered (or taken from the cache) and augmented per options.
  TaskSample get(size_t index) override {
    TORCH_CHECK(static_cast<int64_t>(index) < options_.count(), "SceneDataset: index ", index,
                " out of range for ", options_.count(), " scenes");
    TaskSample sample = cache_ ? (*cache_)[index] : render(static_cast<int64_t>(index));
    if (options_.augment()) {
      SampleRng rng(options_.augmentation().seed(), epoch_.get(), static_cast<int64_t>(index));
      sample = scale_crop_flip(sample, options_.tasks(), options_.augmentation(), rng);
    }
    return sample;
  }

  std::optional<size_t> size() const override { return static_cast<size_t>(options_.count()); }
  const std::vector<TaskSpec>& tasks() const { return options_.tasks(); }
  /// The epoch counter shared with every copy (set it before each epoch's `begin()`).
  SharedEpoch epoch() const { return epoch_; }
  const SceneOptions& options() const { return options_; }

 private:
  TaskSample render(int64_t index) const {
    TaskSample full = render_scene_sample(options_.seed(), options_.split(), index,
                                          options_.height(), options_.width());
    TaskSample out;
    out.image = full.image;
    for (const auto& spec : options_.tasks()) {
      out.targets.emplace(spec.name, full.targets.at(spec.name));
    }
    return out;
  }

  SceneOptions options_;
  std::shared_ptr<const std::vector<TaskSample>> cache_;
  SharedEpoch epoch_;
};

/// Writes `train_count` and `val_count` scenes of `seed` at `height x width` under `root` in
/// the NYUv2 layout: `{train,val}/{image,label,depth,normal,saliency}/{i}.npy`, float32, image
/// `[H, W, 3]`, label `[H, W]`, depth `[H, W, 1]`, normal `[H, W, 3]`, saliency `[H, W]`.
/// Read it back with `NyuV2Dataset` and `tasks = scene_tasks()`.
inline void write_scene_dataset(const std::filesystem::path& root, int64_t train_count,
                                int64_t val_count, uint64_t seed = 0, int64_t height = 96,
                                int64_t width = 128) {
  TORCH_CHECK(train_count >= 0 && val_count >= 0, "write_scene_dataset: negative count");
  for (const auto& [split, count] : {std::pair<std::string, int64_t>{"train", train_count},
                                     std::pair<std::string, int64_t>{"val", val_count}}) {
    const auto dir = root / split;
    for (const char* folder : {"image", "label", "depth", "normal", "saliency"}) {
      std::filesystem::create_directories(dir / folder);
    }
    at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const TaskSample s = render_scene_sample(seed, split, i, height, width);
        const std::string name = std::to_string(i) + ".npy";
        write_npy(dir / "image" / name, s.image.permute({1, 2, 0}));
        write_npy(dir / "label" / name, s.target(kSemseg).to(torch::kFloat32));
        write_npy(dir / "depth" / name, s.target(kDepth).permute({1, 2, 0}));
        write_npy(dir / "normal" / name, s.target(kNormals).permute({1, 2, 0}));
        write_npy(dir / "saliency" / name, s.target(kSaliency).squeeze(0));
      }
    });
  }
}

}  // namespace mtsam::data
