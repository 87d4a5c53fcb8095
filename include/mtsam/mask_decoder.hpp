#pragma once

/// SAM's mask decoder: output tokens (IoU token + mask tokens) and prompt tokens run through the
/// two-way transformer with the image embedding; the image is upscaled 4x and each mask token's
/// hypernetwork MLP turns it into one mask.

#include <mtsam/common.hpp>
#include <mtsam/options.hpp>
#include <mtsam/two_way_transformer.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace mtsam {

/// Masks `[N, M, 4h, 4w]` and their predicted IoU `[N, M]`.
struct MaskPrediction {
  torch::Tensor masks;
  torch::Tensor iou_pred;
};

/// Parameters `transformer`, `iou_token`, `mask_tokens`, `output_upscaling.{0,1,3}`,
/// `output_hypernetworks_mlps.K.layers.*`, `iou_prediction_head.layers.*`, as in the official
/// checkpoints.
class MaskDecoderImpl : public torch::nn::Cloneable<MaskDecoderImpl> {
 public:
  explicit MaskDecoderImpl(MaskDecoderOptions options_ = {}) : options(std::move(options_)) {
    MaskDecoderImpl::reset();
  }

  void reset() override {
    const int64_t c = options.dim();
    const int64_t masks = num_mask_tokens();
    transformer = register_module("transformer", TwoWayTransformer(options.transformer()));
    iou_token = register_module("iou_token", torch::nn::Embedding(1, c));
    mask_tokens = register_module("mask_tokens", torch::nn::Embedding(masks, c));
    using torch::nn::ConvTranspose2dOptions;
    output_upscaling = register_module("output_upscaling", torch::nn::Sequential());
    output_upscaling->push_back(
        torch::nn::ConvTranspose2d(ConvTranspose2dOptions(c, c / 4, 2).stride(2)));
    output_upscaling->push_back(LayerNorm2d(c / 4));
    output_upscaling->push_back(torch::nn::GELU());
    output_upscaling->push_back(
        torch::nn::ConvTranspose2d(ConvTranspose2dOptions(c / 4, c / 8, 2).stride(2)));
    output_upscaling->push_back(torch::nn::GELU());
    output_hypernetworks_mlps =
        register_module("output_hypernetworks_mlps", torch::nn::ModuleList());
    for (int64_t i = 0; i < masks; ++i) {
      output_hypernetworks_mlps->push_back(Mlp(MlpOptions(c, c, c / 8, 3)));
    }
    iou_prediction_head = register_module(
        "iou_prediction_head",
        Mlp(MlpOptions(c, options.iou_head_hidden_dim(), masks, options.iou_head_depth())));
  }

  /// Number of mask tokens: the single-mask output plus the multimask outputs.
  int64_t num_mask_tokens() const { return options.num_multimask_outputs() + 1; }

  /// Every mask token's mask. `src` `[N, C, h, w]` is the image embedding with the dense prompt
  /// already added, `image_pe` `[1 or N, C, h, w]`, `sparse` `[N, S, C]` (S may be 0).
  /// `mask_count` limits the work to the first mask tokens (all when 0).
  MaskPrediction predict_masks(const torch::Tensor& src, const torch::Tensor& image_pe,
                               const torch::Tensor& sparse, int64_t mask_count = 0) {
    const int64_t c = options.dim();
    TORCH_CHECK(src.dim() == 4 && src.size(1) == c, "the mask decoder expects an embedding [N, ", c,
                ", h, w], got ", src.sizes());
    TORCH_CHECK(sparse.dim() == 3 && sparse.size(0) == src.size(0) && sparse.size(2) == c,
                "sparse prompts must be [", src.size(0), ", S, ", c, "], got ", sparse.sizes());
    const int64_t n = src.size(0);
    const int64_t h = src.size(2);
    const int64_t w = src.size(3);
    const int64_t masks = num_mask_tokens();
    const int64_t used = mask_count > 0 ? std::min(mask_count, masks) : masks;

    const auto output_tokens = torch::cat({iou_token->weight, mask_tokens->weight}, 0);
    const auto tokens = torch::cat({output_tokens.unsqueeze(0).expand({n, -1, -1}), sparse}, 1);
    auto [hs, keys] = transformer->forward(src, image_pe, tokens);

    const auto image = keys.transpose(1, 2).reshape({n, c, h, w});
    const auto upscaled = output_upscaling->forward(image);  // [N, C/8, 4h, 4w]
    std::vector<torch::Tensor> hyper;
    hyper.reserve(static_cast<size_t>(used));
    for (int64_t i = 0; i < used; ++i) {
      hyper.push_back(output_hypernetworks_mlps[i]->as<Mlp>()->forward(hs.select(1, 1 + i)));
    }
    const auto hyper_in = torch::stack(hyper, 1);  // [N, used, C/8]
    const int64_t uh = upscaled.size(2);
    const int64_t uw = upscaled.size(3);
    const auto out = torch::matmul(hyper_in, upscaled.flatten(2)).view({n, used, uh, uw});
    const auto iou = iou_prediction_head->forward(hs.select(1, 0)).narrow(1, 0, used);
    return {out, iou};
  }

  /// SAM's decoder call: `image_embeddings` `[1 or N, C, h, w]`, `image_pe` `[1, C, h, w]`,
  /// `sparse` `[N, S, C]`, `dense` `[N, C, h, w]`. Returns masks 1..M-1 when `multimask_output`,
  /// else mask 0.
  MaskPrediction forward(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                         const torch::Tensor& sparse, const torch::Tensor& dense,
                         bool multimask_output) {
    const int64_t n = sparse.size(0);
    auto src =
        image_embeddings.size(0) == n ? image_embeddings : image_embeddings.expand({n, -1, -1, -1});
    auto prediction = predict_masks(src + dense, image_pe, sparse, multimask_output ? 0 : 1);
    if (multimask_output) {
      prediction.masks = prediction.masks.slice(1, 1);
      prediction.iou_pred = prediction.iou_pred.slice(1, 1);
    }
    return prediction;
  }

  MaskDecoderOptions options;
  TwoWayTransformer transformer{nullptr};
  torch::nn::Embedding iou_token{nullptr};
  torch::nn::Embedding mask_tokens{nullptr};
  torch::nn::Sequential output_upscaling{nullptr};
  torch::nn::ModuleList output_hypernetworks_mlps{nullptr};
  Mlp iou_prediction_head{nullptr};
};
TORCH_MODULE(MaskDecoder);

}  // namespace mtsam
