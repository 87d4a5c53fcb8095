#pragma once

/// Options of SAM's modules. Defaults are those of the released ViT-B checkpoint; the presets in
/// <mtsam/presets.hpp> set the other sizes.

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace mtsam {

/// The activation of an MLP or of the decoder's upscaling path.
enum class Activation { gelu, relu };

/// Options of the ViT image encoder.
struct ImageEncoderOptions {
  /// Side of the square input the encoder is built for (sets the `pos_embed` grid).
  TORCH_ARG(int64_t, img_size) = 1024;
  /// Side of the square patches.
  TORCH_ARG(int64_t, patch_size) = 16;
  /// Channels of the input image.
  TORCH_ARG(int64_t, in_chans) = 3;
  /// Token width D.
  TORCH_ARG(int64_t, embed_dim) = 768;
  /// Number of transformer blocks.
  TORCH_ARG(int64_t, depth) = 12;
  /// Attention heads per block.
  TORCH_ARG(int64_t, num_heads) = 12;
  /// Hidden width of the block MLP as a multiple of D.
  TORCH_ARG(double, mlp_ratio) = 4.0;
  /// Channels of the neck's output (the decoder width).
  TORCH_ARG(int64_t, out_chans) = 256;
  /// Whether the fused `qkv` projection has a bias.
  TORCH_ARG(bool, qkv_bias) = true;
  /// Whether an absolute position embedding `pos_embed` is added after the patch embedding.
  TORCH_ARG(bool, use_abs_pos) = true;
  /// Whether attention adds decomposed relative position terms.
  TORCH_ARG(bool, use_rel_pos) = true;
  /// Window side of the windowed blocks; 0 makes every block global.
  TORCH_ARG(int64_t, window_size) = 14;
  /// Indices of the blocks that attend globally.
  TORCH_ARG(std::vector<int64_t>, global_attn_indexes) = std::vector<int64_t>{2, 5, 8, 11};
  /// Epsilon of the blocks' LayerNorms.
  TORCH_ARG(double, norm_eps) = 1e-6;
  /// Windowed blocks project the zero padding of their windows too, as SAM's code does: same
  /// result, more `qkv` and `proj` work (72% more at 512 inputs, 20% at 1024). Off by default.
  TORCH_ARG(bool, project_padding) = false;

 public:
  /// Side of the patch grid, `img_size / patch_size`.
  int64_t grid_size() const { return img_size_ / patch_size_; }
};

/// Options of the two-way transformer of the mask decoder.
struct TwoWayTransformerOptions {
  /// Number of two-way blocks.
  TORCH_ARG(int64_t, depth) = 2;
  /// Token width.
  TORCH_ARG(int64_t, embedding_dim) = 256;
  /// Attention heads.
  TORCH_ARG(int64_t, num_heads) = 8;
  /// Hidden width of the token MLP.
  TORCH_ARG(int64_t, mlp_dim) = 2048;
  /// Width reduction of the cross attentions' projections.
  TORCH_ARG(int64_t, attention_downsample_rate) = 2;
  /// Activation of the token MLP.
  TORCH_ARG(Activation, activation) = Activation::relu;
  /// Epsilon of its LayerNorms.
  TORCH_ARG(double, norm_eps) = 1e-5;
};

/// Options of SAM's mask decoder.
struct MaskDecoderOptions {
  /// Its two-way transformer; `transformer.embedding_dim` is the decoder width.
  TORCH_ARG(TwoWayTransformerOptions, transformer) = TwoWayTransformerOptions{};
  /// Masks predicted besides the single-mask output.
  TORCH_ARG(int64_t, num_multimask_outputs) = 3;
  /// Layers of the IoU prediction head.
  TORCH_ARG(int64_t, iou_head_depth) = 3;
  /// Hidden width of the IoU prediction head.
  TORCH_ARG(int64_t, iou_head_hidden_dim) = 256;

 public:
  /// The decoder width.
  int64_t dim() const { return transformer_.embedding_dim(); }
};

/// Options of SAM's prompt encoder.
struct PromptEncoderOptions {
  /// Width of the prompt embeddings (the decoder width).
  TORCH_ARG(int64_t, embed_dim) = 256;
  /// Side of the image embedding grid.
  TORCH_ARG(int64_t, image_embedding_size) = 64;
  /// Side of the padded encoder input, in pixels.
  TORCH_ARG(int64_t, input_image_size) = 1024;
  /// Hidden channels of the mask-prompt downscaling path.
  TORCH_ARG(int64_t, mask_in_chans) = 16;
};

/// Options of a whole SAM: encoder, prompt encoder and mask decoder.
struct SamOptions {
  /// The image encoder.
  TORCH_ARG(ImageEncoderOptions, encoder) = ImageEncoderOptions{};
  /// The prompt encoder.
  TORCH_ARG(PromptEncoderOptions, prompt) = PromptEncoderOptions{};
  /// The mask decoder.
  TORCH_ARG(MaskDecoderOptions, decoder) = MaskDecoderOptions{};
};

}  // namespace mtsam
