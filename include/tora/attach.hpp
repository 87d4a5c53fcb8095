#pragma once

/// Adapting the linear layers of an existing model, selected by name pattern, without editing
/// the model's code.

#include <tora/adapted_linear.hpp>
#include <tora/adapters/factory.hpp>
#include <tora/concepts.hpp>
#include <tora/config.hpp>
#include <tora/layers.hpp>

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tora {

/// Whether the dotted `name` matches `pattern` as a whole; `*` matches any run of characters,
/// dots included ("blocks.*.attn.qkv", "*norm*", "linear1").
inline bool matches_pattern(std::string_view name, std::string_view pattern) {
  size_t n = 0;
  size_t p = 0;
  size_t star = std::string_view::npos;
  size_t resume = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}

namespace detail {

/// A linear layer attach() can adapt, with the action that adapts it.
struct LinearCandidate {
  std::string name;
  std::function<void(const AdapterConfig&)> adapt;
  bool adapted = false;    ///< it already holds an adapter
  bool rebinding = false;  ///< an unmodified linear, adapted by weight rebinding
};

/// Why `method` cannot adapt the unmodified linear module `name`, or "" when it can: weight
/// rebinding holds one weight per task, so the update must be mergeable.
inline std::string rebinding_refusal(Method method, const std::string& name) {
  if (is_mergeable(method)) {
    return "";
  }
  return std::string(to_string(method)) + " cannot adapt the unmodified linear module '" + name +
         "': weight rebinding needs one weight per task and its router mixes heads per token; "
         "declare the layer as tora::AdaptedLinear in the model's code";
}

/// Installs an adapter inside an unmodified linear module `linear` by weight rebinding.
template <LinearModule L>
void bind_into_linear(const std::shared_ptr<L>& linear, const std::string& name,
                      const AdapterConfig& config) {
  auto params = linear->named_parameters(false);
  auto* weight = params.find("weight");
  TORCH_CHECK(weight != nullptr && weight->dim() == 2, "attach: '", name,
              "' has no registered 2-D `weight` parameter");
  TORCH_CHECK(
      linear->named_children().find("adapter") == nullptr && linear->weight.is_same(*weight),
      "attach: '", name, "' is already adapted; load or configure it instead");
  const auto refusal = rebinding_refusal(config.method, name);
  TORCH_CHECK(refusal.empty(), "attach: ", refusal);
  auto* bias = params.find("bias");
  auto adapter = make_adapter(config, weight->size(1), weight->size(0));
  adapter->to(weight->device(), weight->scalar_type());
  linear->register_module("adapter", adapter);

  HostBinding binding;
  binding.name = name;
  binding.host = std::static_pointer_cast<torch::nn::Module>(linear);
  binding.weight_member = [raw = linear.get()]() -> torch::Tensor& { return raw->weight; };
  binding.weight = *weight;
  binding.bias = bias != nullptr ? *bias : torch::Tensor();
  weight->requires_grad_(adapter->trains_base());
  if (bias != nullptr) {
    bias->requires_grad_(adapter->trains_base());
  }
  adapter->bind_host(std::move(binding));
  rebind(*adapter, *adapter->host_binding(), Routing::single(0));
}

template <class L>
bool add_plain_candidate(const std::string& name, const std::shared_ptr<torch::nn::Module>& module,
                         std::vector<LinearCandidate>& candidates) {
  auto typed = std::dynamic_pointer_cast<L>(module);
  if (!typed) {
    return false;
  }
  candidates.push_back(
      {name, [typed, name](const AdapterConfig& config) { bind_into_linear(typed, name, config); },
       typed->named_children().find("adapter") != nullptr, true});
  return true;
}

template <class... Extra>
std::vector<LinearCandidate> linear_candidates(torch::nn::Module& module) {
  std::vector<LinearCandidate> candidates;
  for (const auto& item : module.named_modules(std::string(), false)) {
    const std::string& name = item.key();
    if (auto adapted = std::dynamic_pointer_cast<AdaptedLinearImpl>(item.value())) {
      candidates.push_back(
          {name, [adapted](const AdapterConfig& config) { adapted->set_adapter(config); },
           adapted->adapter() != nullptr, false});
      continue;
    }
    (add_plain_candidate<torch::nn::LinearImpl>(name, item.value(), candidates) || ... ||
     add_plain_candidate<Extra>(name, item.value(), candidates));
  }
  return candidates;
}

inline std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items) {
    text += text.empty() ? "'" : ", '";
    text += item;
    text += '\'';
  }
  return text.empty() ? "(none)" : text;
}

}  // namespace detail

/// Dotted names of the linear layers attach() can adapt in `module`: tora::AdaptedLinear,
/// torch::nn::Linear and the `Extra` linear module types.
template <LinearModule... Extra>
std::vector<std::string> linear_layer_names(torch::nn::Module& module) {
  std::vector<std::string> names;
  for (const auto& candidate : detail::linear_candidates<Extra...>(module)) {
    names.push_back(candidate.name);
  }
  return names;
}

/// Adapts every linear layer of `module` whose dotted name matches one of `patterns` (see
/// matches_pattern) with a new adapter of `config`, and returns the adapted names in module
/// order. The adapted layers' own weight and bias are frozen (trained for Method::full).
///
/// tora::AdaptedLinear layers get the adapter as their child. Unmodified torch::nn::Linear
/// layers (and `Extra` types satisfying LinearModule) keep their object, get the adapter as a
/// child `adapter`, and have their `weight` member rebound to W0 + s dW_t per routing while
/// the registered parameter stays W0: single-task routing only, rebuilt by every
/// set_routing()/RoutingGuard (see docs/tora.md). Throws std::invalid_argument when a pattern
/// matches nothing, listing the patterns and the linear layers that exist.
template <LinearModule... Extra>
std::vector<std::string> attach(torch::nn::Module& module, const std::vector<std::string>& patterns,
                                const AdapterConfig& config) {
  validate(config);
  if (patterns.empty()) {
    throw std::invalid_argument("attach: expected at least one name pattern, got none");
  }
  auto candidates = detail::linear_candidates<Extra...>(module);
  std::vector<std::string> unmatched;
  for (const auto& pattern : patterns) {
    bool found = false;
    for (const auto& candidate : candidates) {
      found = found || matches_pattern(candidate.name, pattern);
    }
    if (!found) {
      unmatched.push_back(pattern);
    }
  }
  if (!unmatched.empty()) {
    std::vector<std::string> names;
    for (const auto& candidate : candidates) {
      names.push_back(candidate.name);
    }
    throw std::invalid_argument(
        "attach: pattern(s) " + detail::join(unmatched) +
        " matched no linear layer; patterns given: " + detail::join(patterns) +
        "; linear layers in the model: " + detail::join(names));
  }
  std::vector<const detail::LinearCandidate*> chosen;
  for (const auto& candidate : candidates) {
    for (const auto& pattern : patterns) {
      if (matches_pattern(candidate.name, pattern)) {
        chosen.push_back(&candidate);
        break;
      }
    }
  }
  for (const auto* candidate : chosen) {
    TORCH_CHECK(!candidate->adapted, "attach: '", candidate->name,
                "' is already adapted; load or configure it instead");
    const auto refusal =
        candidate->rebinding ? detail::rebinding_refusal(config.method, candidate->name) : "";
    TORCH_CHECK(refusal.empty(), "attach: ", refusal);
  }
  std::vector<std::string> adapted;
  for (const auto* candidate : chosen) {
    candidate->adapt(config);
    adapted.push_back(candidate->name);
  }
  return adapted;
}

}  // namespace tora
