#pragma once

/// The machinery behind the `.npy` folder data sets (NYUv2, CityScapes, written scenes):
/// `split/{folder}/{i}.npy` for i = 0..N-1, one folder per task plus `image/`, and the
/// conversion of each array to the target conventions of <mtsam/data/tasks.hpp>.

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <mtsam/data/npy.hpp>
#include <mtsam/data/tasks.hpp>

namespace mtsam::data::detail {

/// `[H, W]`, `[H, W, 1]` or `[1, H, W]` -> `[H, W]`; anything else is an error naming `where`.
inline torch::Tensor as_hw(const torch::Tensor& t, const std::string& where) {
  if (t.dim() == 2)
    return t;
  if (t.dim() == 3 && t.size(2) == 1)
    return t.squeeze(2);
  if (t.dim() == 3 && t.size(0) == 1)
    return t.squeeze(0);
  throw std::runtime_error(where + ": expected an [H, W] or [H, W, 1] array, got " +
                           c10::str(t.sizes()));
}

/// `[H, W, C]` -> float32 `[C, H, W]`; `C` must be `channels`. uint8 arrays are divided by 255.
inline torch::Tensor as_chw(const torch::Tensor& t, int64_t channels, const std::string& where) {
  if (t.dim() != 3 || t.size(2) != channels) {
    throw std::runtime_error(where + ": expected an [H, W, " + std::to_string(channels) +
                             "] array, got " + c10::str(t.sizes()));
  }
  torch::Tensor f = t.permute({2, 0, 1}).to(torch::kFloat32);
  if (t.scalar_type() == torch::kUInt8) {
    f = f / 255.0f;
  }
  return f.contiguous();
}

/// A normal map `[H, W, 3]` as float32 `[3, H, W]`: floats as they are (non-finite values
/// become 0, invalid); uint8 arrays as the usual picture encoding n = 2 v / 255 - 1, where a
/// pixel of three zero bytes is invalid (0, 0, 0).
inline torch::Tensor as_normals(const torch::Tensor& t, const std::string& where) {
  torch::Tensor f = as_chw(t, 3, where);
  if (t.scalar_type() != torch::kUInt8) {
    return f.nan_to_num(0.0, 0.0, 0.0);
  }
  const auto invalid = f.sum(0, true).eq(0);
  return (f * 2.0f - 1.0f).masked_fill(invalid, 0.0f).contiguous();
}

/// A segmentation array as int64 `[H, W]`; values outside [0, classes) become `ignore`.
inline torch::Tensor as_label(const torch::Tensor& t, int64_t classes, int64_t ignore,
                              const std::string& where) {
  torch::Tensor hw = as_hw(t, where);
  if (hw.is_floating_point()) {
    hw = hw.nan_to_num(-1.0).round();
  }
  hw = hw.to(torch::kInt64);
  return hw.masked_fill(hw.lt(0).logical_or(hw.ge(classes)), ignore).contiguous();
}

/// A depth (or disparity) array as float32 `[1, H, W]`; non-finite values become 0 (invalid).
inline torch::Tensor as_depth(const torch::Tensor& t, const std::string& where) {
  return as_hw(t, where).to(torch::kFloat32).nan_to_num(0.0, 0.0, 0.0).unsqueeze(0).contiguous();
}

/// One task of a folder data set: its spec and the folder its arrays live in.
struct FolderTask {
  TaskSpec spec;
  std::string folder;
};

/// Indexes `split_dir/image/{i}.npy` and the task folders beside it, checking up front that
/// every file exists, and loads samples.
class NpyTaskFolder {
 public:
  NpyTaskFolder() = default;

