#pragma once

/// Loading SAM checkpoints in any of the formats it is published in: the official `.pth`
/// (`torch.save` zip), and safetensors with official or Hugging Face key names.

#include <mtsam/hf_checkpoint.hpp>
#include <mtsam/sam.hpp>
#include <mtsam/state_dict.hpp>

#include <torch/torch.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <string>

namespace mtsam {

/// Reads a SAM checkpoint under the official key names: a `torch.save` zip archive (by its
/// `PK` signature), else a safetensors file, renamed from the Hugging Face key names when it
/// uses them (`vision_encoder.*`).
inline StateDict read_checkpoint(const std::filesystem::path& path) {
  std::array<char, 4> magic{};
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      throw CheckpointError("cannot open checkpoint '" + path.string() + "'");
    }
    in.read(magic.data(), magic.size());
  }
  // A zip archive is torch.save's format; a pickle opcode first is its legacy format, which
  // read_pth names in its error.
  if ((magic[0] == 'P' && magic[1] == 'K') || static_cast<unsigned char>(magic[0]) == 0x80) {
    return read_pth(path);
  }
  auto dict = read_safetensors_state_dict(path);
  for (const auto& item : dict) {
    if (item.key().starts_with("vision_encoder.") ||
        item.key().starts_with("shared_image_embedding.")) {
      return official_from_hf(dict);
    }
  }
  return dict;
}

/// Loads a SAM checkpoint file into `sam` (strict unless `options` says otherwise).
inline LoadReport load_sam(SamImpl& sam, const std::filesystem::path& path,
                           const LoadOptions& options = {}) {
  return load_state_dict(sam, read_checkpoint(path), options);
}

}  // namespace mtsam
