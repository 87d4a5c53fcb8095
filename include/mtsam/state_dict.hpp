#pragma once

/// Named tensors in and out of modules: reading `torch.save` checkpoints (zip archives of one
/// dict of name -> tensor) and copying a state dict into a module with errors that list the
/// missing keys, the unexpected keys and the shape mismatches.

#include <mtsam/relative_position.hpp>
#include <mtsam/torch_save.hpp>

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace mtsam {

/// Parameter name -> tensor, in file order.
using StateDict = torch::OrderedDict<std::string, torch::Tensor>;

/// A checkpoint that cannot be read, or that does not fit the model. The lists say what was
/// wrong; what() says it in words.
class CheckpointError : public std::runtime_error {
 public:
  explicit CheckpointError(const std::string& message) : std::runtime_error(message) {}
  CheckpointError(const std::string& message, std::vector<std::string> missing_,
                  std::vector<std::string> unexpected_, std::vector<std::string> mismatched_)
      : std::runtime_error(message),
        missing(std::move(missing_)),
        unexpected(std::move(unexpected_)),
        mismatched(std::move(mismatched_)) {}

  std::vector<std::string> missing;     ///< model keys absent from the checkpoint
  std::vector<std::string> unexpected;  ///< checkpoint keys the model does not have
  std::vector<std::string> mismatched;  ///< keys whose shapes differ
};

namespace detail {

inline std::string shape_string(torch::IntArrayRef sizes) {
  std::ostringstream out;
  out << sizes;
  return out.str();
}

/// "a, b, c" with at most `limit` names, then how many more.
inline std::string join_names(const std::vector<std::string>& names, size_t limit = 40) {
  std::string text;
  for (size_t i = 0; i < names.size() && i < limit; ++i) {
    text += (i == 0 ? "" : ", ") + names[i];
  }
  if (names.size() > limit) {
    text += ", ... and " + std::to_string(names.size() - limit) + " more";
  }
  return text;
}

}  // namespace detail

/// Reads a `torch.save` zip archive holding a dict of name -> tensor (such as the official SAM
/// `.pth` files). A dict that holds the state dict under "model" or "state_dict" is unwrapped.
/// Throws CheckpointError for a missing, cut or corrupt file and for other contents.
inline StateDict read_pth(const std::filesystem::path& path) {
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      throw CheckpointError("cannot open checkpoint '" + path.string() + "'");
    }
    std::array<char, 4> magic{};
    in.read(magic.data(), magic.size());
    if (in.gcount() < 4 || magic[0] != 'P' || magic[1] != 'K' || magic[2] != 3 || magic[3] != 4) {
      const bool legacy = in.gcount() > 0 && static_cast<unsigned char>(magic[0]) == 0x80;
      throw CheckpointError("'" + path.string() + "' is not a torch.save zip archive" +
                            (legacy
                                 ? " (it looks like the legacy torch.save format: re-save it with "
                                   "torch.save(obj, path, _use_new_zipfile_serialization=True))"
                                 : " (expected the bytes 'PK\\x03\\x04' at the start)"));
    }
  }
  detail::pickle::ValuePtr root;
  try {
    root = read_torch_save(path);
  } catch (const std::exception& error) {
    throw CheckpointError(error.what());
  }
  using detail::pickle::DictItems;
  const auto* dict = std::get_if<DictItems>(&root->data);
  if (dict == nullptr) {
    throw CheckpointError("checkpoint '" + path.string() +
                          "' does not hold a dict of name -> tensor");
  }
  for (const auto& [key, value] : *dict) {
    const auto* name = std::get_if<std::string>(&key->data);
    const auto* inner = std::get_if<DictItems>(&value->data);
    if (name != nullptr && (*name == "model" || *name == "state_dict") && inner != nullptr) {
      dict = inner;
      break;
    }
  }
  StateDict out;
  for (const auto& [key, value] : *dict) {
    const auto* name = std::get_if<std::string>(&key->data);
    if (name == nullptr) {
      throw CheckpointError("checkpoint '" + path.string() + "' has a key that is not a string");
    }
    const auto* tensor = std::get_if<torch::Tensor>(&value->data);
    if (tensor == nullptr) {
      throw CheckpointError("checkpoint '" + path.string() + "' entry '" + *name +
                            "' is not a tensor");
    }
    if (out.contains(*name)) {
      throw CheckpointError("checkpoint '" + path.string() + "' holds '" + *name + "' twice");
    }
    out.insert(*name, *tensor);
  }
  return out;
}

