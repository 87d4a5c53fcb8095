#pragma once

/// Checks the trainer makes on a run: gradients that are not finite, and settings that differ
/// from a saved run's on resume.

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace mtsam::train {

namespace detail {

/// The name of the first parameter whose gradient holds a NaN or an infinity, if any; one
/// synchronisation with the device for all of them.
inline std::optional<std::string> first_non_finite_gradient(
    const std::vector<std::pair<std::string, torch::Tensor>>& parameters) {
  std::vector<torch::Tensor> finite;
  std::vector<const std::string*> names;
  for (const auto& [name, tensor] : parameters) {
    if (tensor.grad().defined()) {
      finite.push_back(torch::isfinite(tensor.grad()).all());
      names.push_back(&name);
    }
  }
  if (finite.empty()) {
    return std::nullopt;
  }
  const auto flags = torch::stack(finite).cpu();
  const auto* flag = flags.data_ptr<bool>();
  for (size_t i = 0; i < names.size(); ++i) {
    if (!flag[i]) {
      return *names[i];
    }
  }
  return std::nullopt;
}

/// "batch_size was 4, now 8; adapter.p was ..." for the keys of `now` whose values differ,
/// descending into objects (dotted names) and skipping the top-level keys in `skip`.
inline std::string option_differences(const nlohmann::json& saved, const nlohmann::json& now,
                                      const std::set<std::string>& skip = {},
                                      const std::string& prefix = "") {
  std::string text;
  for (const auto& item : now.items()) {
    if (skip.count(item.key()) != 0) {
      continue;
    }
    const auto was = saved.is_object() && saved.contains(item.key()) ? saved.at(item.key())
                                                                     : nlohmann::json(nullptr);
    std::string part;
    if (was.is_object() && item.value().is_object()) {
      part = option_differences(was, item.value(), {}, prefix + item.key() + ".");
    } else if (was != item.value()) {
      part = prefix + item.key() + " was " + was.dump() + ", now " + item.value().dump();
    }
    if (!part.empty()) {
      text += (text.empty() ? "" : "; ") + part;
    }
  }
  return text;
}

}  // namespace detail

}  // namespace mtsam::train
