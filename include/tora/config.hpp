#pragma once

/// The runtime description of an adapter: method plus every hyper-parameter, serialisable to
/// JSON. Per-method Options (adapters/*.hpp) are built from it by make_adapter().

#include <tora/method.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace tora {

/// Every hyper-parameter of every method, each with its default. Fields a method does not use
/// are ignored by it (and still saved, so a config file reads the same in every tool).
struct AdapterConfig {
  /// The method.
  Method method = Method::tora;
  /// Number of tasks T; task ids are 0..T-1.
  int64_t num_tasks = 1;
  /// LoRA-family rank r (LoRA, LoRA-HPS, LoRA-STL, MultiLoRA, HydraLoRA, Terra).
  int64_t rank = 8;
  /// LoRA-family scaling numerator: their updates are multiplied by alpha / rank.
  double alpha = 8.0;
  /// ToRA rank of the output factor U1 [out, p] (the paper's NYUv2 value).
  int64_t p = 32;
  /// ToRA rank of the input factor U2 [in, q].
  int64_t q = 32;
  /// ToRA rank of the task factor U3 [T, v].
  int64_t v = 8;
  /// ToRA scaling s: task t uses W0 + s * dW[:, :, t] (reference 0.5).
  double scaling = 0.5;
  /// Dropout probability on the adapter branch's input, in training mode (reference 0.1).
  double dropout = 0.1;
  /// MultiLoRA: number of parallel LoRAs n.
  int64_t num_loras = 3;
  /// HydraLoRA: number of B heads mixed by the router.
  int64_t num_heads = 3;
  /// Terra: task coordinates c_t in K(t) = I + c_t Omega; empty means c_t = (t + 1) / T.
  std::vector<double> terra_coordinates = {};
  /// Terra: one Omega shared by every task instead of one per task.
  bool terra_shared_omega = false;
  /// Fused projections: the output rows split into size() equal blocks (q, k, v for SAM's
  /// qkv [3D, D]) and only the true ones are adapted, the others get 0. Empty: all rows.
  std::vector<bool> output_blocks = {};

  bool operator==(const AdapterConfig&) const = default;
};

/// Throws std::invalid_argument naming the first field out of range.
inline void validate(const AdapterConfig& config) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) {
      throw std::invalid_argument("invalid adapter config: " + what);
    }
  };
  require(config.num_tasks >= 1, "num_tasks must be >= 1, got " + std::to_string(config.num_tasks));
  require(config.rank >= 1, "rank must be >= 1, got " + std::to_string(config.rank));
  require(config.p >= 1 && config.q >= 1 && config.v >= 1,
          "ToRA ranks p, q, v must be >= 1, got " + std::to_string(config.p) + ", " +
              std::to_string(config.q) + ", " + std::to_string(config.v));
  require(config.dropout >= 0.0 && config.dropout < 1.0,
          "dropout must be in [0, 1), got " + std::to_string(config.dropout));
  require(config.num_loras >= 1, "num_loras must be >= 1, got " + std::to_string(config.num_loras));
  require(config.num_heads >= 1, "num_heads must be >= 1, got " + std::to_string(config.num_heads));
  require(
      config.terra_coordinates.empty() ||
          static_cast<int64_t>(config.terra_coordinates.size()) == config.num_tasks,
      "terra_coordinates must be empty or hold num_tasks = " + std::to_string(config.num_tasks) +
          " values, got " + std::to_string(config.terra_coordinates.size()));
  bool any_block = config.output_blocks.empty();
  for (bool block : config.output_blocks) {
    any_block = any_block || block;
  }
  require(any_block, "output_blocks must enable at least one block, got all " +
                         std::to_string(config.output_blocks.size()) + " off");
}

/// JSON form: {"method": "tora", "num_tasks": 3, ...}, keys named as the fields.
inline void to_json(nlohmann::json& json, const AdapterConfig& config) {
  json = nlohmann::json{{"method", std::string(to_string(config.method))},
                        {"num_tasks", config.num_tasks},
                        {"rank", config.rank},
                        {"alpha", config.alpha},
                        {"p", config.p},
                        {"q", config.q},
                        {"v", config.v},
                        {"scaling", config.scaling},
                        {"dropout", config.dropout},
                        {"num_loras", config.num_loras},
                        {"num_heads", config.num_heads},
                        {"terra_coordinates", config.terra_coordinates},
                        {"terra_shared_omega", config.terra_shared_omega},
                        {"output_blocks", config.output_blocks}};
}

/// Reads the JSON form; missing keys keep their defaults, unknown keys and wrong types are
/// errors (std::invalid_argument naming the key).
inline void from_json(const nlohmann::json& json, AdapterConfig& config) {
  if (!json.is_object()) {
    throw std::invalid_argument("expected an adapter config JSON object, got " +
                                std::string(json.type_name()));
  }
  static const std::set<std::string> known = {"method",
                                              "num_tasks",
                                              "rank",
                                              "alpha",
                                              "p",
                                              "q",
                                              "v",
                                              "scaling",
                                              "dropout",
                                              "num_loras",
                                              "num_heads",
                                              "terra_coordinates",
                                              "terra_shared_omega",
                                              "output_blocks"};
  for (const auto& [key, value] : json.items()) {
    if (known.count(key) == 0) {
      std::string names;
      for (const auto& name : known) {
        names += (names.empty() ? "" : ", ") + name;
      }
      throw std::invalid_argument("unknown adapter config key '" + key + "'; known keys: " + names);
    }
  }
  auto read = [&json](const char* key, auto& field) {
    if (!json.contains(key)) {
      return;
    }
    try {
      json.at(key).get_to(field);
    } catch (const nlohmann::json::exception& e) {
      throw std::invalid_argument(std::string("adapter config key '") + key +
                                  "' has the wrong type: " + e.what());
    }
  };
  AdapterConfig out;
  std::string method = std::string(to_string(out.method));
  read("method", method);
  out.method = method_from_string(method);
  read("num_tasks", out.num_tasks);
  read("rank", out.rank);
  read("alpha", out.alpha);
  read("p", out.p);
  read("q", out.q);
  read("v", out.v);
  read("scaling", out.scaling);
  read("dropout", out.dropout);
  read("num_loras", out.num_loras);
  read("num_heads", out.num_heads);
  read("terra_coordinates", out.terra_coordinates);
  read("terra_shared_omega", out.terra_shared_omega);
  read("output_blocks", out.output_blocks);
  validate(out);
  config = out;
}

}  // namespace tora
