#pragma once

/// The configuration of an MTSAM experiment: the model (SAM checkpoint, size), the adapter (any
/// tora method), the data set and the trainer. Read from JSON (the `mtsam` command turns its
/// TOML files into this JSON); every key is optional and every unknown key is an error.

#include <mtsam/model.hpp>
#include <mtsam/train/options.hpp>
#include <tora/config.hpp>
#include <tora/regularizer.hpp>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace mtsam::train {

/// The model: which SAM, built for which input size, and from which checkpoint.
struct ModelConfig {
  /// SAM checkpoint (official `.pth`, or safetensors with official or Hugging Face names);
  /// empty: random weights (for `mtsam info` and tests).
  std::filesystem::path checkpoint;
  /// "vit_b", "vit_l", "vit_h", or "custom" (then `shape` gives every size).
  std::string preset = "vit_b";
  /// Side of the encoder's square input; images are resized so their long side fits it.
  int64_t image_size = 1024;
  /// For preset "custom": the fields of mtsam::SamShape (see <mtsam/presets.hpp>).
  nlohmann::json shape = nlohmann::json::object();
  /// Encoder blocks whose `qkv` is adapted; empty: all.
  std::vector<int64_t> adapted_blocks;
};

/// The data set.
struct DataConfig {
  /// "nyuv2", "cityscapes", "pascal_context", or "scenes" (the built-in generator).
  std::string dataset = "scenes";
  /// Folder of the data set on disk (not used by "scenes").
  std::filesystem::path root;
  /// Task names to train, in order; empty: every task of the data set.
  std::vector<std::string> tasks;
  /// Augment the training split (random scale-crop and flip).
  bool augment = true;
  /// CityScapes segmentation classes: 7 or 19.
  int64_t classes = 7;
  /// Scenes: samples in the training and test splits.
  int64_t train_count = 256;
  int64_t test_count = 64;
  /// Scenes (and PASCAL-Context): image height and width.
  int64_t height = 96;
  int64_t width = 128;
  /// Scenes: the seed that fixes every scene.
  uint64_t seed = 0;
  /// Scenes: render every scene once and keep it in memory.
  bool cache = true;
};

/// Everything an experiment needs.
struct ExperimentConfig {
  /// Name shown in reports.
  std::string name = "mtsam";
  ModelConfig model;
  /// The adapter; `num_tasks` is set from the tasks.
  tora::AdapterConfig adapter = default_adapter_config();
  /// Form of ToRA's orthogonal regulariser.
  tora::RegularizerForm regularizer = tora::RegularizerForm::paper;
  DataConfig data;
  TrainerOptions train;
  /// Results file of a baseline (e.g. LoRA-HPS) for Delta_b; empty: the run's first evaluation.
  std::filesystem::path baseline;
};

namespace detail {

inline void check_keys(const nlohmann::json& json, const std::set<std::string>& known,
                       const std::string& section) {
  if (!json.is_object()) {
    throw std::invalid_argument("[" + section + "] must be a table, got " + json.dump());
  }
  for (const auto& item : json.items()) {
    if (known.count(item.key()) == 0) {
      std::string list;
      for (const auto& key : known) {
        list += (list.empty() ? "" : ", ") + key;
      }
      throw std::invalid_argument("unknown key '" + item.key() + "' in [" + section +
                                  "]; known: " + list);
    }
  }
}

template <typename T>
void read_key(const nlohmann::json& json, const char* key, T& value, const std::string& section) {
  if (!json.contains(key)) {
    return;
  }
  try {
    value = json.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw std::invalid_argument("[" + section + "] " + key +
                                " has the wrong type: " + json.at(key).dump());
  }
}

inline void read_path(const nlohmann::json& json, const char* key, std::filesystem::path& value,
                      const std::string& section) {
  std::string text = value.string();
  read_key(json, key, text, section);
  value = text;
}

}  // namespace detail

