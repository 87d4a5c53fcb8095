#pragma once

/// A plain Segment Anything model: image encoder, prompt encoder and mask decoder, with the
/// official checkpoints' parameter names (`image_encoder.*`, `prompt_encoder.*`,
/// `mask_decoder.*`).

#include <mtsam/image_encoder.hpp>
#include <mtsam/mask_decoder.hpp>
#include <mtsam/options.hpp>
#include <mtsam/presets.hpp>
#include <mtsam/prompt_encoder.hpp>

#include <torch/torch.h>

#include <optional>
#include <utility>

namespace mtsam {

/// SAM. Images go in already normalised and padded to `encoder.img_size` (see
/// <mtsam/processing.hpp>).
class SamImpl : public torch::nn::Cloneable<SamImpl> {
 public:
  explicit SamImpl(SamOptions options_ = {}) : options(std::move(options_)) { SamImpl::reset(); }

  /// Builds a SAM of the given shape.
  explicit SamImpl(const SamShape& shape) : SamImpl(sam_options(shape)) {}

  void reset() override {
    TORCH_CHECK(options.encoder().out_chans() == options.decoder().dim() &&
                    options.prompt().embed_dim() == options.decoder().dim(),
                "the encoder output (", options.encoder().out_chans(), "), prompt width (",
                options.prompt().embed_dim(), ") and decoder width (", options.decoder().dim(),
                ") must agree");
    image_encoder = register_module("image_encoder", ImageEncoder(options.encoder()));
    prompt_encoder = register_module("prompt_encoder", PromptEncoder(options.prompt()));
    mask_decoder = register_module("mask_decoder", MaskDecoder(options.decoder()));
  }

  /// `[B, 3, S, S]` -> image embeddings `[B, C, S/16, S/16]`.
  torch::Tensor encode(const torch::Tensor& images) { return image_encoder->forward(images); }

  /// The positional encoding of the embedding grid, `[1, C, S/16, S/16]`.
  torch::Tensor dense_pe() const { return prompt_encoder->dense_pe(); }

  /// Predicts masks for one image's embedding `[1, C, h, w]` from its prompts.
  MaskPrediction decode(const torch::Tensor& image_embedding,
                        const std::optional<PointPrompts>& points,
                        const std::optional<torch::Tensor>& boxes,
                        const std::optional<torch::Tensor>& masks, bool multimask_output) {
    const auto prompts = prompt_encoder->forward(points, boxes, masks);
    return mask_decoder->forward(image_embedding, dense_pe(), prompts.sparse, prompts.dense,
                                 multimask_output);
  }

  SamOptions options;
  ImageEncoder image_encoder{nullptr};
  PromptEncoder prompt_encoder{nullptr};
  MaskDecoder mask_decoder{nullptr};
};
TORCH_MODULE(Sam);

}  // namespace mtsam
