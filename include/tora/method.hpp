#pragma once

/// The adaptation methods tora implements, and their names in configs and files.

#include <array>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tora {

/// An adaptation method. See docs/tora.md for the formulas side by side.
enum class Method {
  lora,       ///< one LoRA, task-agnostic
  lora_hps,   ///< one LoRA shared by every task (hard parameter sharing)
  lora_stl,   ///< one LoRA per task (single-task learning)
  multilora,  ///< n parallel LoRAs with learnable per-output scales
  hydralora,  ///< a shared A, several B heads mixed per token by a router
  terra,      ///< B K(t)' A with a task-dependent r x r matrix K(t)
  tora,       ///< Tucker-factorised update tensor over all tasks (the paper's ToRA)
  full,       ///< full fine-tuning: the base weight itself is trained
};

/// Every method, in declaration order.
inline constexpr std::array<Method, 8> all_methods = {
    Method::lora,      Method::lora_hps, Method::lora_stl, Method::multilora,
    Method::hydralora, Method::terra,    Method::tora,     Method::full};

/// The method's name in configs and files: "lora", "lora-hps", "lora-stl", "multilora",
/// "hydralora", "terra", "tora", "full".
constexpr std::string_view to_string(Method method) {
  switch (method) {
    case Method::lora:
      return "lora";
    case Method::lora_hps:
      return "lora-hps";
    case Method::lora_stl:
      return "lora-stl";
    case Method::multilora:
      return "multilora";
    case Method::hydralora:
      return "hydralora";
    case Method::terra:
      return "terra";
    case Method::tora:
      return "tora";
    case Method::full:
      return "full";
  }
  return "unknown";
}

/// The method called `name` (see to_string); throws std::invalid_argument listing the names.
inline Method method_from_string(std::string_view name) {
  for (Method method : all_methods) {
    if (to_string(method) == name) {
      return method;
    }
  }
  std::string known;
  for (Method method : all_methods) {
    known += known.empty() ? "" : ", ";
    known += to_string(method);
  }
  throw std::invalid_argument("unknown adaptation method '" + std::string(name) +
                              "', expected one of: " + known);
}

/// Whether the method's update can be folded into the weight per task (all but HydraLoRA,
/// whose update depends on each token through its router).
constexpr bool is_mergeable(Method method) {
  return method != Method::hydralora;
}

/// Whether the method's update differs between tasks.
constexpr bool is_task_specific(Method method) {
  return method == Method::lora_stl || method == Method::terra || method == Method::tora;
}

}  // namespace tora
