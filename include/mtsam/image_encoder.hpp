#pragma once

/// SAM's ViT image encoder: patch embedding, absolute position embedding, transformer blocks
/// with windowed or global attention and decomposed relative positions, and the neck.
/// Parameter names follow the official checkpoints (`patch_embed.proj`, `pos_embed`,
/// `blocks.N.{norm1,attn.qkv,attn.proj,attn.rel_pos_h,attn.rel_pos_w,norm2,mlp.lin1,mlp.lin2}`,
/// `neck.{0,1,2,3}`).

#include <mtsam/common.hpp>
#include <mtsam/options.hpp>
#include <mtsam/relative_position.hpp>

#include <tora/adapted_linear.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

namespace mtsam {

namespace detail {

/// `[B, H, W, C]` -> `[B * nW, ws, ws, C]`, zero-padding H and W up to multiples of `ws`.
/// Windows keep the batch order, so a task-major batch stays task-major.
inline torch::Tensor window_partition(const torch::Tensor& x, int64_t ws) {
  const int64_t b = x.size(0);
  const int64_t h = x.size(1);
  const int64_t w = x.size(2);
  const int64_t c = x.size(3);
  const int64_t pad_h = (ws - h % ws) % ws;
  const int64_t pad_w = (ws - w % ws) % ws;
  auto padded =
      (pad_h > 0 || pad_w > 0) ? torch::constant_pad_nd(x, {0, 0, 0, pad_w, 0, pad_h}) : x;
  const int64_t hp = h + pad_h;
  const int64_t wp = w + pad_w;
  return padded.view({b, hp / ws, ws, wp / ws, ws, c})
      .permute({0, 1, 3, 2, 4, 5})
      .contiguous()
      .view({-1, ws, ws, c});
}

/// Inverse of window_partition: `[B * nW, ws, ws, C]` -> `[B, h, w, C]`, dropping the padding.
inline torch::Tensor window_unpartition(const torch::Tensor& windows, int64_t ws, int64_t h,
                                        int64_t w) {
  const int64_t hp = h + (ws - h % ws) % ws;
  const int64_t wp = w + (ws - w % ws) % ws;
  const int64_t b = windows.size(0) / ((hp / ws) * (wp / ws));
  auto x = windows.view({b, hp / ws, wp / ws, ws, ws, -1})
               .permute({0, 1, 3, 2, 4, 5})
               .contiguous()
               .view({b, hp, wp, -1});
  if (hp > h || wp > w) {
    x = x.slice(1, 0, h).slice(2, 0, w).contiguous();
  }
  return x;
}

}  // namespace detail

/// The fused query/key/value projection of the encoder attention. Adapters attach to it by name
/// (`image_encoder.blocks.*.attn.qkv`); its own parameters are `weight` `[3D, D]` and `bias`.
using QkvLinear = tora::AdaptedLinear;

/// Options of EncoderAttention.
struct EncoderAttentionOptions {
  EncoderAttentionOptions(int64_t dim, int64_t num_heads) : dim_(dim), num_heads_(num_heads) {}
  /// Token width D.
  TORCH_ARG(int64_t, dim);
  /// Heads; must divide D.
  TORCH_ARG(int64_t, num_heads);
  /// Whether `qkv` has a bias.
  TORCH_ARG(bool, qkv_bias) = true;
  /// Whether decomposed relative positions are added.
  TORCH_ARG(bool, use_rel_pos) = true;
  /// Side of the window or grid the relative tables are sized for (`2 * S - 1` rows).
  TORCH_ARG(int64_t, input_size) = 14;
};

/// Multi-head self attention over a `[B, H, W, D]` token map with relative positions.
class EncoderAttentionImpl : public torch::nn::Cloneable<EncoderAttentionImpl> {
 public:
  explicit EncoderAttentionImpl(EncoderAttentionOptions options_) : options(std::move(options_)) {
    EncoderAttentionImpl::reset();
  }

  void reset() override {
    TORCH_CHECK(options.dim() % options.num_heads() == 0, "attention heads (", options.num_heads(),
                ") must divide the width (", options.dim(), ")");
    const int64_t d = options.dim();
    qkv = register_module("qkv",
                          QkvLinear(torch::nn::LinearOptions(d, 3 * d).bias(options.qkv_bias())));
    proj = register_module("proj", torch::nn::Linear(d, d));
    if (options.use_rel_pos()) {
      const int64_t head_dim = d / options.num_heads();
      const int64_t rows = 2 * options.input_size() - 1;
      rel_pos_h = register_parameter("rel_pos_h", torch::zeros({rows, head_dim}));
      rel_pos_w = register_parameter("rel_pos_w", torch::zeros({rows, head_dim}));
    }
  }

