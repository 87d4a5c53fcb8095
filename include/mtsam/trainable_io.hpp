#pragma once

/// Saving what MTSAM trains, without the frozen SAM weights: the adapters through tora's adapter
/// files (`adapters.safetensors` + `adapter_config.json`, whose `extra` describes the model),
/// and the other trained tensors (LayerNorms, task embeddings, decoders) in
/// `trainable.safetensors` beside them: the layout of the trainer's checkpoint folders.

#include <mtsam/model.hpp>
#include <mtsam/presets.hpp>
#include <mtsam/state_dict.hpp>
#include <mtsam/task.hpp>

#include <tora/io/adapter_io.hpp>
#include <tora/io/safetensors.hpp>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace mtsam {

/// The tensor file, beside tora's adapter files, that holds the other trained tensors.
inline constexpr const char* trained_parts_file = "trainable.safetensors";

/// The model description stored in the adapter config's `extra`: shape, tasks, adapter.
inline nlohmann::json describe(const MTSAMOptions& options) {
  return nlohmann::json{{"format", "mtsam"},
                        {"shape", shape_to_json(options.shape())},
                        {"tasks", options.tasks()},
                        {"adapter", options.adapter()},
                        {"adapted_blocks", options.adapted_blocks()}};
}

/// Reads back the options written by save_trained_parts() into the folder `dir`.
inline MTSAMOptions read_trained_parts_options(const std::filesystem::path& dir) {
  const auto path = dir / tora::adapter_config_file;
  std::ifstream in(path);
  if (!in) {
    throw CheckpointError("cannot open '" + path.string() + "'");
  }
  try {
    const auto extra = nlohmann::json::parse(in).at("extra");
    if (extra.value("format", "") != "mtsam") {
      throw CheckpointError("'" + path.string() + "' was not written by mtsam::save_trained_parts");
    }
    auto options =
        MTSAMOptions(shape_from_json(extra.at("shape")), extra.at("tasks").get<std::vector<Task>>())
            .adapter(extra.at("adapter").get<tora::AdapterConfig>());
    return options.adapted_blocks(extra.at("adapted_blocks").get<std::vector<int64_t>>());
  } catch (const CheckpointError&) {
    throw;
  } catch (const std::exception& error) {
    throw CheckpointError("'" + path.string() + "' does not describe an MTSAM: " + error.what());
  }
}

namespace detail {

/// Trained tensors that are not adapter tensors.
inline tora::io::NamedTensors head_tensors(const MTSAMImpl& model) {
  tora::io::NamedTensors tensors;
  for (const auto& item : model.named_parameters(true)) {
    if (item.value().requires_grad() && item.key().find(".adapter.") == std::string::npos) {
      tensors.emplace_back(item.key(), item.value().detach());
    }
  }
  return tensors;
}

}  // namespace detail

/// Writes the trained parts of `model` to the folder `dir` (created if needed).
inline void save_trained_parts(const MTSAMImpl& model, const std::filesystem::path& dir) {
  tora::save_adapters(model, dir, describe(model.options));
  tora::io::write_safetensors(dir / trained_parts_file, detail::head_tensors(model),
                              {{"format", "mtsam-trainable"}});
}

/// Loads what save_trained_parts() (or the trainer) wrote into a model built with the same
/// options, typically filled from the same SAM checkpoint first. The saved tasks, when the
/// folder names them, must be the model's; every tensor is checked before any is copied.
inline void load_trained_parts(MTSAMImpl& model, const std::filesystem::path& dir) {
  {
    std::ifstream in(dir / tora::adapter_config_file);
    nlohmann::json config;
    try {
      config = nlohmann::json::parse(in);
    } catch (const std::exception& error) {
      throw CheckpointError("'" + (dir / tora::adapter_config_file).string() +
                            "' cannot be read: " + error.what());
    }
    const auto extra = config.value("extra", nlohmann::json::object());
    if (extra.is_object() && extra.contains("tasks")) {
      std::vector<Task> tasks;
      try {
        tasks = extra.at("tasks").get<std::vector<Task>>();
      } catch (const std::exception& error) {
        throw CheckpointError("the tasks saved in '" + dir.string() +
                              "' are malformed: " + error.what());
      }
      if (tasks != model.options.tasks()) {
        throw CheckpointError("'" + dir.string() + "' was saved for other tasks than the model's");
      }
    }
  }
  StateDict heads;
  try {
    for (auto& [name, tensor] : tora::io::read_safetensors(dir / trained_parts_file).tensors) {
      heads.insert(name, tensor);
    }
  } catch (const std::exception& error) {
    throw CheckpointError(error.what());
  }
  // Check the heads against the model before anything changes.
  const auto expected = detail::head_tensors(model);
  std::vector<std::string> missing;
  for (const auto& [name, tensor] : expected) {
    const auto* found = heads.find(name);
    if (found == nullptr) {
      missing.push_back(name);
    } else if (found->sizes() != tensor.sizes()) {
      throw CheckpointError("'" + name + "' is " + detail::shape_string(found->sizes()) + " in '" +
                            dir.string() + "' but " + detail::shape_string(tensor.sizes()) +
                            " in the model");
    }
  }
  std::vector<std::string> unexpected;
  for (const auto& item : heads) {
    const bool known = std::any_of(expected.begin(), expected.end(),
                                   [&](const auto& entry) { return entry.first == item.key(); });
    if (!known) {
      unexpected.push_back(item.key());
    }
  }
  if (!missing.empty() || !unexpected.empty()) {
    throw CheckpointError("'" + dir.string() + "' does not hold the model's trained tensors; " +
                              "missing (" + std::to_string(missing.size()) +
                              "): " + detail::join_names(missing) + "; unexpected (" +
                              std::to_string(unexpected.size()) +
                              "): " + detail::join_names(unexpected),
                          missing, unexpected, {});
  }
  try {
    tora::load_adapters(model, dir);
  } catch (const std::exception& error) {
    throw CheckpointError(error.what());
  }
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters(true)) {
    if (const auto* found = heads.find(item.key())) {
      item.value().copy_(*found);
    }
  }
}

}  // namespace mtsam
