#pragma once

/// Saving and loading the adapters of a model (not the frozen model): a safetensors file of
/// tensors plus a JSON config that Python tools can read as well.

#include <tora/adapters/factory.hpp>
#include <tora/attach.hpp>
#include <tora/config.hpp>
#include <tora/io/safetensors.hpp>
#include <tora/layers.hpp>

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace tora {

/// The tensor file inside an adapter folder.
inline constexpr const char* adapter_tensors_file = "adapters.safetensors";
/// The JSON config inside an adapter folder.
inline constexpr const char* adapter_config_file = "adapter_config.json";

namespace detail {

inline std::string join_key(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

/// The tensors saved for an adapter at `layer_name`: its parameters and buffers under
/// "<layer>.adapter.", and for full fine-tuning the layer's weight and bias.
inline io::NamedTensors layer_tensors(const std::string& layer_name, const AdapterBase& adapter,
                                      const torch::Tensor& weight, const torch::Tensor& bias) {
  io::NamedTensors tensors;
  const std::string prefix = join_key(layer_name, "adapter");
  for (const auto& item : adapter.named_parameters(true)) {
    tensors.emplace_back(join_key(prefix, item.key()), item.value());
  }
  for (const auto& item : adapter.named_buffers(true)) {
    tensors.emplace_back(join_key(prefix, item.key()), item.value());
  }
  if (adapter.trains_base()) {
    tensors.emplace_back(join_key(layer_name, "weight"), weight);
    if (bias.defined()) {
      tensors.emplace_back(join_key(layer_name, "bias"), bias);
    }
  }
  return tensors;
}

[[noreturn]] inline void load_error(const std::filesystem::path& dir, const std::string& what) {
  throw std::runtime_error("load_adapters('" + dir.string() + "'): " + what);
}

}  // namespace detail

/// Writes the adapters of `module` to the folder `dir` (created if needed):
/// `adapters.safetensors` (tensors named by their dotted path in `module`, the JSON config also
/// in its metadata under "tora_config") and `adapter_config.json`:
///
///     {"format": "tora-adapters", "version": 1, "method": "tora", "num_tasks": 3,
///      "targets": ["layers.0.linear1", ...], "layers": [{"target": ..., "in_features": ...,
///      "out_features": ..., "weight_rebinding": false, "config": {AdapterConfig}}, ...],
///      "extra": extra}
///
/// Throws when `module` has no adapter.
inline void save_adapters(const torch::nn::Module& module, const std::filesystem::path& dir,
                          const nlohmann::json& extra = nlohmann::json::object()) {
  auto layers = adapted_layers(module);
  TORCH_CHECK(!layers.empty(), "save_adapters: the module has no adapter to save");
  nlohmann::json config = {{"format", "tora-adapters"}, {"version", 1}};
  nlohmann::json targets = nlohmann::json::array();
  nlohmann::json entries = nlohmann::json::array();
  std::set<std::string> methods;
  int64_t tasks = 0;
  io::NamedTensors tensors;
  for (const auto& layer : layers) {
    const auto& adapter = layer.adapter();
    methods.insert(std::string(to_string(adapter.method())));
    tasks = std::max(tasks, adapter.num_tasks());
    targets.push_back(layer.name());
    entries.push_back({{"target", layer.name()},
                       {"in_features", adapter.in_features()},
                       {"out_features", adapter.out_features()},
                       {"weight_rebinding", layer.rebinds_weight()},
                       {"config", adapter.config()}});
    for (auto& item : detail::layer_tensors(layer.name(), adapter, layer.weight(), layer.bias())) {
      tensors.push_back(std::move(item));
    }
  }
  config["method"] = methods.size() == 1 ? *methods.begin() : std::string("mixed");
  config["num_tasks"] = tasks;
  config["targets"] = targets;
  config["layers"] = entries;
  config["extra"] = extra;

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  TORCH_CHECK(!ec, "save_adapters: cannot create the folder '", dir.string(), "' (", ec.message(),
              ")");
  io::write_safetensors(dir / adapter_tensors_file, tensors, {{"tora_config", config.dump()}});
  const auto json_path = dir / adapter_config_file;
  const auto temp = std::filesystem::path(json_path.string() + ".tmp");
  {
    std::ofstream out(temp, std::ios::trunc);
    out << config.dump(2) << "\n";
    TORCH_CHECK(out.good(), "save_adapters: cannot write '", temp.string(), "'");
  }
  std::filesystem::rename(temp, json_path);
}

/// Loads adapters saved by save_adapters() from `dir` into `module` and returns the saved
/// `extra` JSON. Layers that have no adapter yet are adapted first (attach() with the saved
/// config), so a fresh, unmodified model can be loaded into. Everything is checked before any
/// value changes: a missing, unexpected or mis-shaped tensor, a method that differs from the
/// model's, a cut or corrupt file all throw std::runtime_error naming the key (and both
/// shapes) or the file. `Extra` names the model's own linear module types, as for attach().
template <LinearModule... Extra>
nlohmann::json load_adapters(torch::nn::Module& module, const std::filesystem::path& dir) {
  nlohmann::json config;
  {
    const auto json_path = dir / adapter_config_file;
    std::ifstream in(json_path);
    if (!in) {
      detail::load_error(dir, "cannot open '" + json_path.string() + "'");
    }
    try {
      in >> config;
    } catch (const nlohmann::json::exception& e) {
      detail::load_error(
          dir, std::string("'") + adapter_config_file + "' is not valid JSON: " + e.what());
    }
  }
  if (!config.is_object() || config.value("format", "") != "tora-adapters" ||
      !config.contains("layers") || !config["layers"].is_array()) {
    detail::load_error(dir, std::string("expected '") + adapter_config_file +
                                "' with \"format\": \"tora-adapters\" and a \"layers\" array");
  }
  auto file = io::read_safetensors(dir / adapter_tensors_file);
  std::map<std::string, torch::Tensor> stored(file.tensors.begin(), file.tensors.end());

  struct Plan {
    std::string target;
    AdapterConfig config;
    bool attach = false;
  };
  std::vector<Plan> plans;
  std::set<std::string> expected_keys;
  std::map<std::string, AdaptedLayer> existing;
  for (auto& layer : adapted_layers(module)) {
    existing.emplace(layer.name(), layer);
  }
  auto candidates = detail::linear_candidates<Extra...>(module);
  for (const auto& entry : config["layers"]) {
    Plan plan;
    try {
      plan.target = entry.at("target").get<std::string>();
      plan.config = entry.at("config").get<AdapterConfig>();
    } catch (const std::exception& e) {
      detail::load_error(dir, std::string("a layer entry of the config is malformed: ") + e.what());
    }
    // The tensors the model expects, from its adapter or from a scratch one built alike.
    io::NamedTensors wanted;
    if (auto found = existing.find(plan.target); found != existing.end()) {
      const auto& layer = found->second;
      if (layer.adapter().method() != plan.config.method) {
        detail::load_error(dir, "layer '" + plan.target + "' holds a " +
                                    std::string(to_string(layer.adapter().method())) +
                                    " adapter but the file a " +
                                    std::string(to_string(plan.config.method)) + " one");
      }
      // Same shapes are not enough: a scaling or a choice of q/k/v blocks changes the outputs.
      // Dropout acts in training only, so a model built for inference may differ in it.
      nlohmann::json have = layer.adapter().config();
      nlohmann::json want = plan.config;
      have.erase("dropout");
      want.erase("dropout");
      for (const auto& [field, value] : want.items()) {
        const auto other = have.contains(field) ? have.at(field) : nlohmann::json();
        if (other != value) {
          detail::load_error(dir, "layer '" + plan.target + "' has " + field + " = " +
                                      other.dump() + " in the model but " + value.dump() +
                                      " in the file");
        }
      }
      wanted = detail::layer_tensors(plan.target, layer.adapter(), layer.weight(), layer.bias());
    } else {
      auto param_of = [&](const char* name) -> torch::Tensor {
        for (const auto& item : module.named_modules(std::string(), false)) {
          if (item.key() == plan.target) {
            if (auto* param = item.value()->named_parameters(false).find(name)) {
              return *param;
            }
          }
        }
        return {};
      };
      const detail::LinearCandidate* known = nullptr;
      for (const auto& candidate : candidates) {
        known = candidate.name == plan.target ? &candidate : known;
      }
      auto weight = param_of("weight");
      if (!known || !weight.defined() || weight.dim() != 2) {
        std::vector<std::string> names;
        for (const auto& candidate : candidates) {
          names.push_back(candidate.name);
        }
        detail::load_error(dir, "the file adapts '" + plan.target +
                                    "', which is not a linear layer of the model; linear layers: " +
                                    detail::join(names));
      }
      if (known->rebinding && !is_mergeable(plan.config.method)) {
        detail::load_error(dir, "the file holds a " + std::string(to_string(plan.config.method)) +
                                    " adapter for '" + plan.target +
                                    "', an unmodified linear module, which cannot hold one "
                                    "(declare it as tora::AdaptedLinear)");
      }
      auto scratch = make_adapter(plan.config, weight.size(1), weight.size(0));
      wanted = detail::layer_tensors(plan.target, *scratch, weight, param_of("bias"));
      plan.attach = true;
    }
    for (const auto& [key, tensor] : wanted) {
      expected_keys.insert(key);
      auto it = stored.find(key);
      if (it == stored.end()) {
        detail::load_error(dir, "the file has no tensor '" + key + "', which the model expects");
      }
      if (it->second.sizes() != tensor.sizes()) {
        detail::load_error(dir, "tensor '" + key + "' has shape " + c10::str(it->second.sizes()) +
                                    " in the file but " + c10::str(tensor.sizes()) +
                                    " in the model");
      }
    }
    plans.push_back(std::move(plan));
  }
  for (const auto& [name, layer] : existing) {
    const bool in_file = std::any_of(plans.begin(), plans.end(),
                                     [&name](const Plan& plan) { return plan.target == name; });
    if (!in_file) {
      detail::load_error(dir, "layer '" + name + "' of the model holds a " +
                                  std::string(to_string(layer.adapter().method())) +
                                  " adapter but the file has none for it");
    }
  }
  for (const auto& [key, tensor] : stored) {
    if (expected_keys.count(key) == 0) {
      detail::load_error(dir, "the file holds tensor '" + key + "', which no adapter of the " +
                                  "model expects (was it saved from another model?)");
    }
  }

  for (const auto& plan : plans) {
    if (plan.attach) {
      attach<Extra...>(module, {plan.target}, plan.config);
    }
  }
  for (auto& layer : adapted_layers(module)) {
    {
      torch::NoGradGuard no_grad;
      auto tensors =
          detail::layer_tensors(layer.name(), layer.adapter(), layer.weight(), layer.bias());
      for (auto& [key, tensor] : tensors) {
        if (auto it = stored.find(key); it != stored.end()) {
          tensor.copy_(it->second);
        }
      }
    }
    if (layer.rebinds_weight()) {
      layer.set_routing(layer.routing());
    }
  }
  return config.value("extra", nlohmann::json::object());
}

}  // namespace tora