  /// Attention from projected tokens, before `proj`: `[B, H, W, 3D]` -> `[B, H, W, D]`.
  torch::Tensor attend(const torch::Tensor& qkv_out) {
    const int64_t b = qkv_out.size(0);
    const int64_t h = qkv_out.size(1);
    const int64_t w = qkv_out.size(2);
    const int64_t heads = options.num_heads();
    // [3, B * heads, H * W, head_dim]
    const auto split = qkv_out.reshape({b, h * w, 3, heads, -1})
                           .permute({2, 0, 3, 1, 4})
                           .reshape({3, b * heads, h * w, -1});
    const auto q = split[0];
    const auto k = split[1];
    const auto v = split[2];
    const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
    auto attn = torch::matmul(q * scale, k.transpose(-2, -1));
    if (options.use_rel_pos()) {
      attn = add_decomposed_rel_pos(attn, q, rel_pos_h, rel_pos_w, h, w, h, w);
    }
    attn = attn.softmax(-1);
    return torch::matmul(attn, v)
        .view({b, heads, h, w, -1})
        .permute({0, 2, 3, 1, 4})
        .reshape({b, h, w, -1});
  }

  /// `[B, H, W, D]` -> `[B, H, W, D]`.
  torch::Tensor forward(const torch::Tensor& x) { return proj->forward(attend(qkv->forward(x))); }

  EncoderAttentionOptions options;
  QkvLinear qkv{nullptr};
  torch::nn::Linear proj{nullptr};
  torch::Tensor rel_pos_h;
  torch::Tensor rel_pos_w;
};
TORCH_MODULE(EncoderAttention);

/// Options of EncoderBlock.
struct EncoderBlockOptions {
  EncoderBlockOptions(int64_t dim, int64_t num_heads) : dim_(dim), num_heads_(num_heads) {}
  /// Token width D.
  TORCH_ARG(int64_t, dim);
  /// Attention heads.
  TORCH_ARG(int64_t, num_heads);
  /// MLP hidden width as a multiple of D.
  TORCH_ARG(double, mlp_ratio) = 4.0;
  /// Whether `qkv` has a bias.
  TORCH_ARG(bool, qkv_bias) = true;
  /// Whether attention adds relative positions.
  TORCH_ARG(bool, use_rel_pos) = true;
  /// Window side; 0 for global attention.
  TORCH_ARG(int64_t, window_size) = 0;
  /// Side of the full token grid (used by global attention's relative tables).
  TORCH_ARG(int64_t, grid_size) = 64;
  /// LayerNorm epsilon.
  TORCH_ARG(double, norm_eps) = 1e-6;
  /// Windowed blocks: project the zero padding too, as SAM's code does (same result, more work).
  TORCH_ARG(bool, project_padding) = false;
};

/// `x + attn(norm1(x))` (windowed when window_size > 0), then `x + mlp(norm2(x))`.
class EncoderBlockImpl : public torch::nn::Cloneable<EncoderBlockImpl> {
 public:
  explicit EncoderBlockImpl(EncoderBlockOptions options_) : options(std::move(options_)) {
    EncoderBlockImpl::reset();
  }

  void reset() override {
    const int64_t d = options.dim();
    const auto norm = torch::nn::LayerNormOptions({d}).eps(options.norm_eps());
    norm1 = register_module("norm1", torch::nn::LayerNorm(norm));
    attn = register_module(
        "attn", EncoderAttention(EncoderAttentionOptions(d, options.num_heads())
                                     .qkv_bias(options.qkv_bias())
                                     .use_rel_pos(options.use_rel_pos())
                                     .input_size(options.window_size() > 0 ? options.window_size()
                                                                           : options.grid_size())));
    norm2 = register_module("norm2", torch::nn::LayerNorm(norm));
    mlp = register_module(
        "mlp", MLPBlock(MLPBlockOptions(d, static_cast<int64_t>(d * options.mlp_ratio()))));
  }

  /// `[B, H, W, D]` -> `[B, H, W, D]`.
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = norm1->forward(x);
    const int64_t ws = options.window_size();
    if (ws == 0) {
      y = attn->forward(y);
    } else if (options.project_padding()) {
      // SAM's order: pad and partition the normalised tokens, project every window.
      y = detail::window_unpartition(attn->forward(detail::window_partition(y, ws)), ws, x.size(1),
                                     x.size(2));
    } else {
      // Same result with less work: a padding token is zero after the padding, so its
      // projection is the qkv bias; `proj` runs on the real tokens only.
      const auto windows = detail::window_partition(pad_with_bias(attn->qkv->forward(y), ws), ws);
      y = attn->proj->forward(
          detail::window_unpartition(attn->attend(windows), ws, x.size(1), x.size(2)));
    }
    const auto mid = x + y;
    return mid + mlp->forward(norm2->forward(mid));
  }

  EncoderBlockOptions options;
  torch::nn::LayerNorm norm1{nullptr};
  EncoderAttention attn{nullptr};
  torch::nn::LayerNorm norm2{nullptr};
  MLPBlock mlp{nullptr};

