#pragma once

/// SAM's sizes: the released ViT-B, ViT-L and ViT-H presets and custom shapes, also read from
/// the JSON files that describe the reference fixtures.

#include <mtsam/options.hpp>

#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mtsam {

/// The few numbers that define a SAM. Everything else follows SAM's construction rules.
struct SamShape {
  int64_t img_size = 1024;                                ///< encoder input side, pixels
  int64_t patch_size = 16;                                ///< patch side, pixels
  int64_t embed_dim = 768;                                ///< encoder width D
  int64_t depth = 12;                                     ///< encoder blocks
  int64_t num_heads = 12;                                 ///< encoder heads
  std::vector<int64_t> global_attn_indexes{2, 5, 8, 11};  ///< globally attending blocks
  int64_t window_size = 14;                               ///< window side of the others
  int64_t prompt_dim = 256;                               ///< decoder width
  int64_t mlp_dim = 2048;                                 ///< decoder MLP width
  int64_t dec_heads = 8;                                  ///< decoder heads
  int64_t iou_head_hidden_dim = 0;                        ///< 0: the decoder width
  int64_t mask_in_chans = 16;                             ///< mask-prompt channels
};

/// The released model sizes.
enum class Preset { vit_b, vit_l, vit_h };

/// The shape of a released SAM, with the encoder built for `img_size` (1024 as released; a
/// smaller size loads the released weights with resized position tables).
inline SamShape preset_shape(Preset preset, int64_t img_size = 1024) {
  SamShape shape;
  shape.img_size = img_size;
  switch (preset) {
    case Preset::vit_b:
      break;
    case Preset::vit_l:
      shape.embed_dim = 1024;
      shape.depth = 24;
      shape.num_heads = 16;
      shape.global_attn_indexes = {5, 11, 17, 23};
      break;
    case Preset::vit_h:
      shape.embed_dim = 1280;
      shape.depth = 32;
      shape.num_heads = 16;
      shape.global_attn_indexes = {7, 15, 23, 31};
      break;
  }
  return shape;
}

/// The preset named "vit_b", "vit_l" or "vit_h" (a dash or upper case also accepted).
inline Preset preset_from_string(std::string_view name) {
  std::string key;
  for (char c : name) {
    key += c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (key == "vit_b") {
    return Preset::vit_b;
  }
  if (key == "vit_l") {
    return Preset::vit_l;
  }
  if (key == "vit_h") {
    return Preset::vit_h;
  }
  throw std::invalid_argument("unknown SAM preset '" + std::string(name) +
                              "': expected vit_b, vit_l or vit_h");
}

/// The module options that `shape` defines.
inline SamOptions sam_options(const SamShape& shape) {
  TORCH_CHECK(shape.patch_size > 0 && shape.img_size % shape.patch_size == 0,
              "image size must be a multiple of the patch size: got image ", shape.img_size,
              " and patch ", shape.patch_size);
  TORCH_CHECK(shape.num_heads > 0 && shape.embed_dim % shape.num_heads == 0,
              "encoder heads must divide its width: got width ", shape.embed_dim, " and ",
              shape.num_heads, " heads");
  for (int64_t index : shape.global_attn_indexes) {
    TORCH_CHECK(index >= 0 && index < shape.depth, "global attention block index ", index,
                " is outside the encoder's ", shape.depth, " blocks");
  }
  ImageEncoderOptions encoder;
  encoder.img_size(shape.img_size)
      .patch_size(shape.patch_size)
      .embed_dim(shape.embed_dim)
      .depth(shape.depth)
      .num_heads(shape.num_heads)
      .out_chans(shape.prompt_dim)
      .window_size(shape.window_size)
      .global_attn_indexes(shape.global_attn_indexes);
  TwoWayTransformerOptions transformer;
  transformer.embedding_dim(shape.prompt_dim).mlp_dim(shape.mlp_dim).num_heads(shape.dec_heads);
  MaskDecoderOptions decoder;
  decoder.transformer(transformer)
      .iou_head_hidden_dim(shape.iou_head_hidden_dim > 0 ? shape.iou_head_hidden_dim
                                                         : shape.prompt_dim);
  PromptEncoderOptions prompt;
  prompt.embed_dim(shape.prompt_dim)
      .image_embedding_size(encoder.grid_size())
      .input_image_size(shape.img_size)
      .mask_in_chans(shape.mask_in_chans);
  return SamOptions{}.encoder(encoder).prompt(prompt).decoder(decoder);
}

/// The options of a released SAM.
inline SamOptions sam_options(Preset preset, int64_t img_size = 1024) {
  return sam_options(preset_shape(preset, img_size));
}

/// Reads a shape from JSON: the keys are the field names of SamShape; absent keys keep the
/// ViT-B defaults, except `iou_head_hidden_dim`, which follows `prompt_dim`.
inline SamShape shape_from_json(const nlohmann::json& json) {
  TORCH_CHECK(json.is_object(), "a SAM shape must be a JSON object, got: ", json.dump());
  SamShape shape;
  const auto read = [&](const char* key, auto& field) {
    if (json.contains(key)) {
      try {
        json.at(key).get_to(field);
      } catch (const nlohmann::json::exception& error) {
        throw std::invalid_argument(std::string("SAM shape key '") + key +
                                    "' has the wrong type: " + error.what());
      }
    }
  };
  read("img_size", shape.img_size);
  read("patch_size", shape.patch_size);
  read("embed_dim", shape.embed_dim);
  read("depth", shape.depth);
  read("num_heads", shape.num_heads);
  read("global_attn_indexes", shape.global_attn_indexes);
  read("window_size", shape.window_size);
  read("prompt_dim", shape.prompt_dim);
  read("mlp_dim", shape.mlp_dim);
  read("dec_heads", shape.dec_heads);
  read("iou_head_hidden_dim", shape.iou_head_hidden_dim);
  read("mask_in_chans", shape.mask_in_chans);
  return shape;
}

/// Writes the fields of `shape` as a JSON object that shape_from_json reads back.
inline nlohmann::json shape_to_json(const SamShape& shape) {
  return nlohmann::json{{"img_size", shape.img_size},
                        {"patch_size", shape.patch_size},
                        {"embed_dim", shape.embed_dim},
                        {"depth", shape.depth},
                        {"num_heads", shape.num_heads},
                        {"global_attn_indexes", shape.global_attn_indexes},
                        {"window_size", shape.window_size},
                        {"prompt_dim", shape.prompt_dim},
                        {"mlp_dim", shape.mlp_dim},
                        {"dec_heads", shape.dec_heads},
                        {"iou_head_hidden_dim", shape.iou_head_hidden_dim},
                        {"mask_in_chans", shape.mask_in_chans}};
}

}  // namespace mtsam
