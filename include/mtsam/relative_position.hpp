#pragma once

/// Position terms of SAM's image encoder: the decomposed relative positions added to the
/// attention logits, and the resizing of the absolute and relative tables when the encoder runs
/// on a grid other than the one a checkpoint was trained for.

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>

namespace mtsam {

/// Resamples a relative-position table `[L, C]` to `[length, C]` by linear interpolation along
/// L (half-pixel centres, no corner alignment).
inline torch::Tensor resize_rel_pos(const torch::Tensor& table, int64_t length) {
  TORCH_CHECK(table.dim() == 2, "a relative-position table is [L, C], got ", table.sizes());
  TORCH_CHECK(length > 0, "a relative-position table needs a positive length, got ", length);
  if (table.size(0) == length) {
    return table;
  }
  namespace F = torch::nn::functional;
  const auto resized =
      F::interpolate(table.t().unsqueeze(0), F::InterpolateFuncOptions()
                                                 .size(std::vector<int64_t>{length})
                                                 .mode(torch::kLinear)
                                                 .align_corners(false));
  return resized.squeeze(0).t().contiguous();
}

/// Resamples an absolute position embedding `[1, H, W, C]` to `[1, height, width, C]` with
/// bilinear interpolation (half-pixel centres, no antialiasing).
inline torch::Tensor resize_pos_embed(const torch::Tensor& pos_embed, int64_t height,
                                      int64_t width) {
  TORCH_CHECK(pos_embed.dim() == 4 && pos_embed.size(0) == 1,
              "an absolute position embedding is [1, H, W, C], got ", pos_embed.sizes());
  if (pos_embed.size(1) == height && pos_embed.size(2) == width) {
    return pos_embed;
  }
  namespace F = torch::nn::functional;
  const auto resized =
      F::interpolate(pos_embed.permute({0, 3, 1, 2}), F::InterpolateFuncOptions()
                                                          .size(std::vector<int64_t>{height, width})
                                                          .mode(torch::kBilinear)
                                                          .align_corners(false));
  return resized.permute({0, 2, 3, 1}).contiguous();
}

/// The relative-position rows for every (query, key) pair along one axis: `[q_size, k_size, C]`
/// from a table `[L, C]`. A table whose length is not `2 * max(q_size, k_size) - 1` is first
/// resampled with resize_rel_pos.
inline torch::Tensor rel_pos_rows(int64_t q_size, int64_t k_size, const torch::Tensor& table) {
  const int64_t max_dist = 2 * std::max(q_size, k_size) - 1;
  const auto resized = resize_rel_pos(table, max_dist);
  const double q_scale = std::max(static_cast<double>(k_size) / static_cast<double>(q_size), 1.0);
  const double k_scale = std::max(static_cast<double>(q_size) / static_cast<double>(k_size), 1.0);
  const auto q_coords =
      torch::arange(q_size, torch::kFloat32).unsqueeze(1) * static_cast<float>(q_scale);
  const auto k_coords =
      torch::arange(k_size, torch::kFloat32).unsqueeze(0) * static_cast<float>(k_scale);
  const auto offset = static_cast<float>(static_cast<double>(k_size - 1) * k_scale);
  const auto index = ((q_coords - k_coords) + offset).to(torch::kLong).to(table.device());
  return resized.index({index});
}

/// Adds the decomposed relative-position terms to attention logits.
/// `attn` `[N, qh*qw, kh*kw]`, `q` `[N, qh*qw, C]` (unscaled queries), tables `[Lh, C]` and
/// `[Lw, C]`; returns `[N, qh*qw, kh*kw]`.
inline torch::Tensor add_decomposed_rel_pos(const torch::Tensor& attn, const torch::Tensor& q,
                                            const torch::Tensor& rel_pos_h,
                                            const torch::Tensor& rel_pos_w, int64_t q_h,
                                            int64_t q_w, int64_t k_h, int64_t k_w) {
  const auto rows_h = rel_pos_rows(q_h, k_h, rel_pos_h);  // [qh, kh, C]
  const auto rows_w = rel_pos_rows(q_w, k_w, rel_pos_w);  // [qw, kw, C]
  const int64_t n = q.size(0);
  const int64_t dim = q.size(2);
  const auto r_q = q.reshape({n, q_h, q_w, dim});
  const auto rel_h = torch::einsum("bhwc,hkc->bhwk", {r_q, rows_h});  // [N, qh, qw, kh]
  const auto rel_w = torch::einsum("bhwc,wkc->bhwk", {r_q, rows_w});  // [N, qh, qw, kw]
  return (attn.view({n, q_h, q_w, k_h, k_w}) + rel_h.unsqueeze(4) + rel_w.unsqueeze(3))
      .view({n, q_h * q_w, k_h * k_w});
}

}  // namespace mtsam
