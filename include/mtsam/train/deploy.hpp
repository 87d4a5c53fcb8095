#pragma once

/// After training: one task's adapters folded into the encoder weights (a single-task MTSAM
/// with no adapter cost), and a task exported as a plain SAM checkpoint in the official `.pth`
/// layout (how the quick start makes its small pretrained backbone).

#include <mtsam/model.hpp>
#include <mtsam/sam.hpp>
#include <mtsam/state_dict.hpp>
#include <mtsam/train/checkpoint.hpp>
#include <mtsam/train/detail/torch_save_writer.hpp>
#include <tora/io/safetensors.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace mtsam::train {

/// The weights of task `task` alone with its adapter update folded into every adapted `qkv`,
/// under the names of a single-task MTSAM (`image_encoder.*` without adapters, `pe_layer.*`,
/// `task_embeddings.0`, `decoders.0.*`). Throws for a method whose update cannot be folded
/// (HydraLoRA). The model is left unmerged.
inline tora::io::NamedTensors merged_task_tensors(MTSAMImpl& model, int64_t task) {
  TORCH_CHECK(task >= 0 && task < model.num_tasks(), "task ", task,
              " is out of range: the model has ", model.num_tasks(), " task(s)");
  torch::NoGradGuard no_grad;
  model.merge(task);
  tora::io::NamedTensors out;
  const std::string embedding = "task_embeddings." + std::to_string(task);
  const std::string decoder = "decoders." + std::to_string(task) + ".";
  for (const auto& item : state_dict(model)) {
    const auto& name = item.key();
    const auto value = item.value().detach().to(torch::kCPU).clone();
    if (name.find(".adapter.") != std::string::npos) {
      continue;
    }
    if (name.starts_with("image_encoder.") || name.starts_with("pe_layer.")) {
      out.emplace_back(name, value);
    } else if (name == embedding) {
      out.emplace_back("task_embeddings.0", value);
    } else if (name.starts_with(decoder)) {
      out.emplace_back("decoders.0." + name.substr(decoder.size()), value);
    }
  }
  model.unmerge();
  return out;
}

/// A single-task MTSAM of `model`'s shape for task `task`, filled with `tensors` (as
/// merged_task_tensors makes them). Its adapters are freshly built and add nothing (ToRA's core
/// and the LoRA family's B start at zero), so it computes exactly the merged weights.
inline MTSAM single_task_model(const MTSAMImpl& model, int64_t task,
                               const tora::io::NamedTensors& tensors) {
  MTSAMOptions options(model.options.shape(), {model.options.tasks().at(task)});
  options.adapter(default_adapter_config()).adapted_blocks(model.options.adapted_blocks());
  MTSAM single(options);
  StateDict dict;
  for (const auto& [name, tensor] : tensors) {
    dict.insert(name, tensor);
  }
  LoadOptions lenient;
  lenient.strict = false;
  const auto report = load_state_dict(*single, dict, lenient);
  for (const auto& key : report.missing) {
    TORCH_CHECK(key.find(".adapter.") != std::string::npos, "merged weights lack '", key, "'");
  }
  TORCH_CHECK(report.unexpected.empty(),
              "merged weights hold names the model does not have, e.g. '",
              report.unexpected.front(), "'");
  return single;
}

/// Writes a dict of name -> tensor as `torch.save` does (the official SAM `.pth` layout; see
/// <mtsam/train/detail/torch_save_writer.hpp>), atomically: a temporary file, then a rename.
inline void write_pth(const std::filesystem::path& path, const StateDict& dict) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& item : dict) {
    tensors.emplace_back(item.key(), item.value());
  }
  write_text_atomically(path, detail::torch_save_bytes(tensors));
}

/// `model`'s encoder, image positional encoding and task `task`'s decoder as a SAM state dict
/// under the official names (task embeddings averaged into `no_mask_embed`; the prompt
/// encoder's point and mask-prompt weights, which MTSAM does not use, freshly initialised).
/// The result loads strictly into mtsam::Sam of the same shape.
inline StateDict sam_state_dict_from_task(const MTSAMImpl& model, int64_t task) {
  TORCH_CHECK(task >= 0 && task < model.num_tasks(), "task ", task, " is out of range");
  const std::string decoder = "decoders." + std::to_string(task) + ".";
  const std::string embedding = "task_embeddings." + std::to_string(task);
  StateDict from;
  for (const auto& item : state_dict(model)) {
    const auto& name = item.key();
    if (name.find(".adapter.") != std::string::npos) {
      continue;
    }
    if (name.starts_with("image_encoder.")) {
      from.insert(name, item.value());
    } else if (name.starts_with("pe_layer.")) {
      from.insert("prompt_encoder." + name, item.value());
    } else if (name.starts_with(decoder)) {
      from.insert("mask_decoder." + name.substr(decoder.size()), item.value());
    } else if (name == embedding) {
      from.insert("prompt_encoder.no_mask_embed.weight", item.value().mean(0, true).detach());
    }
  }
  Sam sam(model.options.shape());
  LoadOptions lenient;
  lenient.strict = false;
  const auto report = load_state_dict(*sam, from, lenient);
  for (const auto& key : report.missing) {
    TORCH_CHECK(key.starts_with("prompt_encoder."), "SAM export: the model has no '", key, "'");
  }
  TORCH_CHECK(report.unexpected.empty(), "SAM export: SAM has no '", report.unexpected.front(),
              "'");
  StateDict out;
  for (const auto& item : state_dict(*sam)) {
    out.insert(item.key(), item.value().detach().clone());
  }
  return out;
}

}  // namespace mtsam::train
