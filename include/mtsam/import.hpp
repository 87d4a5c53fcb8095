#pragma once

/// Filling MTSAM from other checkpoints: a SAM checkpoint (official or Hugging Face; every task
/// decoder becomes a copy of SAM's decoder, every task embedding row a copy of `no_mask_embed`),
/// or a state dict saved by the reference MTSAM code (ToRA factors `td_G`, `td_U1`, `td_U2`,
/// `td_U3` with the input-side `td_U1`, all tasks' rows in one `no_mask_embed`, decoders
/// `mask_decoder.N.*`).

#include <mtsam/checkpoint.hpp>
#include <mtsam/model.hpp>
#include <mtsam/state_dict.hpp>

#include <tora/adapters/tora.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mtsam {

namespace detail {

inline const std::string kPeKey = "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix";
inline const std::string kNoMaskKey = "prompt_encoder.no_mask_embed.weight";

/// The prompt encoder keys MTSAM has no use for (points, boxes, mask prompts).
inline bool unused_prompt_key(const std::string& key) {
  return key.starts_with("prompt_encoder.") && key != kPeKey && key != kNoMaskKey;
}

inline const torch::Tensor& require_key(const StateDict& dict, const std::string& key,
                                        const char* source) {
  const auto* found = dict.find(key);
  if (found == nullptr) {
    throw CheckpointError(std::string(source) + " lacks '" + key + "'", {key}, {}, {});
  }
  return *found;
}

/// Loads `dict` (already in MTSAM's names) and requires every model key to be present except
/// those containing `.adapter.` when `adapters_optional`. Keys are checked before any copy.
inline LoadReport load_converted(MTSAMImpl& model, const StateDict& dict, bool adapters_optional,
                                 bool resize_positions, const char* source) {
  const auto own = state_dict(model);
  std::vector<std::string> missing;
  for (const auto& item : own) {
    const bool optional = adapters_optional && item.key().find(".adapter.") != std::string::npos;
    if (!optional && !dict.contains(item.key())) {
      missing.push_back(item.key());
    }
  }
  std::vector<std::string> unexpected;
  for (const auto& item : dict) {
    if (!own.contains(item.key())) {
      unexpected.push_back(item.key());
    }
  }
  if (!missing.empty() || !unexpected.empty()) {
    std::string message = std::string(source) + " does not fit the model";
    if (!missing.empty()) {
      message += "; missing keys (" + std::to_string(missing.size()) + "): " + join_names(missing);
    }
    if (!unexpected.empty()) {
      message += "; unexpected keys (" + std::to_string(unexpected.size()) +
                 "): " + join_names(unexpected);
    }
    throw CheckpointError(message, missing, unexpected, {});
  }
  LoadOptions options;
  options.strict = false;
  options.resize_positions = resize_positions;
  return load_state_dict(model, dict, options);
}

}  // namespace detail

/// SAM's weights (official key names) under MTSAM's names for the given tasks.
inline StateDict mtsam_dict_from_sam(const StateDict& sam, const std::vector<Task>& tasks) {
  StateDict out;
  const auto& no_mask = detail::require_key(sam, detail::kNoMaskKey, "the SAM checkpoint");
  if (no_mask.dim() != 2 || no_mask.size(0) != 1) {
    throw CheckpointError("'" + detail::kNoMaskKey + "' should be [1, C], got " +
                          detail::shape_string(no_mask.sizes()));
  }
  for (const auto& item : sam) {
    const auto& key = item.key();
    if (key.starts_with("image_encoder.")) {
      out.insert(key, item.value());
    } else if (key == detail::kPeKey) {
      out.insert("pe_layer.positional_encoding_gaussian_matrix", item.value());
    } else if (key.starts_with("mask_decoder.")) {
      const auto rest = key.substr(std::string("mask_decoder.").size());
      for (size_t t = 0; t < tasks.size(); ++t) {
        out.insert("decoders." + std::to_string(t) + "." + rest, item.value());
      }
    } else if (key != detail::kNoMaskKey && !detail::unused_prompt_key(key)) {
      out.insert(key, item.value());
    }
  }
  for (size_t t = 0; t < tasks.size(); ++t) {
    out.insert("task_embeddings." + std::to_string(t), no_mask.expand({tasks[t].channels, -1}));
  }
  return out;
}

