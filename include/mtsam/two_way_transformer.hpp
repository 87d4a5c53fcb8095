#pragma once

/// The two-way transformer of SAM's mask decoder: tokens attend to themselves and to the image,
/// and the image attends back to the tokens, in every block.

#include <mtsam/common.hpp>
#include <mtsam/options.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <utility>

namespace mtsam {

/// Options of DecoderAttention.
struct DecoderAttentionOptions {
  DecoderAttentionOptions(int64_t embedding_dim, int64_t num_heads)
      : embedding_dim_(embedding_dim), num_heads_(num_heads) {}
  /// Width of the inputs and the output.
  TORCH_ARG(int64_t, embedding_dim);
  /// Heads; must divide the internal width.
  TORCH_ARG(int64_t, num_heads);
  /// The projections map to `embedding_dim / downsample_rate` channels.
  TORCH_ARG(int64_t, downsample_rate) = 1;
};

/// Multi-head attention with separate `q_proj`, `k_proj`, `v_proj` and `out_proj`.
class DecoderAttentionImpl : public torch::nn::Cloneable<DecoderAttentionImpl> {
 public:
  explicit DecoderAttentionImpl(DecoderAttentionOptions options_) : options(std::move(options_)) {
    DecoderAttentionImpl::reset();
  }

  void reset() override {
    const int64_t d = options.embedding_dim();
    const int64_t internal = d / options.downsample_rate();
    TORCH_CHECK(internal % options.num_heads() == 0, "decoder attention heads (",
                options.num_heads(), ") must divide its internal width (", internal, ")");
    q_proj = register_module("q_proj", torch::nn::Linear(d, internal));
    k_proj = register_module("k_proj", torch::nn::Linear(d, internal));
    v_proj = register_module("v_proj", torch::nn::Linear(d, internal));
    out_proj = register_module("out_proj", torch::nn::Linear(internal, d));
  }

  /// `q` `[B, Nq, D]`, `k` and `v` `[B, Nk, D]` -> `[B, Nq, D]`.
  torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
    const auto heads = options.num_heads();
    const auto split = [heads](const torch::Tensor& x) {
      return x.reshape({x.size(0), x.size(1), heads, -1}).transpose(1, 2);
    };
    const auto qh = split(q_proj->forward(q));
    const auto kh = split(k_proj->forward(k));
    const auto vh = split(v_proj->forward(v));
    const auto scale = 1.0 / std::sqrt(static_cast<double>(qh.size(-1)));
    const auto attn = torch::softmax(torch::matmul(qh, kh.transpose(-2, -1)) * scale, -1);
    const auto out = torch::matmul(attn, vh).transpose(1, 2);
    return out_proj->forward(out.reshape({out.size(0), out.size(1), -1}));
  }

  DecoderAttentionOptions options;
  torch::nn::Linear q_proj{nullptr};
  torch::nn::Linear k_proj{nullptr};
  torch::nn::Linear v_proj{nullptr};
  torch::nn::Linear out_proj{nullptr};
};
TORCH_MODULE(DecoderAttention);

/// Options of TwoWayAttentionBlock: those of the transformer plus whether the first self
/// attention skips the token positional encoding.
struct TwoWayAttentionBlockOptions {
  /* implicit */ TwoWayAttentionBlockOptions(TwoWayTransformerOptions transformer)
      : transformer_(std::move(transformer)) {}
  /// Widths, heads, activation, epsilon.
  TORCH_ARG(TwoWayTransformerOptions, transformer);
  /// True for the first block: its self attention sees the raw tokens.
  TORCH_ARG(bool, skip_first_layer_pe) = false;
};

/// Self attention of tokens, tokens -> image, token MLP, image -> tokens; each with a residual
/// and a LayerNorm (`norm1` .. `norm4`).
class TwoWayAttentionBlockImpl : public torch::nn::Cloneable<TwoWayAttentionBlockImpl> {
 public:
  explicit TwoWayAttentionBlockImpl(TwoWayAttentionBlockOptions options_)
      : options(std::move(options_)) {
    TwoWayAttentionBlockImpl::reset();
  }