/// The configuration as JSON, sections "model", "adapter", "data", "train".
inline nlohmann::json to_json(const ExperimentConfig& c) {
  nlohmann::json adapter = c.adapter;
  adapter["regularizer"] = c.regularizer == tora::RegularizerForm::paper ? "paper" : "reference";
  return {{"name", c.name},
          {"baseline", c.baseline.string()},
          {"model",
           {{"checkpoint", c.model.checkpoint.string()},
            {"preset", c.model.preset},
            {"image_size", c.model.image_size},
            {"shape", c.model.shape},
            {"adapted_blocks", c.model.adapted_blocks}}},
          {"adapter", adapter},
          {"data",
           {{"dataset", c.data.dataset},
            {"root", c.data.root.string()},
            {"tasks", c.data.tasks},
            {"augment", c.data.augment},
            {"classes", c.data.classes},
            {"train_count", c.data.train_count},
            {"test_count", c.data.test_count},
            {"height", c.data.height},
            {"width", c.data.width},
            {"seed", c.data.seed},
            {"cache", c.data.cache}}},
          {"train", to_json(c.train)}};
}

/// Reads a configuration; absent keys keep the defaults. The trainer's "device" may be "auto"
/// (the default here): CUDA when LibTorch sees a GPU, else the CPU. Throws
/// std::invalid_argument naming the key.
inline ExperimentConfig experiment_from_json(const nlohmann::json& json) {
  ExperimentConfig c;
  detail::check_keys(json, {"name", "baseline", "model", "adapter", "data", "train"}, "top level");
  detail::read_key(json, "name", c.name, "top level");
  detail::read_path(json, "baseline", c.baseline, "top level");

  const auto model = json.value("model", nlohmann::json::object());
  detail::check_keys(model, {"checkpoint", "preset", "image_size", "shape", "adapted_blocks"},
                     "model");
  detail::read_path(model, "checkpoint", c.model.checkpoint, "model");
  detail::read_key(model, "preset", c.model.preset, "model");
  detail::read_key(model, "image_size", c.model.image_size, "model");
  detail::read_key(model, "shape", c.model.shape, "model");
  detail::read_key(model, "adapted_blocks", c.model.adapted_blocks, "model");
  if (c.model.image_size < 16) {
    throw std::invalid_argument("[model] image_size must be at least 16, got " +
                                std::to_string(c.model.image_size));
  }

  auto adapter = nlohmann::json(c.adapter);
  const auto given = json.value("adapter", nlohmann::json::object());
  if (!given.is_object()) {
    throw std::invalid_argument("[adapter] must be a table, got " + given.dump());
  }
  for (const auto& item : given.items()) {
    adapter[item.key()] = item.value();
  }
  if (adapter.contains("regularizer")) {
    const auto form = adapter.at("regularizer");
    if (form != "paper" && form != "reference") {
      throw std::invalid_argument("[adapter] regularizer must be \"paper\" or \"reference\", got " +
                                  form.dump());
    }
    c.regularizer =
        form == "paper" ? tora::RegularizerForm::paper : tora::RegularizerForm::reference;
    adapter.erase("regularizer");
  }
  try {
    c.adapter = adapter.get<tora::AdapterConfig>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("[adapter] ") + e.what());
  }

  const auto data = json.value("data", nlohmann::json::object());
  detail::check_keys(data,
                     {"dataset", "root", "tasks", "augment", "classes", "train_count", "test_count",
                      "height", "width", "seed", "cache"},
                     "data");
  detail::read_key(data, "dataset", c.data.dataset, "data");
  detail::read_path(data, "root", c.data.root, "data");
  detail::read_key(data, "tasks", c.data.tasks, "data");
  detail::read_key(data, "augment", c.data.augment, "data");
  detail::read_key(data, "classes", c.data.classes, "data");
  detail::read_key(data, "train_count", c.data.train_count, "data");
  detail::read_key(data, "test_count", c.data.test_count, "data");
  detail::read_key(data, "height", c.data.height, "data");
  detail::read_key(data, "width", c.data.width, "data");
  detail::read_key(data, "seed", c.data.seed, "data");
  detail::read_key(data, "cache", c.data.cache, "data");

  auto train = json.value("train", nlohmann::json::object());
  if (train.is_object() && !train.contains("device")) {
    train["device"] = "auto";
  }
  if (train.is_object() && train.value("device", "") == "auto") {
    train["device"] = torch::cuda::is_available() ? "cuda" : "cpu";
  }
  try {
    c.train = trainer_options_from_json(train);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("[train] ") + e.what());
  }
  return c;
}

}  // namespace mtsam::train