/// How load_state_dict matches names.
struct LoadOptions {
  /// Prepended to the module's own names; only checkpoint keys with this prefix are considered.
  std::string prefix;
  /// Missing or unexpected keys are an error (else they are only reported).
  bool strict = true;
  /// Resample `pos_embed` `[1, H, W, C]` and `rel_pos_h/w` `[L, C]` tables whose size differs
  /// from the model's (for an encoder built for a smaller or larger input).
  bool resize_positions = false;
};

/// What load_state_dict did.
struct LoadReport {
  std::vector<std::string> loaded;      ///< keys copied into the module
  std::vector<std::string> missing;     ///< model keys absent from the checkpoint
  std::vector<std::string> unexpected;  ///< checkpoint keys (with the prefix) not in the model
};

/// Copies `dict` into the parameters and buffers of `module` (converting dtype and device).
/// Nothing is copied when an error is thrown: a CheckpointError lists every shape mismatch
/// (key, checkpoint shape, model shape) and, when strict, every missing and unexpected key.
inline LoadReport load_state_dict(torch::nn::Module& module, const StateDict& dict,
                                  const LoadOptions& options = {}) {
  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& item : module.named_parameters(true)) {
    targets.emplace_back(options.prefix + item.key(), item.value());
  }
  for (const auto& item : module.named_buffers(true)) {
    targets.emplace_back(options.prefix + item.key(), item.value());
  }

  std::unordered_set<std::string> names;
  for (const auto& target : targets) {
    names.insert(target.first);
  }

  LoadReport report;
  std::vector<std::string> mismatched;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
  for (const auto& [name, target] : targets) {
    const auto* found = dict.find(name);
    if (found == nullptr) {
      report.missing.push_back(name);
      continue;
    }
    auto source = *found;
    if (options.resize_positions && source.sizes() != target.sizes()) {
      const std::string_view key(name);
      if (key.ends_with("pos_embed") && source.dim() == 4 && target.dim() == 4 &&
          source.size(0) == 1 && target.size(0) == 1 && source.size(3) == target.size(3)) {
        source = resize_pos_embed(source.to(torch::kFloat32), target.size(1), target.size(2));
      } else if ((key.ends_with("rel_pos_h") || key.ends_with("rel_pos_w")) && source.dim() == 2 &&
                 target.dim() == 2 && source.size(1) == target.size(1)) {
        source = resize_rel_pos(source.to(torch::kFloat32), target.size(0));
      }
    }
    if (source.sizes() != target.sizes()) {
      mismatched.push_back(name + ": checkpoint " + detail::shape_string(source.sizes()) +
                           ", model " + detail::shape_string(target.sizes()));
      continue;
    }
    copies.emplace_back(target, source);
    report.loaded.push_back(name);
  }
  for (const auto& item : dict) {
    if (!item.key().starts_with(options.prefix)) {
      continue;
    }
    if (!names.contains(item.key())) {
      report.unexpected.push_back(item.key());
    }
  }

  const bool key_error = options.strict && (!report.missing.empty() || !report.unexpected.empty());
  if (!mismatched.empty() || key_error) {
    std::string message = "the checkpoint does not fit the model";
    if (!mismatched.empty()) {
      message += "; shape mismatch (" + std::to_string(mismatched.size()) +
                 "): " + detail::join_names(mismatched);
    }
    if (options.strict && !report.missing.empty()) {
      message += "; missing keys (" + std::to_string(report.missing.size()) +
                 "): " + detail::join_names(report.missing);
    }
    if (options.strict && !report.unexpected.empty()) {
      message += "; unexpected keys (" + std::to_string(report.unexpected.size()) +
                 "): " + detail::join_names(report.unexpected);
    }
    if (!mismatched.empty() && !options.resize_positions) {
      message += " (for an encoder built for another input size, load with resize_positions)";
    }
    throw CheckpointError(message, report.missing, report.unexpected, mismatched);
  }

  torch::NoGradGuard no_grad;
  for (auto& [target, source] : copies) {
    target.copy_(source);
  }
  return report;
}

/// The parameters and buffers of `module` as a StateDict, names prefixed with `prefix`.
inline StateDict state_dict(const torch::nn::Module& module, const std::string& prefix = "") {
  StateDict out;
  for (const auto& item : module.named_parameters(true)) {
    out.insert(prefix + item.key(), item.value());
  }
  for (const auto& item : module.named_buffers(true)) {
    out.insert(prefix + item.key(), item.value());
  }
  return out;
}

}  // namespace mtsam