  /// `dataset` and `layout` only word the errors (e.g. "NYUv2", "root/{train,val}/...").
  NpyTaskFolder(std::filesystem::path split_dir, std::vector<FolderTask> tasks,
                const std::string& dataset, const std::string& layout)
      : dir_(std::move(split_dir)), tasks_(std::move(tasks)) {
    std::error_code ec;
    const auto image_dir = dir_ / "image";
    if (!std::filesystem::is_directory(image_dir, ec)) {
      throw std::runtime_error(dataset + ": expected the folder " + image_dir.string() +
                               " of {i}.npy images (layout " + layout + "), but it does not exist");
    }
    std::set<int64_t> indices;
    for (const auto& entry : std::filesystem::directory_iterator(image_dir)) {
      if (entry.path().extension() != ".npy")
        continue;
      const auto stem = entry.path().stem().string();
      if (stem.empty() || stem.size() > 9 ||
          stem.find_first_not_of("0123456789") != std::string::npos) {
        continue;
      }
      indices.insert(std::stoll(stem));
    }
    if (indices.empty()) {
      throw std::runtime_error(dataset + ": the folder " + image_dir.string() +
                               " holds no {i}.npy image (layout " + layout + ")");
    }
    count_ = static_cast<size_t>(*indices.rbegin() + 1);
    for (size_t i = 0; i < count_; ++i) {
      const auto missing = [&](const std::string& folder) {
        return dataset + ": expected " + (dir_ / folder / (std::to_string(i) + ".npy")).string() +
               " (files are numbered 0.." + std::to_string(count_ - 1) + ", layout " + layout +
               "), but it does not exist";
      };
      if (indices.count(static_cast<int64_t>(i)) == 0) {
        throw std::runtime_error(missing("image"));
      }
      for (const auto& task : tasks_) {
        if (!std::filesystem::is_regular_file(path(task.folder, i), ec)) {
          throw std::runtime_error(missing(task.folder));
        }
      }
    }
  }

  size_t size() const { return count_; }
  const std::filesystem::path& dir() const { return dir_; }

  /// The task specs, in the order given.
  std::vector<TaskSpec> specs() const {
    std::vector<TaskSpec> out;
    for (const auto& t : tasks_)
      out.push_back(t.spec);
    return out;
  }

  /// Loads sample `index` with every target converted and checked against the image size.
  TaskSample load(size_t index) const {
    TORCH_CHECK(index < count_, "sample index ", index, " out of range for ", count_,
                " samples in ", dir_.string());
    TaskSample sample;
    const auto image_path = path("image", index);
    sample.image = as_chw(read_npy(image_path), 3, image_path.string());
    const int64_t h = sample.image.size(1);
    const int64_t w = sample.image.size(2);
    for (const auto& task : tasks_) {
      const auto p = path(task.folder, index);
      const std::string where = p.string();
      const torch::Tensor raw = read_npy(p);
      torch::Tensor t;
      switch (task.spec.kind) {
        case TaskKind::segmentation:
          t = as_label(raw, task.spec.channels, task.spec.ignore_index, where);
          break;
        case TaskKind::depth:
          t = as_depth(raw, where);
          break;
        case TaskKind::normals:
          t = as_normals(raw, where);
          break;
        case TaskKind::saliency:
          t = as_hw(raw, where).to(torch::kFloat32).unsqueeze(0);
          break;
      }
      if (t.size(-2) != h || t.size(-1) != w) {
        throw std::runtime_error(where + ": size " + std::to_string(t.size(-2)) + "x" +
                                 std::to_string(t.size(-1)) + " differs from the image's " +
                                 std::to_string(h) + "x" + std::to_string(w));
      }
      sample.targets.emplace(task.spec.name, std::move(t));
    }
    return sample;
  }

 private:
  std::filesystem::path path(const std::string& folder, size_t index) const {
    return dir_ / folder / (std::to_string(index) + ".npy");
  }

  std::filesystem::path dir_;
  std::vector<FolderTask> tasks_;
  size_t count_ = 0;
};

/// `split` as the folder name: "train", or "val" (also accepted as "test").
inline std::string split_folder(const std::string& split, const std::string& dataset) {
  if (split == "train")
    return "train";
  if (split == "val" || split == "test")
    return "val";
  throw std::invalid_argument(dataset + ": split must be \"train\" or \"val\" (\"test\"), got \"" +
                              split + "\"");
}

}  // namespace mtsam::data::detail
