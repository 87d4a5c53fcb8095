#pragma once

/// From an ExperimentConfig to what the trainer runs: the tasks of the data set, MTSAM built
/// (and filled from the SAM checkpoint) with the chosen adapter, the model as the trainer sees
/// it (pre- and post-processing around MTSAM's forward, the ToRA regulariser, checkpoint
/// folders), and the data splits.

#include <mtsam/data.hpp>
#include <mtsam/import.hpp>
#include <mtsam/model.hpp>
#include <mtsam/processing.hpp>
#include <mtsam/train/checkpoint.hpp>
#include <mtsam/train/config.hpp>
#include <mtsam/train/task.hpp>
#include <tora/io/adapter_io.hpp>
#include <tora/regularizer.hpp>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace mtsam::train {

/// The tasks of the configured data set (all, or those `data.tasks` names, in that order).
inline std::vector<data::TaskSpec> experiment_tasks(const DataConfig& config) {
  std::vector<data::TaskSpec> all;
  if (config.dataset == "nyuv2") {
    all = data::nyuv2_tasks();
  } else if (config.dataset == "cityscapes") {
    all = data::cityscapes_tasks(config.classes);
  } else if (config.dataset == "pascal_context") {
    all = data::pascal_context_tasks();
  } else if (config.dataset == "scenes") {
    all = data::scene_tasks();
  } else {
    throw std::invalid_argument(
        "[data] dataset must be nyuv2, cityscapes, pascal_context or "
        "scenes, got '" +
        config.dataset + "'");
  }
  if (config.tasks.empty()) {
    return all;
  }
  std::vector<data::TaskSpec> chosen;
  for (const auto& name : config.tasks) {
    bool found = false;
    for (const auto& spec : all) {
      if (spec.name == name) {
        chosen.push_back(spec);
        found = true;
      }
    }
    if (!found) {
      std::string known;
      for (const auto& spec : all) {
        known += (known.empty() ? "" : ", ") + spec.name;
      }
      throw std::invalid_argument("[data] tasks: " + config.dataset + " has no task '" + name +
                                  "' (it has " + known + ")");
    }
  }
  return chosen;
}

/// The model tasks of data set tasks: classes for segmentation, regression for depth, unit
/// vectors for normals, binary for saliency.
inline std::vector<Task> model_tasks(const std::vector<data::TaskSpec>& specs) {
  std::vector<Task> tasks;
  for (const auto& spec : specs) {
    TaskKind kind = TaskKind::classes;
    switch (spec.kind) {
      case data::TaskKind::segmentation:
        kind = TaskKind::classes;
        break;
      case data::TaskKind::depth:
        kind = TaskKind::regression;
        break;
      case data::TaskKind::normals:
        kind = TaskKind::unit_vector;
        break;
      case data::TaskKind::saliency:
        kind = TaskKind::binary;
        break;
    }
    tasks.push_back({spec.name, spec.channels, kind});
  }
  return tasks;
}

/// The SAM shape of the configuration.
inline SamShape experiment_shape(const ModelConfig& config) {
  if (config.preset == "custom") {
    auto shape = shape_from_json(config.shape);
    if (config.shape.contains("img_size") && shape.img_size != config.image_size) {
      throw std::invalid_argument("[model] shape.img_size " + std::to_string(shape.img_size) +
                                  " differs from image_size " + std::to_string(config.image_size) +
                                  "; give one of them");
    }
    shape.img_size = config.image_size;
    return shape;
  }
  return preset_shape(preset_from_string(config.preset), config.image_size);
}

/// MTSAM for the configuration and tasks; filled from the SAM checkpoint unless
/// `load_checkpoint` is false or none is configured (then random weights).
inline MTSAM build_model(const ExperimentConfig& config, const std::vector<data::TaskSpec>& specs,
                         bool load_checkpoint = true) {
  MTSAMOptions options(experiment_shape(config.model), model_tasks(specs));
  options.adapter(config.adapter).adapted_blocks(config.model.adapted_blocks);
  if (load_checkpoint && !config.model.checkpoint.empty()) {
    return mtsam_from_sam_checkpoint(config.model.checkpoint, std::move(options));
  }
  return MTSAM(std::move(options));
}

/// The file of the trainable parameters that are not adapters, inside a checkpoint folder.
inline constexpr const char* trainable_file = "trainable.safetensors";

