#pragma once

/// Pictures of predictions beside the ground truth: segmentation in a palette, depth in a colour
/// map whose range the truth sets for both, normals as RGB, saliency in grey; unknown pixels
/// black.

#include <mtsam/data/colormap.hpp>
#include <mtsam/data/image_io.hpp>
#include <mtsam/data/tasks.hpp>
#include <mtsam/train/task.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace mtsam::train {

/// A task's raw output `[C, H, W]` and its target as two uint8 `[H, W, 3]` pictures
/// (prediction, truth), drawn alike with the colour helpers of <mtsam/data/colormap.hpp>.
inline std::pair<torch::Tensor, torch::Tensor> render_task(const data::TaskSpec& spec,
                                                           const torch::Tensor& output,
                                                           const torch::Tensor& target) {
  const auto out = output.detach().to(torch::kCPU, torch::kFloat32);
  const auto truth = target.detach().to(torch::kCPU);
  const auto plane = [](const torch::Tensor& t) { return t.reshape({t.size(-2), t.size(-1)}); };
  switch (spec.kind) {
    case data::TaskKind::segmentation:
      return {data::colorize_labels(out.argmax(0), spec.channels),
              data::colorize_labels(plane(truth), spec.channels)};
    case data::TaskKind::depth: {
      const auto gt = plane(truth).to(torch::kFloat32);
      const auto valid = gt.ne(0);
      const auto reference = valid.any().item<bool>() ? gt.masked_select(valid) : out.flatten();
      const double near = reference.min().item<double>();
      const double far = reference.max().item<double>();
      // A prediction of exactly 0 would read as invalid: nudge it into the range's bottom.
      const auto pred = torch::where(out[0].eq(0), torch::full_like(out[0], near), out[0]);
      return {data::colorize_depth(pred, near, far), data::colorize_depth(gt, near, far)};
    }
    case data::TaskKind::normals: {
      const auto unit = out / out.norm(2, 0, true).clamp_min(1e-12);
      return {data::colorize_normals(unit), data::colorize_normals(truth.to(torch::kFloat32))};
    }
    case data::TaskKind::saliency: {
      const auto gt = plane(truth).to(torch::kFloat32);
      const auto ignored = gt.eq(static_cast<double>(spec.ignore_index)).unsqueeze(0);
      return {data::image_to_rgb(torch::sigmoid(out[0]).unsqueeze(0)),
              data::image_to_rgb(gt.unsqueeze(0).masked_fill(ignored, 0.0))};
    }
  }
  TORCH_CHECK(false, "render_task: unknown kind of task '", spec.name, "'");
}

/// A task's raw output `[C, H, W]` alone as a uint8 `[H, W, 3]` picture: classes in the palette,
/// depth in the colour map over its own range, normals as RGB, saliency probability in grey.
inline torch::Tensor render_prediction(const data::TaskSpec& spec, const torch::Tensor& output) {
  const auto out = output.detach().to(torch::kCPU, torch::kFloat32);
  switch (spec.kind) {
    case data::TaskKind::segmentation:
      return data::colorize_labels(out.argmax(0), spec.channels);
    case data::TaskKind::depth: {
      const double near = out[0].min().item<double>();
      const auto pred = torch::where(out[0].eq(0), torch::full_like(out[0], near), out[0]);
      return data::colorize_depth(pred, near, out[0].max().item<double>());
    }
    case data::TaskKind::normals:
      return data::colorize_normals(out / out.norm(2, 0, true).clamp_min(1e-12));
    case data::TaskKind::saliency:
      return data::image_to_rgb(torch::sigmoid(out[0]).unsqueeze(0));
  }
  TORCH_CHECK(false, "render_prediction: unknown kind of task '", spec.name, "'");
}

/// The picture files of one test image, relative to the report folder.
struct PictureRow {
  int64_t index = 0;  ///< index in the test split
  std::string input;
  std::vector<std::pair<std::string, std::string>> tasks;  ///< (prediction, truth) per head
};

/// Draws `count` test images spread over `split` (prediction and truth per task) as PNG files
/// in `folder/images/`, and returns their names relative to `folder`. The module is left in
/// eval mode.
inline std::vector<PictureRow> draw_predictions(const TrainableModel& model,
                                                const std::vector<TaskHead>& heads,
                                                const DataSource& split, int64_t count,
                                                const std::filesystem::path& folder,
                                                torch::Device device) {
  std::vector<PictureRow> rows;
  count = std::min(count, split.size);
  if (count <= 0) {
    return rows;
  }
  std::filesystem::create_directories(folder / "images");
  model.module->eval();
  torch::NoGradGuard no_grad;
  for (int64_t k = 0; k < count; ++k) {
    PictureRow row;
    row.index = k * split.size / count;
    const auto [images, targets] = load_batch(split, {row.index}, 0, heads, device);
    const auto outputs = model.forward(images);
    const std::string stem = "images/test" + std::to_string(row.index);
    row.input = stem + "_input.png";
    data::write_png(folder / row.input, data::image_to_rgb(images[0]));
    for (size_t t = 0; t < heads.size(); ++t) {
      const auto [prediction, truth] = render_task(heads[t].spec, outputs[t][0], targets[t][0]);
      const std::string base = stem + "_" + heads[t].spec.name;
      data::write_png(folder / (base + "_prediction.png"), prediction.contiguous());
      data::write_png(folder / (base + "_truth.png"), truth.contiguous());
      row.tasks.emplace_back(base + "_prediction.png", base + "_truth.png");
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace mtsam::train
