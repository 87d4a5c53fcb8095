#pragma once

/// PASCAL-Context multi-task (the `PASCAL_MT` layout) as a LibTorch data set.
///
/// Under `root`: `ImageSets/Context/{train,val}.txt` (one id per line), `JPEGImages/{id}.jpg`,
/// `semseg/pascal-context/{id}.png` (21 classes, 255 ignore), `human_parts/{id}.mat` (see
/// <mtsam/data/human_parts.hpp>), `sal_distill/{id}.png` (salient where > 0.5 of 255),
/// `normals_distill/{id}.png` (n = 2 png / 255 - 1) and `pascal-context/trainval/{id}.mat`
/// (variable `LabelMap` of 459-class Context ids: normals count only on the 170 ids of
/// `kPascalNormalValidIds`; elsewhere they are (0, 0, 0), invalid). Valid normals are scaled to
/// unit length. Samples are resized to `height x width` (image bilinear, everything else nearest)
/// unless those are 0.

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <mtsam/data/augment.hpp>
#include <mtsam/data/human_parts.hpp>
#include <mtsam/data/image_io.hpp>
#include <mtsam/data/mat_io.hpp>
#include <mtsam/data/tasks.hpp>

namespace mtsam::data {

/// The Context `LabelMap` ids on which the distilled normals are valid.
inline constexpr std::array<int16_t, 170> kPascalNormalValidIds = {
    3,   4,   6,   9,   10,  11,  13,  15,  17,  18,  22,  23,  29,  30,  33,  34,  36,  37,  38,
    39,  41,  43,  46,  49,  50,  51,  53,  55,  56,  59,  61,  62,  65,  66,  68,  69,  72,  73,
    78,  83,  84,  85,  87,  88,  95,  96,  101, 104, 105, 107, 111, 113, 115, 122, 124, 135, 141,
    142, 143, 146, 150, 154, 157, 158, 159, 165, 172, 174, 181, 183, 184, 191, 193, 195, 197, 199,
    202, 213, 215, 216, 219, 220, 223, 225, 228, 230, 232, 233, 238, 239, 242, 243, 246, 250, 251,
    252, 255, 260, 261, 263, 269, 272, 273, 275, 281, 283, 284, 285, 286, 287, 288, 290, 291, 292,
    293, 295, 304, 307, 309, 310, 314, 315, 319, 323, 329, 330, 331, 336, 342, 345, 349, 350, 351,
    352, 355, 357, 368, 370, 371, 374, 379, 380, 383, 384, 397, 401, 403, 405, 407, 408, 411, 412,
    413, 414, 417, 419, 421, 423, 427, 429, 430, 432, 440, 441, 442, 443, 444, 446, 454, 457};

/// Options of `PascalContextDataset`.
struct PascalContextOptions {
  PascalContextOptions() = default;
  /// Options for the `PASCAL_MT` folder `root`.
  explicit PascalContextOptions(std::filesystem::path root) : root_(std::move(root)) {}

