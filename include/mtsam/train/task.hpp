#pragma once

/// What the trainer works on, kept apart from any one model or data set: the model as a forward
/// function over all tasks plus its module, one head per task, and the data
/// splits as functions of an index and an epoch.

#include <mtsam/data/tasks.hpp>
#include <mtsam/losses/dense.hpp>
#include <mtsam/train/checkpoint.hpp>
#include <mtsam/train/records.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace mtsam::train {

/// A data split read by index. `get(index, epoch)` returns one sample; augmentation may depend
/// on the epoch and the index but on nothing else, so that any order of calls (and any thread)
/// gives the same sample.
struct DataSource {
  int64_t size = 0;
  std::function<data::TaskSample(int64_t index, int64_t epoch)> get;
};

/// Concept of the data sets of <mtsam/data.hpp>: `get(i)`, `size()` and a shared epoch counter.
template <typename D>
concept EpochDataset = requires(D& d, size_t i) {
  { d.get(i) } -> std::convertible_to<data::TaskSample>;
  { *d.size() } -> std::convertible_to<size_t>;
  d.epoch().set(int64_t{0});
};

/// Wraps a data set of <mtsam/data.hpp> (NYUv2, CityScapes, PASCAL-Context, scenes).
template <EpochDataset D>
DataSource data_source(D dataset) {
  auto shared = std::make_shared<D>(std::move(dataset));
  DataSource source;
  source.size = static_cast<int64_t>(*shared->size());
  source.get = [shared](int64_t index, int64_t epoch) {
    auto counter = shared->epoch();
    counter.set(epoch);
    return shared->get(static_cast<size_t>(index));
  };
  return source;
}

/// One task as the trainer sees it: its spec decides the metrics (<mtsam/metrics/task_meter.hpp>)
/// and, unless `loss` is set, the loss (<mtsam/losses/dense.hpp>).
struct TaskHead {
  /// Name, kind, channels, ignore value, loss kind and reported metrics.
  data::TaskSpec spec;
  /// Replaces the spec's loss: raw output `[B, C, H, W]` and targets `[B, ...]` -> scalar.
  std::function<torch::Tensor(const torch::Tensor& output, const torch::Tensor& target)> loss;

  /// The loss of a batch.
  torch::Tensor compute_loss(const torch::Tensor& output, const torch::Tensor& target) const {
    return loss ? loss(output, target) : losses::task_loss(spec, output, target);
  }
};

/// One head per spec, each with the spec's own loss.
inline std::vector<TaskHead> task_heads(const std::vector<data::TaskSpec>& specs) {
  std::vector<TaskHead> heads;
  for (const auto& spec : specs) {
    heads.push_back({spec, nullptr});
  }
  return heads;
}

/// The model as the trainer sees it.
struct TrainableModel {
  /// The module whose `requires_grad` parameters are trained and checkpointed.
  std::shared_ptr<torch::nn::Module> module;
  /// Images `[B, 3, H, W]` in [0, 1] -> each task's raw output `[B, C_t, H, W]`, in head order.
  std::function<std::vector<torch::Tensor>(const torch::Tensor& images)> forward;
  /// The regulariser added with weight lambda (ToRA's orthogonality); empty for none.
  std::function<torch::Tensor()> regularizer;
  /// Writes the trainable parts into a checkpoint folder; empty: `model.safetensors` with every
  /// trainable parameter.
  std::function<void(const std::filesystem::path& folder)> save;
  /// Reads what `save` wrote; empty: the counterpart of the default `save`.
  std::function<void(const std::filesystem::path& folder)> load;

  /// Saves through `save`, or the default.
  void save_to(const std::filesystem::path& folder) const {
    if (save) {
      save(folder);
    } else {
      save_trainable(*module, folder / "model.safetensors");
    }
  }

  /// Loads through `load`, or the default.
  void load_from(const std::filesystem::path& folder) const {
    if (load) {
      load(folder);
    } else {
      load_trainable(*module, folder / "model.safetensors");
    }
  }
};

/// Stacks the samples `indices` of `source` (for `epoch`) into one batch on `device`, with the
/// targets in the order of `heads`.
inline std::pair<torch::Tensor, std::vector<torch::Tensor>> load_batch(
    const DataSource& source, const std::vector<int64_t>& indices, int64_t epoch,
    const std::vector<TaskHead>& heads, torch::Device device) {
  std::vector<data::TaskSample> samples;
  samples.reserve(indices.size());
  for (int64_t index : indices) {
    samples.push_back(source.get(index, epoch));
  }
  auto batch = data::StackSamples().apply_batch(std::move(samples));
  std::vector<torch::Tensor> targets;
  for (const auto& head : heads) {
    targets.push_back(batch.target(head.spec.name).to(device));
  }
  return {batch.image.to(device), std::move(targets)};
}

}  // namespace mtsam::train