  void reset() override {
    const auto& t = options.transformer();
    const int64_t d = t.embedding_dim();
    const auto norm = torch::nn::LayerNormOptions({d}).eps(t.norm_eps());
    const auto cross =
        DecoderAttentionOptions(d, t.num_heads()).downsample_rate(t.attention_downsample_rate());
    self_attn =
        register_module("self_attn", DecoderAttention(DecoderAttentionOptions(d, t.num_heads())));
    norm1 = register_module("norm1", torch::nn::LayerNorm(norm));
    cross_attn_token_to_image =
        register_module("cross_attn_token_to_image", DecoderAttention(cross));
    norm2 = register_module("norm2", torch::nn::LayerNorm(norm));
    mlp = register_module("mlp",
                          MLPBlock(MLPBlockOptions(d, t.mlp_dim()).activation(t.activation())));
    norm3 = register_module("norm3", torch::nn::LayerNorm(norm));
    norm4 = register_module("norm4", torch::nn::LayerNorm(norm));
    cross_attn_image_to_token =
        register_module("cross_attn_image_to_token", DecoderAttention(cross));
  }

  /// Tokens `[B, Nq, D]` and image keys `[B, Nk, D]` with their encodings -> both updated.
  std::pair<torch::Tensor, torch::Tensor> forward(torch::Tensor queries, torch::Tensor keys,
                                                  const torch::Tensor& query_pe,
                                                  const torch::Tensor& key_pe) {
    if (options.skip_first_layer_pe()) {
      queries = self_attn->forward(queries, queries, queries);
    } else {
      const auto q = queries + query_pe;
      queries = queries + self_attn->forward(q, q, queries);
    }
    queries = norm1->forward(queries);

    auto q = queries + query_pe;
    auto k = keys + key_pe;
    queries = norm2->forward(queries + cross_attn_token_to_image->forward(q, k, keys));

    queries = norm3->forward(queries + mlp->forward(queries));

    q = queries + query_pe;
    k = keys + key_pe;
    keys = norm4->forward(keys + cross_attn_image_to_token->forward(k, q, queries));
    return {queries, keys};
  }

  TwoWayAttentionBlockOptions options;
  DecoderAttention self_attn{nullptr};
  torch::nn::LayerNorm norm1{nullptr};
  DecoderAttention cross_attn_token_to_image{nullptr};
  torch::nn::LayerNorm norm2{nullptr};
  MLPBlock mlp{nullptr};
  torch::nn::LayerNorm norm3{nullptr};
  torch::nn::LayerNorm norm4{nullptr};
  DecoderAttention cross_attn_image_to_token{nullptr};
};
TORCH_MODULE(TwoWayAttentionBlock);

/// `layers.N` two-way blocks, then a final token -> image attention and `norm_final_attn`.
class TwoWayTransformerImpl : public torch::nn::Cloneable<TwoWayTransformerImpl> {
 public:
  explicit TwoWayTransformerImpl(TwoWayTransformerOptions options_ = {})
      : options(std::move(options_)) {
    TwoWayTransformerImpl::reset();
  }

  void reset() override {
    const int64_t d = options.embedding_dim();
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < options.depth(); ++i) {
      layers->push_back(
          TwoWayAttentionBlock(TwoWayAttentionBlockOptions(options).skip_first_layer_pe(i == 0)));
    }
    final_attn_token_to_image = register_module(
        "final_attn_token_to_image",
        DecoderAttention(DecoderAttentionOptions(d, options.num_heads())
                             .downsample_rate(options.attention_downsample_rate())));
    norm_final_attn = register_module(
        "norm_final_attn",
        torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(options.norm_eps())));
  }

  /// `image` and `image_pe` `[B, D, h, w]`, `tokens` `[B, N, D]` -> tokens `[B, N, D]` and
  /// image keys `[B, h*w, D]`.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& image,
                                                  const torch::Tensor& image_pe,
                                                  const torch::Tensor& tokens) {
    TORCH_CHECK(image.dim() == 4 && image.size(1) == options.embedding_dim(),
                "the two-way transformer expects an image [B, ", options.embedding_dim(),
                ", h, w], got ", image.sizes());
    auto keys = image.flatten(2).permute({0, 2, 1});
    const auto key_pe = image_pe.flatten(2).permute({0, 2, 1});
    auto queries = tokens;
    for (const auto& layer : *layers) {
      std::tie(queries, keys) =
          layer->as<TwoWayAttentionBlock>()->forward(queries, keys, tokens, key_pe);
    }
    const auto q = queries + tokens;
    const auto k = keys + key_pe;
    queries = norm_final_attn->forward(queries + final_attn_token_to_image->forward(q, k, keys));
    return {queries, keys};
  }

  TwoWayTransformerOptions options;
  torch::nn::ModuleList layers{nullptr};
  DecoderAttention final_attn_token_to_image{nullptr};
  torch::nn::LayerNorm norm_final_attn{nullptr};
};
TORCH_MODULE(TwoWayTransformer);

}  // namespace mtsam
