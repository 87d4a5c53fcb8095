#pragma once

/// The Hugging Face copies of SAM (safetensors, `vision_encoder.*` names) read back under the
/// official key names. Only names change: no tensor is transposed, reshaped or scaled.

#include <mtsam/state_dict.hpp>

#include <tora/io/safetensors.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mtsam {

namespace detail {

inline std::vector<std::string> split_key(std::string_view key) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = key.find('.', start);
    parts.emplace_back(key.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) {
      return parts;
    }
    start = dot + 1;
  }
}

/// Whether a key part is a layer index: digits only, and few enough to fit an int64.
inline bool is_index(const std::string& part) {
  return !part.empty() && part.size() < 19 && std::all_of(part.begin(), part.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
}

inline std::string join_key(const std::vector<std::string>& parts) {
  std::string key;
  for (size_t i = 0; i < parts.size(); ++i) {
    key += (i == 0 ? "" : ".") + parts[i];
  }
  return key;
}

/// Index of the part that starts an MLP head's layer name (`proj_in`, `layers`, `proj_out`)
/// in a Hugging Face mask decoder key, or 0 when the key is not inside such a head.
inline size_t hf_mlp_layer_part(const std::vector<std::string>& parts) {
  if (parts.size() >= 4 && parts[0] == "mask_decoder" && parts[1] == "iou_prediction_head") {
    return 2;
  }
  if (parts.size() >= 5 && parts[0] == "mask_decoder" && parts[1] == "output_hypernetworks_mlps") {
    return 3;
  }
  return 0;
}

/// `normK` for `layer_normK`, `norm_final_attn` for `layer_norm_final_attn`.
inline void rename_layer_norm(std::string& part) {
  if (part.starts_with("layer_norm")) {
    part = "norm" + part.substr(std::string_view("layer_norm").size());
  }
}

inline std::string hf_key_to_official(std::string_view key,
                                      const std::map<std::string, int64_t>& hidden_layers) {
  if (key == "shared_image_embedding.positional_embedding" ||
      key == "prompt_encoder.shared_embedding.positional_embedding") {
    return "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix";
  }
  auto parts = split_key(key);
  if (parts.size() < 2) {
    return std::string(key);
  }
  static const std::map<std::string, std::string> neck{
      {"conv1", "0"}, {"layer_norm1", "1"}, {"conv2", "2"}, {"layer_norm2", "3"}};
  static const std::map<std::string, std::string> mask_embed{
      {"conv1", "0"}, {"layer_norm1", "1"}, {"conv2", "3"}, {"layer_norm2", "4"}, {"conv3", "6"}};
  static const std::map<std::string, std::string> upscaling{
      {"upscale_conv1", "0"}, {"upscale_layer_norm", "1"}, {"upscale_conv2", "3"}};
  if (parts[0] == "vision_encoder") {
    parts[0] = "image_encoder";
    if (parts[1] == "layers") {
      parts[1] = "blocks";
    } else if (parts[1] == "patch_embed" && parts.size() > 2 && parts[2] == "projection") {
      parts[2] = "proj";
    } else if (parts[1] == "neck" && parts.size() > 2 && neck.contains(parts[2])) {
      parts[2] = neck.at(parts[2]);
    }
    for (size_t i = 2; i < parts.size(); ++i) {
      rename_layer_norm(parts[i]);
    }
  } else if (parts[0] == "prompt_encoder") {
    if (parts[1] == "point_embed") {
      parts[1] = "point_embeddings";
    } else if (parts[1] == "mask_embed" && parts.size() > 2 && mask_embed.contains(parts[2])) {
      parts[1] = "mask_downscaling";
      parts[2] = mask_embed.at(parts[2]);
    }
  } else if (parts[0] == "mask_decoder") {
    if (upscaling.contains(parts[1])) {
      parts.insert(parts.begin() + 2, upscaling.at(parts[1]));
      parts[1] = "output_upscaling";
    } else if (parts[1] == "transformer") {
      for (size_t i = 2; i < parts.size(); ++i) {
        rename_layer_norm(parts[i]);
      }
    } else if (const size_t at = hf_mlp_layer_part(parts); at > 0) {
      const std::string head = join_key({parts.begin(), parts.begin() + static_cast<long>(at)});
      const auto hidden = hidden_layers.contains(head) ? hidden_layers.at(head) : 0;
      if (parts[at] == "proj_in") {
        parts[at] = "layers";
        parts.insert(parts.begin() + static_cast<long>(at) + 1, "0");
      } else if (parts[at] == "proj_out") {
        parts[at] = "layers";
        parts.insert(parts.begin() + static_cast<long>(at) + 1, std::to_string(hidden + 1));
      } else if (parts[at] == "layers" && parts.size() > at + 1 && is_index(parts[at + 1])) {
        parts[at + 1] = std::to_string(std::stoll(parts[at + 1]) + 1);
      }
    }
  }
  return join_key(parts);
}

}  // namespace detail

/// Renames a Hugging Face SAM state dict to the official key names. Keys it does not know are
/// kept as they are (a later load reports them as unexpected).
inline StateDict official_from_hf(const StateDict& hf) {
  // Hidden layers of every MLP head: `layers.K` between `proj_in` and `proj_out`.
  std::map<std::string, int64_t> hidden_layers;
  for (const auto& item : hf) {
    const auto parts = detail::split_key(item.key());
    const size_t at = detail::hf_mlp_layer_part(parts);
    if (at > 0 && parts[at] == "layers" && parts.size() > at + 1 &&
        detail::is_index(parts[at + 1])) {
      const std::string head =
          detail::join_key({parts.begin(), parts.begin() + static_cast<long>(at)});
      hidden_layers[head] = std::max<int64_t>(hidden_layers[head], std::stoll(parts[at + 1]) + 1);
    }
  }
  StateDict official;
  for (const auto& item : hf) {
    const auto name = detail::hf_key_to_official(item.key(), hidden_layers);
    if (official.contains(name)) {
      if (official[name].sizes() != item.value().sizes() ||
          !torch::equal(official[name], item.value())) {
        throw CheckpointError("the Hugging Face checkpoint holds two different tensors for '" +
                              name + "'");
      }
      continue;
    }
    official.insert(name, item.value());
  }
  return official;
}

/// Reads a safetensors file into a StateDict, keys as stored.
inline StateDict read_safetensors_state_dict(const std::filesystem::path& path) {
  tora::io::SafetensorsFile file;
  try {
    file = tora::io::read_safetensors(path);
  } catch (const std::exception& error) {
    throw CheckpointError(std::string("cannot read safetensors checkpoint: ") + error.what());
  }
  StateDict dict;
  for (auto& [name, tensor] : file.tensors) {
    dict.insert(name, std::move(tensor));
  }
  return dict;
}

/// Reads a Hugging Face SAM safetensors file under the official key names.
inline StateDict read_hf_safetensors(const std::filesystem::path& path) {
  return official_from_hf(read_safetensors_state_dict(path));
}

}  // namespace mtsam