 private:
  /// Pads projected tokens `[B, H, W, 3D]` bottom/right to multiples of `ws` with the
  /// projection of a zero token (the bias, or zero without one).
  torch::Tensor pad_with_bias(torch::Tensor qkv_out, int64_t ws) const {
    const int64_t b = qkv_out.size(0);
    const int64_t h = qkv_out.size(1);
    const int64_t w = qkv_out.size(2);
    const int64_t c = qkv_out.size(3);
    const int64_t pad_h = (ws - h % ws) % ws;
    const int64_t pad_w = (ws - w % ws) % ws;
    const auto& bias = attn->qkv->bias;
    const auto fill = [&](int64_t rows, int64_t cols) {
      return bias.defined() ? bias.view({1, 1, 1, c}).expand({b, rows, cols, c})
                            : torch::zeros({b, rows, cols, c}, qkv_out.options());
    };
    if (pad_w > 0) {
      qkv_out = torch::cat({qkv_out, fill(h, pad_w)}, 2);
    }
    if (pad_h > 0) {
      qkv_out = torch::cat({qkv_out, fill(pad_h, w + pad_w)}, 1);
    }
    return qkv_out;
  }
};
TORCH_MODULE(EncoderBlock);

/// SAM's ViT image encoder: `[B, 3, S, S]` -> `[B, out_chans, S/16, S/16]`.
class ImageEncoderImpl : public torch::nn::Cloneable<ImageEncoderImpl> {
 public:
  explicit ImageEncoderImpl(ImageEncoderOptions options_ = {}) : options(std::move(options_)) {
    ImageEncoderImpl::reset();
  }

  void reset() override {
    TORCH_CHECK(options.img_size() % options.patch_size() == 0, "image size ", options.img_size(),
                " is not a multiple of the patch size ", options.patch_size());
    const int64_t d = options.embed_dim();
    const int64_t p = options.patch_size();
    const int64_t grid = options.grid_size();
    patch_embed = register_module("patch_embed", torch::nn::Sequential());
    patch_embed->push_back(
        "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.in_chans(), d, p).stride(p)));
    if (options.use_abs_pos()) {
      pos_embed = register_parameter("pos_embed", torch::zeros({1, grid, grid, d}));
    }
    blocks = register_module("blocks", torch::nn::ModuleList());
    const auto& globals = options.global_attn_indexes();
    for (int64_t i = 0; i < options.depth(); ++i) {
      const bool global = std::find(globals.begin(), globals.end(), i) != globals.end();
      blocks->push_back(EncoderBlock(EncoderBlockOptions(d, options.num_heads())
                                         .mlp_ratio(options.mlp_ratio())
                                         .qkv_bias(options.qkv_bias())
                                         .use_rel_pos(options.use_rel_pos())
                                         .window_size(global ? 0 : options.window_size())
                                         .grid_size(grid)
                                         .norm_eps(options.norm_eps())
                                         .project_padding(options.project_padding())));
    }
    const int64_t out = options.out_chans();
    neck = register_module("neck", torch::nn::Sequential());
    neck->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(d, out, 1).bias(false)));
    neck->push_back(LayerNorm2d(out));
    neck->push_back(
        torch::nn::Conv2d(torch::nn::Conv2dOptions(out, out, 3).padding(1).bias(false)));
    neck->push_back(LayerNorm2d(out));
  }

  /// Tokens after the patch embedding and the position embedding: `[B, 3, S, S]` ->
  /// `[B, S/16, S/16, D]`.
  torch::Tensor embed(const torch::Tensor& images) {
    TORCH_CHECK(images.dim() == 4 && images.size(1) == options.in_chans(),
                "the image encoder expects [B, ", options.in_chans(), ", H, W], got ",
                images.sizes());
    auto x = patch_embed->forward(images).permute({0, 2, 3, 1});
    if (options.use_abs_pos()) {
      TORCH_CHECK(x.size(1) == pos_embed.size(1) && x.size(2) == pos_embed.size(2),
                  "the encoder is built for ", options.img_size(), "x", options.img_size(),
                  " inputs (a ", pos_embed.size(1), "x", pos_embed.size(2),
                  " patch grid), got an image of ", images.size(2), "x", images.size(3),
                  "; pad or resize the image (see mtsam::preprocess), or build the encoder for "
                  "that size");
      x = x + pos_embed;
    }
    return x;
  }

  /// Blocks and neck on embedded tokens: `[B, S/16, S/16, D]` -> `[B, out_chans, S/16, S/16]`.
  torch::Tensor forward_tokens(torch::Tensor x) {
    for (const auto& block : *blocks) {
      x = block->as<EncoderBlock>()->forward(x);
    }
    return neck->forward(x.permute({0, 3, 1, 2}));
  }

  /// `[B, 3, S, S]` -> `[B, out_chans, S/16, S/16]`.
  torch::Tensor forward(const torch::Tensor& images) { return forward_tokens(embed(images)); }

  /// The fused `qkv` projection of block `index`.
  QkvLinear qkv(int64_t index) {
    TORCH_CHECK(index >= 0 && index < options.depth(), "block ", index,
                " is outside the encoder's ", options.depth(), " blocks");
    return blocks[index]->as<EncoderBlock>()->attn->qkv;
  }

  ImageEncoderOptions options;
  torch::nn::Sequential patch_embed{nullptr};
  torch::Tensor pos_embed;
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::Sequential neck{nullptr};
};
TORCH_MODULE(ImageEncoder);

}  // namespace mtsam