/// Fills `model` from a SAM state dict (official names; see read_checkpoint). The adapters keep
/// their initial values. With `resize_positions`, a checkpoint trained for another input size
/// has its `pos_embed` (bilinear) and global blocks' `rel_pos_*` tables (linear) resampled.
inline LoadReport load_sam_weights(MTSAMImpl& model, const StateDict& sam,
                                   bool resize_positions = true) {
  return detail::load_converted(model, mtsam_dict_from_sam(sam, model.options.tasks()), true,
                                resize_positions, "the SAM checkpoint");
}

/// Builds MTSAM and fills it from a SAM checkpoint file (`.pth` or safetensors).
inline MTSAM mtsam_from_sam_checkpoint(const std::filesystem::path& path, MTSAMOptions options) {
  MTSAM model(std::move(options));
  load_sam_weights(*model, read_checkpoint(path));
  return model;
}

/// A state dict of the reference MTSAM code under this model's names. Its ToRA factors are
/// transposed into tora's convention: the reference's `td_U1` [in, R1] is on the input side,
/// so tora's U1 (output side) is `td_U2` [rows, R2], U2 is `td_U1`, and G = `td_G`
/// permuted to [R2, R1, R3]; tora's (p, q, v) is the reference's (R2, R1, R3).
inline StateDict mtsam_dict_from_reference(const StateDict& reference, const MTSAMImpl& model) {
  StateDict out;
  const auto& tasks = model.options.tasks();
  for (const auto& item : reference) {
    const auto& key = item.key();
    const auto& value = item.value();
    const auto td = key.find(".qkv.td_");
    if (td != std::string::npos) {
      const auto prefix = key.substr(0, td) + ".qkv.adapter.";
      const auto factor = key.substr(td + std::string(".qkv.td_").size());
      if (factor == "G") {
        if (value.dim() != 3) {
          throw CheckpointError("'" + key + "' should be [R1, R2, R3], got " +
                                detail::shape_string(value.sizes()));
        }
        out.insert(prefix + "G", value.permute({1, 0, 2}).contiguous());
      } else if (factor == "U1") {
        out.insert(prefix + "U2", value);
      } else if (factor == "U2") {
        out.insert(prefix + "U1", value);
      } else if (factor == "U3") {
        out.insert(prefix + "U3", value);
      } else {
        out.insert(key, value);
      }
    } else if (key == detail::kNoMaskKey) {
      int64_t rows = 0;
      for (const auto& task : tasks) {
        rows += task.channels;
      }
      if (value.dim() != 2 || value.size(0) != rows) {
        throw CheckpointError("'" + key + "' is " + detail::shape_string(value.sizes()) +
                              " but the model's tasks have " + std::to_string(rows) +
                              " channels in all; the tasks must match the reference's, in order");
      }
      int64_t row = 0;
      for (size_t t = 0; t < tasks.size(); ++t) {
        out.insert("task_embeddings." + std::to_string(t), value.narrow(0, row, tasks[t].channels));
        row += tasks[t].channels;
      }
    } else if (key == detail::kPeKey) {
      out.insert("pe_layer.positional_encoding_gaussian_matrix", value);
    } else if (key.starts_with("mask_decoder.")) {
      out.insert("decoders." + key.substr(std::string("mask_decoder.").size()), value);
    } else if (!detail::unused_prompt_key(key)) {
      out.insert(key, value);
    }
  }
  return out;
}

/// Fills `model` (with ToRA adapters of matching ranks) from a reference MTSAM state dict;
/// every model key must be present.
inline LoadReport load_reference_state_dict(MTSAMImpl& model, const StateDict& reference) {
  const bool has_tora = std::any_of(reference.begin(), reference.end(), [](const auto& item) {
    return item.key().find(".qkv.td_") != std::string::npos;
  });
  if (has_tora && model.options.adapter().method != tora::Method::tora) {
    throw CheckpointError(
        "the reference state dict holds ToRA factors (td_*) but the model's "
        "adapter is " +
        std::string(tora::to_string(model.options.adapter().method)));
  }
  try {
    return detail::load_converted(model, mtsam_dict_from_reference(reference, model), false, false,
                                  "the reference MTSAM state dict");
  } catch (const CheckpointError& error) {
    if (error.mismatched.empty()) {
      throw;
    }
    throw CheckpointError(std::string(error.what()) +
                              " (tora's ToRA ranks p, q, v are the reference's R2, R1, R3: its "
                              "td_U1 [in, R1] is the input factor)",
                          error.missing, error.unexpected, error.mismatched);
  }
}

}  // namespace mtsam
