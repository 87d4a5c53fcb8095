#pragma once

/// Choosing what trains: everything frozen but the adapters (and what the caller names), and
/// listing and counting what is trainable.

#include <tora/adapters/adapter.hpp>
#include <tora/attach.hpp>
#include <tora/io/safetensors.hpp>
#include <tora/layers.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace tora {

/// The parameters of every adapter in `module`, by dotted name.
inline io::NamedTensors adapter_parameters(const torch::nn::Module& module) {
  io::NamedTensors named;
  for (const auto& item : module.named_modules(std::string(), false)) {
    if (std::dynamic_pointer_cast<AdapterBase>(item.value())) {
      for (const auto& param : item.value()->named_parameters(true)) {
        named.emplace_back(item.key() + "." + param.key(), param.value());
      }
    }
  }
  return named;
}

/// Freezes every parameter of `module`, then makes trainable: every adapter parameter, the
/// weight and bias of layers adapted with Method::full, and every parameter whose dotted name
/// matches one of `also_train` (see matches_pattern, e.g. "*norm*"). Returns the names made
/// trainable. A pattern that matches no parameter is an error (std::invalid_argument).
inline std::vector<std::string> freeze_all_but_adapters(
    torch::nn::Module& module, const std::vector<std::string>& also_train = {}) {
  auto params = module.named_parameters(true);
  for (const auto& pattern : also_train) {
    bool matched = false;
    for (const auto& item : params) {
      matched = matched || matches_pattern(item.key(), pattern);
    }
    if (!matched) {
      throw std::invalid_argument(
          "freeze_all_but_adapters: pattern '" + pattern +
          "' matches no parameter name; parameters: " + detail::join(params.keys()));
    }
  }
  for (const auto& item : params) {
    bool train = false;
    for (const auto& pattern : also_train) {
      train = train || matches_pattern(item.key(), pattern);
    }
    item.value().requires_grad_(train);
  }
  for (auto& [name, param] : adapter_parameters(module)) {
    param.requires_grad_(true);
  }
  for (const auto& layer : adapted_layers(module)) {
    if (layer.adapter().trains_base()) {
      layer.weight().requires_grad_(true);
      if (layer.bias().defined()) {
        layer.bias().requires_grad_(true);
      }
    }
  }
  std::vector<std::string> trainable;
  for (const auto& item : params) {
    if (item.value().requires_grad()) {
      trainable.push_back(item.key());
    }
  }
  return trainable;
}

/// The parameters of `module` that require gradients, by dotted name.
inline io::NamedTensors trainable_parameters(const torch::nn::Module& module) {
  io::NamedTensors named;
  for (const auto& item : module.named_parameters(true)) {
    if (item.value().requires_grad()) {
      named.emplace_back(item.key(), item.value());
    }
  }
  return named;
}

/// Number of trainable scalars in `module`.
inline int64_t count_trainable(const torch::nn::Module& module) {
  int64_t count = 0;
  for (const auto& [name, param] : trainable_parameters(module)) {
    count += param.numel();
  }
  return count;
}

/// Number of scalars in all parameters of `module`.
inline int64_t count_parameters(const torch::nn::Module& module) {
  int64_t count = 0;
  for (const auto& param : module.parameters(true)) {
    count += param.numel();
  }
  return count;
}

}  // namespace tora