  /// The `PASCAL_MT` folder.
  TORCH_ARG(std::filesystem::path, root);
  /// "train" or "val" ("test" is the same as "val").
  TORCH_ARG(std::string, split) = "train";
  /// Output height; 0 keeps each image's own size (then batch one image at a time).
  TORCH_ARG(int64_t, height) = 512;
  /// Output width; 0 keeps each image's own size.
  TORCH_ARG(int64_t, width) = 512;
  /// Apply `scale_crop_flip` after resizing.
  TORCH_ARG(bool, augment) = false;
  /// Augmentation settings; normals are resized nearest so their invalid mask stays exact.
  TORCH_ARG(AugmentOptions, augmentation) = AugmentOptions().bilinear_normals(false);
  /// Tasks to load, any subset of `pascal_context_tasks()`.
  TORCH_ARG(std::vector<TaskSpec>, tasks) = pascal_context_tasks();
};

/// PASCAL-Context as `torch::data::datasets::Dataset<PascalContextDataset, TaskSample>`.
class PascalContextDataset
    : public torch::data::datasets::Dataset<PascalContextDataset, TaskSample> {
 public:
  /// Reads the split list and checks that every file of every listed id exists.
  explicit PascalContextDataset(PascalContextOptions options) : options_(std::move(options)) {
    const std::string split = options_.split() == "test" ? "val" : options_.split();
    TORCH_CHECK(split == "train" || split == "val",
                "PASCAL-Context: split must be \"train\" or \"val\", got \"", options_.split(),
                "\"");
    const auto list = options_.root() / "ImageSets" / "Context" / (split + ".txt");
    std::ifstream in(list);
    if (!in) {
      throw std::runtime_error("PASCAL-Context: expected the split list " + list.string() +
                               " (PASCAL_MT layout, one image id per line), but cannot read it");
    }
    auto ids = std::make_shared<std::vector<std::string>>();
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
        line.pop_back();
      if (!line.empty())
        ids->push_back(line);
    }
    if (ids->empty()) {
      throw std::runtime_error("PASCAL-Context: the split list " + list.string() + " is empty");
    }
    std::error_code ec;
    for (const auto& id : *ids) {
      for (const auto& [p, what] : files(id)) {
        if (!std::filesystem::is_regular_file(p, ec)) {
          throw std::runtime_error("PASCAL-Context: expected " + what + " at " + p.string() +
                                   " for image id " + id + " of " + list.string() +
                                   ", but there is no such file");
        }
      }
    }
    ids_ = std::move(ids);
  }

  /// Sample `index`: the image and the requested targets, resized and augmented per options.
  TaskSample get(size_t index) override {
    TORCH_CHECK(index < ids_->size(), "PASCAL-Context: index ", index, " out of range for ",
                ids_->size(), " images");
    const std::string& id = (*ids_)[index];
    const auto& root = options_.root();
    TaskSample sample;
    sample.image = read_image(root / "JPEGImages" / (id + ".jpg"), 3)
                       .permute({2, 0, 1})
                       .to(torch::kFloat32)
                       .div(255.0f);
    const int64_t h = sample.image.size(1);
    const int64_t w = sample.image.size(2);
    for (const auto& spec : options_.tasks()) {
      torch::Tensor t;
      if (spec.name == kSemseg) {
        t = read_label_png(root / "semseg" / "pascal-context" / (id + ".png"));
        t = t.masked_fill(t.ge(spec.channels).logical_and(t.ne(kPascalIgnore)), kPascalIgnore);
      } else if (spec.name == kParts) {
        t = read_human_parts(root / "human_parts" / (id + ".mat"), h, w);
      } else if (spec.name == kSaliency) {
        t = read_image(root / "sal_distill" / (id + ".png"), 1)
                .permute({2, 0, 1})
                .to(torch::kFloat32)
                .gt(127.5f)
                .to(torch::kFloat32);
      } else if (spec.name == kNormals) {
        t = load_normals(id, h, w);
      } else {
        throw std::invalid_argument("PASCAL-Context has no task '" + spec.name + "'");
      }
      check_size(t, h, w, spec.name, id);
      sample.targets.emplace(spec.name, std::move(t));
    }
    if (options_.height() > 0 && options_.width() > 0) {
      sample = resized(sample);
    }
    if (options_.augment()) {
      SampleRng rng(options_.augmentation().seed(), epoch_.get(), static_cast<int64_t>(index));
      sample = scale_crop_flip(sample, options_.tasks(), options_.augmentation(), rng);
    }
    return sample;
  }

  std::optional<size_t> size() const override { return ids_->size(); }

  /// The image ids of the split, in list order.
  const std::vector<std::string>& ids() const { return *ids_; }
  const std::vector<TaskSpec>& tasks() const { return options_.tasks(); }
  /// The epoch counter shared with every copy (set it before each epoch's `begin()`).
  SharedEpoch epoch() const { return epoch_; }

