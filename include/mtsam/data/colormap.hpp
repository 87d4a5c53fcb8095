#pragma once

/// Turning images and dense targets or predictions into uint8 RGB pictures `[H, W, 3]`: a class
/// palette for labels, a colour map for depth, RGB for normals, and a side-by-side strip.

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace mtsam::data {

/// `classes` distinct colours, uint8 `[classes, 3]`: the bits of `class + 1` spread over the high
/// bits of the three channels, so no class is black (black marks ignored pixels).
inline torch::Tensor label_palette(int64_t classes) {
  TORCH_CHECK(classes > 0 && classes <= 4096, "label_palette: classes must be 1..4096, got ",
              classes);
  torch::Tensor p = torch::empty({classes, 3}, torch::kUInt8);
  auto acc = p.accessor<uint8_t, 2>();
  for (int64_t c = 0; c < classes; ++c) {
    std::array<int, 3> rgb{0, 0, 0};
    int64_t bits = c + 1;
    for (int level = 7; level >= 0 && bits > 0; --level) {
      for (int ch = 0; ch < 3; ++ch) {
        rgb[static_cast<size_t>(ch)] |= static_cast<int>(bits & 1) << level;
        bits >>= 1;
      }
    }
    for (int ch = 0; ch < 3; ++ch)
      acc[c][ch] = static_cast<uint8_t>(rgb[static_cast<size_t>(ch)]);
  }
  return p;
}

/// Labels `[H, W]` (int) -> uint8 `[H, W, 3]` with `label_palette`; labels outside [0, classes)
/// (ignore values) are black.
inline torch::Tensor colorize_labels(const torch::Tensor& labels, int64_t classes) {
  TORCH_CHECK(labels.dim() == 2, "colorize_labels: expected [H, W], got ", labels.sizes());
  const torch::Tensor l = labels.to(torch::kCPU, torch::kInt64);
  const torch::Tensor valid = l.ge(0).logical_and(l.lt(classes));
  const torch::Tensor rgb = label_palette(classes).index({l.clamp(0, classes - 1)});
  return rgb.masked_fill(valid.logical_not().unsqueeze(2), 0).contiguous();
}

/// A colour map from dark blue through cyan, green and yellow to dark red, for t in [0, 1]:
/// float `[..., 3]` in [0, 1].
inline torch::Tensor depth_colormap(const torch::Tensor& t) {
  static const std::array<std::array<float, 3>, 7> anchors = {{{0.19f, 0.07f, 0.42f},
                                                               {0.16f, 0.42f, 0.93f},
                                                               {0.10f, 0.80f, 0.78f},
                                                               {0.40f, 0.95f, 0.32f},
                                                               {0.93f, 0.86f, 0.20f},
                                                               {0.97f, 0.42f, 0.10f},
                                                               {0.55f, 0.05f, 0.03f}}};
  const torch::Tensor table = torch::empty({7, 3}, torch::kFloat32);
  for (int64_t i = 0; i < 7; ++i) {
    for (int64_t c = 0; c < 3; ++c)
      table[i][c] = anchors[static_cast<size_t>(i)][static_cast<size_t>(c)];
  }
  const torch::Tensor x = t.to(torch::kCPU, torch::kFloat32).clamp(0.0, 1.0) * 6.0f;
  const torch::Tensor lo = x.floor().clamp(0, 5).to(torch::kInt64);
  const torch::Tensor frac = (x - lo.to(torch::kFloat32)).unsqueeze(-1);
  return table.index({lo}) * (1.0f - frac) + table.index({lo + 1}) * frac;
}

/// Depth `[H, W]` or `[1, H, W]` -> uint8 `[H, W, 3]`: near is blue, far is red, invalid (0)
/// black. The range defaults to the valid pixels' min and max.
inline torch::Tensor colorize_depth(const torch::Tensor& depth, std::optional<double> near = {},
                                    std::optional<double> far = {}) {
  const torch::Tensor d =
      (depth.dim() == 3 ? depth.squeeze(0) : depth).to(torch::kCPU, torch::kFloat32);
  TORCH_CHECK(d.dim() == 2, "colorize_depth: expected [H, W] or [1, H, W], got ", depth.sizes());
  const torch::Tensor valid = d.ne(0);
  double lo = near.value_or(0.0);
  double hi = far.value_or(1.0);
  if (valid.any().item<bool>()) {
    const torch::Tensor v = d.masked_select(valid);
    if (!near)
      lo = v.min().item<double>();
    if (!far)
      hi = v.max().item<double>();
  }
  const double span = hi > lo ? hi - lo : 1.0;
  const torch::Tensor rgb = depth_colormap((d - lo) / span);
  return (rgb * 255.0f).round().to(torch::kUInt8).masked_fill(valid.logical_not().unsqueeze(2), 0);
}

/// Normals `[3, H, W]` in [-1, 1] -> uint8 `[H, W, 3]` as (n + 1) / 2; invalid (0, 0, 0) black.
inline torch::Tensor colorize_normals(const torch::Tensor& normals) {
  TORCH_CHECK(normals.dim() == 3 && normals.size(0) == 3,
              "colorize_normals: expected [3, H, W], got ", normals.sizes());
  const torch::Tensor n = normals.to(torch::kCPU, torch::kFloat32);
  const torch::Tensor valid = n.ne(0).any(0);
  const torch::Tensor rgb = ((n.clamp(-1, 1) + 1.0f) * 127.5f).round().to(torch::kUInt8);
  return rgb.permute({1, 2, 0}).masked_fill(valid.logical_not().unsqueeze(2), 0).contiguous();
}

/// Image `[3, H, W]` (or `[1, H, W]`) in [0, 1] -> uint8 `[H, W, 3]`.
inline torch::Tensor image_to_rgb(const torch::Tensor& image) {
  TORCH_CHECK(image.dim() == 3 && (image.size(0) == 3 || image.size(0) == 1),
              "image_to_rgb: expected [3, H, W] or [1, H, W], got ", image.sizes());
  const torch::Tensor x = image.to(torch::kCPU, torch::kFloat32).expand({3, -1, -1});
  return (x.clamp(0, 1) * 255.0f).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
}

/// uint8 `[H, W, 3]` pictures of one height side by side, separated by `gap` white columns.
inline torch::Tensor side_by_side(const std::vector<torch::Tensor>& pictures, int64_t gap = 4) {
  TORCH_CHECK(!pictures.empty(), "side_by_side: no pictures");
  std::vector<torch::Tensor> parts;
  const int64_t h = pictures.front().size(0);
  for (size_t i = 0; i < pictures.size(); ++i) {
    TORCH_CHECK(pictures[i].dim() == 3 && pictures[i].size(0) == h && pictures[i].size(2) == 3,
                "side_by_side: picture ", i, " is ", pictures[i].sizes(), ", expected [", h,
                ", W, 3]");
    if (i > 0 && gap > 0)
      parts.push_back(torch::full({h, gap, 3}, 255, torch::kUInt8));
    parts.push_back(pictures[i].to(torch::kUInt8));
  }
  return torch::cat(parts, 1).contiguous();
}

}  // namespace mtsam::data