/// Writes MTSAM's trainable parts into `folder`: the adapters through tora
/// (`adapters.safetensors`, `adapter_config.json`, with the tasks in its "extra"), and the
/// other trainable parameters (LayerNorms, task embeddings, decoders) in `trainable.safetensors`.
inline void save_mtsam_checkpoint(const MTSAMImpl& model, const std::filesystem::path& folder) {
  nlohmann::json tasks = nlohmann::json::array();
  for (const auto& task : model.options.tasks()) {
    tasks.push_back({{"name", task.name},
                     {"channels", task.channels},
                     {"kind", std::string(to_string(task.kind))}});
  }
  tora::save_adapters(model, folder, {{"tasks", tasks}});
  tora::io::NamedTensors rest;
  for (const auto& [name, tensor] : named_trainable(model)) {
    if (name.find(".adapter.") == std::string::npos) {
      rest.emplace_back(name, tensor.detach().to(torch::kCPU));
    }
  }
  tora::io::write_safetensors(folder / trainable_file, rest);
}

/// Reads what save_mtsam_checkpoint wrote into a model of the same configuration.
inline void load_mtsam_checkpoint(MTSAMImpl& model, const std::filesystem::path& folder) {
  if (!std::filesystem::is_regular_file(folder / trainable_file)) {
    throw std::runtime_error("'" + folder.string() +
                             "' is not an MTSAM checkpoint folder: it has no " + trainable_file);
  }
  tora::load_adapters(model, folder);
  load_trainable(model, folder / trainable_file);
}

/// MTSAM as the trainer sees it: images of any size in, each task's output at that size out
/// (resize, pad, model, map back as the reference does), the regulariser for ToRA, and
/// checkpoint folders through save_mtsam_checkpoint.
inline TrainableModel trainable_model(MTSAM model, tora::RegularizerForm form) {
  TrainableModel trainable;
  trainable.module = model.ptr();
  const int64_t size = model->options.shape().img_size;
  trainable.forward = [model, size](const torch::Tensor& images) mutable {
    const auto prepared = preprocess(images, PreprocessOptions{size});
    auto outputs = model->forward(prepared.images);
    for (auto& output : outputs) {
      output = postprocess(output, size, prepared);
    }
    return outputs;
  };
  if (model->options.adapter().method == tora::Method::tora) {
    trainable.regularizer = [model, form]() { return tora::orthogonal_regularizer(*model, form); };
  }
  trainable.save = [model](const std::filesystem::path& folder) {
    save_mtsam_checkpoint(*model, folder);
  };
  trainable.load = [model](const std::filesystem::path& folder) mutable {
    load_mtsam_checkpoint(*model, folder);
  };
  return trainable;
}

/// The training and test splits of the configured data set (training augmented when asked,
/// with the trainer's seed).
inline std::pair<DataSource, DataSource> experiment_data(const ExperimentConfig& config,
                                                         const std::vector<data::TaskSpec>& specs) {
  const auto& d = config.data;
  const auto augmentation = data::AugmentOptions().seed(config.train.seed());
  if (d.dataset == "scenes") {
    const auto options =
        data::SceneOptions().height(d.height).width(d.width).seed(d.seed).cache(d.cache).tasks(
            specs);
    auto train = options;
    train.count(d.train_count).split("train").augment(d.augment).augmentation(augmentation);
    auto test = options;
    test.count(d.test_count).split("val");
    return {data_source(data::SceneDataset(train)), data_source(data::SceneDataset(test))};
  }
  if (d.root.empty()) {
    throw std::invalid_argument("[data] root must name the " + d.dataset + " folder");
  }
  if (d.dataset == "nyuv2") {
    const auto options = data::NyuV2Options(d.root).tasks(specs);
    auto train = options;
    train.split("train").augment(d.augment).augmentation(augmentation);
    auto test = options;
    test.split("val");
    return {data_source(data::NyuV2Dataset(train)), data_source(data::NyuV2Dataset(test))};
  }
  if (d.dataset == "cityscapes") {
    const auto options = data::CityScapesOptions(d.root).tasks(specs);
    auto train = options;
    train.split("train").augment(d.augment).augmentation(augmentation);
    auto test = options;
    test.split("val");
    return {data_source(data::CityScapesDataset(train)),
            data_source(data::CityScapesDataset(test))};
  }
  const auto options =
      data::PascalContextOptions(d.root).height(d.height).width(d.width).tasks(specs);
  auto train = options;
  train.split("train").augment(d.augment).augmentation(
      data::AugmentOptions(augmentation).bilinear_normals(false));
  auto test = options;
  test.split("val");
  return {data_source(data::PascalContextDataset(train)),
          data_source(data::PascalContextDataset(test))};
}

}  // namespace mtsam::train
