#pragma once

/// SAM's prompt encoder: points and boxes become sparse tokens, a low-resolution mask (or the
/// learned "no mask" vector) becomes a dense map, and the image grid gets its positional
/// encoding. MTSAM keeps only its positional encoding and its `no_mask_embed` row.

#include <mtsam/common.hpp>
#include <mtsam/options.hpp>
#include <mtsam/positional_encoding.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <utility>

namespace mtsam {

/// Point prompts: coordinates `[B, N, 2]` in input pixels (x, y) and labels `[B, N]` (1
/// foreground, 0 background, -1 padding).
struct PointPrompts {
  torch::Tensor coords;
  torch::Tensor labels;
};

/// Sparse `[B, N, C]` and dense `[B, C, h, w]` prompt embeddings.
struct PromptEmbeddings {
  torch::Tensor sparse;
  torch::Tensor dense;
};

/// Parameters `pe_layer`, `point_embeddings.{0..3}`, `not_a_point_embed`, `mask_downscaling`,
/// `no_mask_embed`, as in the official checkpoints.
class PromptEncoderImpl : public torch::nn::Cloneable<PromptEncoderImpl> {
 public:
  explicit PromptEncoderImpl(PromptEncoderOptions options_ = {}) : options(std::move(options_)) {
    PromptEncoderImpl::reset();
  }

  void reset() override {
    const int64_t c = options.embed_dim();
    const int64_t m = options.mask_in_chans();
    pe_layer = register_module("pe_layer", PositionEmbeddingRandom(c / 2));
    point_embeddings = register_module("point_embeddings", torch::nn::ModuleList());
    for (int i = 0; i < 4; ++i) {
      point_embeddings->push_back(torch::nn::Embedding(1, c));
    }
    not_a_point_embed = register_module("not_a_point_embed", torch::nn::Embedding(1, c));
    mask_downscaling = register_module("mask_downscaling", torch::nn::Sequential());
    mask_downscaling->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, m / 4, 2).stride(2)));
    mask_downscaling->push_back(LayerNorm2d(m / 4));
    mask_downscaling->push_back(torch::nn::GELU());
    mask_downscaling->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(m / 4, m, 2).stride(2)));
    mask_downscaling->push_back(LayerNorm2d(m));
    mask_downscaling->push_back(torch::nn::GELU());
    mask_downscaling->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(m, c, 1)));
    no_mask_embed = register_module("no_mask_embed", torch::nn::Embedding(1, c));
  }

  /// The positional encoding of the image embedding grid: `[1, C, h, w]`.
  torch::Tensor dense_pe() const {
    const int64_t s = options.image_embedding_size();
    return pe_layer->forward(s, s).unsqueeze(0);
  }

  /// Encodes the prompts; at least one of them must be given, or `batch` must be set.
  PromptEmbeddings forward(const std::optional<PointPrompts>& points,
                           const std::optional<torch::Tensor>& boxes,
                           const std::optional<torch::Tensor>& masks, int64_t batch = 1) {
    int64_t b = batch;
    if (points) {
      b = points->coords.size(0);
    } else if (boxes) {
      b = boxes->size(0);
    } else if (masks) {
      b = masks->size(0);
    }
    const auto& weight = no_mask_embed->weight;
    auto sparse = torch::empty({b, 0, options.embed_dim()}, weight.options());
    if (points) {
      sparse = torch::cat({sparse, embed_points(*points, !boxes.has_value())}, 1);
    }
    if (boxes) {
      sparse = torch::cat({sparse, embed_boxes(*boxes)}, 1);
    }
    torch::Tensor dense;
    if (masks) {
      dense = mask_downscaling->forward(*masks);
    } else {
      const int64_t s = options.image_embedding_size();
      dense = weight.reshape({1, -1, 1, 1}).expand({b, -1, s, s});
    }
    return {sparse, dense};
  }

  PromptEncoderOptions options;
  PositionEmbeddingRandom pe_layer{nullptr};
  torch::nn::ModuleList point_embeddings{nullptr};
  torch::nn::Embedding not_a_point_embed{nullptr};
  torch::nn::Sequential mask_downscaling{nullptr};
  torch::nn::Embedding no_mask_embed{nullptr};

 private:
  torch::Tensor point_weight(int index) {
    return point_embeddings[index]->as<torch::nn::Embedding>()->weight;
  }

  torch::Tensor embed_points(const PointPrompts& prompts, bool pad) {
    auto coords = prompts.coords.to(torch::kFloat32) + 0.5;
    auto labels = prompts.labels;
    if (pad) {
      const int64_t b = coords.size(0);
      coords = torch::cat({coords, torch::zeros({b, 1, 2}, coords.options())}, 1);
      labels = torch::cat({labels, -torch::ones({b, 1}, labels.options())}, 1);
    }
    const int64_t size = options.input_image_size();
    auto embedding = pe_layer->forward_with_coords(coords, size, size);
    const auto label = labels.unsqueeze(-1);
    embedding = torch::where(label == -1, not_a_point_embed->weight, embedding);
    embedding = embedding + (label == 0).to(embedding.dtype()) * point_weight(0);
    embedding = embedding + (label == 1).to(embedding.dtype()) * point_weight(1);
    return embedding;
  }

  torch::Tensor embed_boxes(const torch::Tensor& boxes) {
    const auto corners = (boxes.to(torch::kFloat32) + 0.5).reshape({-1, 2, 2});
    const int64_t size = options.input_image_size();
    auto embedding = pe_layer->forward_with_coords(corners, size, size);
    const auto offsets = torch::cat({point_weight(2), point_weight(3)}, 0);  // [2, C]
    return embedding + offsets;
  }
};
TORCH_MODULE(PromptEncoder);

}  // namespace mtsam