 private:
  std::vector<std::pair<std::filesystem::path, std::string>> files(const std::string& id) const {
    const auto& root = options_.root();
    std::vector<std::pair<std::filesystem::path, std::string>> out = {
        {root / "JPEGImages" / (id + ".jpg"), "the JPEG image"}};
    for (const auto& spec : options_.tasks()) {
      if (spec.name == kSemseg) {
        out.emplace_back(root / "semseg" / "pascal-context" / (id + ".png"), "the label PNG");
      } else if (spec.name == kParts) {
        out.emplace_back(root / "human_parts" / (id + ".mat"), "the human parts .mat");
      } else if (spec.name == kSaliency) {
        out.emplace_back(root / "sal_distill" / (id + ".png"), "the saliency PNG");
      } else if (spec.name == kNormals) {
        out.emplace_back(root / "normals_distill" / (id + ".png"), "the normals PNG");
        out.emplace_back(root / "pascal-context" / "trainval" / (id + ".mat"),
                         "the Context LabelMap .mat");
      } else {
        throw std::invalid_argument("PASCAL-Context has no task '" + spec.name +
                                    "' (known: semseg, parts, saliency, normals)");
      }
    }
    return out;
  }

  torch::Tensor load_normals(const std::string& id, int64_t h, int64_t w) const {
    const auto& root = options_.root();
    const auto png = root / "normals_distill" / (id + ".png");
    torch::Tensor n = read_image(png, 3).permute({2, 0, 1}).to(torch::kFloat32);
    n = n * (2.0f / 255.0f) - 1.0f;
    const auto mat = root / "pascal-context" / "trainval" / (id + ".mat");
    const torch::Tensor ids = read_mat_array(mat, "LabelMap").to(torch::kInt64);
    if (ids.dim() != 2 || ids.size(0) != h || ids.size(1) != w) {
      throw std::runtime_error(mat.string() + ": LabelMap is " + c10::str(ids.sizes()) +
                               ", expected " + std::to_string(h) + "x" + std::to_string(w));
    }
    torch::Tensor lut = torch::zeros({460}, torch::kBool);
    for (const int16_t v : kPascalNormalValidIds)
      lut[v] = true;
    const torch::Tensor valid = lut.index({ids.clamp(0, 459)}).logical_and(ids.le(459));
    n = torch::nn::functional::normalize(n, torch::nn::functional::NormalizeFuncOptions().dim(0));
    return n.masked_fill(valid.logical_not().unsqueeze(0), 0.0f).contiguous();
  }

  static void check_size(const torch::Tensor& t, int64_t h, int64_t w, const std::string& task,
                         const std::string& id) {
    if (t.size(-2) != h || t.size(-1) != w) {
      throw std::runtime_error("PASCAL-Context: target '" + task + "' of image " + id + " is " +
                               c10::str(t.sizes()) + ", the image is " + std::to_string(h) + "x" +
                               std::to_string(w));
    }
  }

  TaskSample resized(const TaskSample& s) const {
    namespace F = torch::nn::functional;
    const std::vector<int64_t> size = {options_.height(), options_.width()};
    TaskSample out;
    out.image =
        F::interpolate(
            s.image.unsqueeze(0),
            F::InterpolateFuncOptions().size(size).mode(torch::kBilinear).align_corners(false))
            .squeeze(0);
    for (const auto& [name, t] : s.targets) {
      const bool label = !t.is_floating_point();
      torch::Tensor x = label ? t.unsqueeze(0).to(torch::kFloat32) : t;
      x = F::interpolate(x.unsqueeze(0),
                         F::InterpolateFuncOptions().size(size).mode(torch::kNearest))
              .squeeze(0);
      out.targets.emplace(name, label ? x.squeeze(0).round().to(t.scalar_type()) : x);
    }
    return out;
  }

  PascalContextOptions options_;
  std::shared_ptr<const std::vector<std::string>> ids_;
  SharedEpoch epoch_;
};

}  // namespace mtsam::data
