#pragma once

/// Folding a task's update into the weights of a whole module tree, and back.

#include <tora/concepts.hpp>
#include <tora/layers.hpp>

#include <torch/torch.h>

#include <cstdint>

namespace tora {

/// Task `task`'s scaled update [adapted_rows, in] of one adapter, in float32, detached.
/// Only for adapters whose update is a fixed matrix: HydraLoraImpl fails this constraint at
/// compile time.
template <MergeableAdapter A>
torch::Tensor task_delta(const A& adapter, int64_t task) {
  torch::NoGradGuard no_grad;
  return adapter.delta_weight(task, torch::kFloat);
}

/// Merges task `task` into every adapted layer of `module` (W0 <- W0 + s dW_task, computed in
/// float32); forwards must then be routed single(task). Every layer is checked (mergeable,
/// finite update) before any weight changes.
inline void merge(torch::nn::Module& module, int64_t task) {
  auto layers = adapted_layers(module);
  for (const auto& layer : layers) {
    (void)layer.merged_weight(task);
  }
  for (auto& layer : layers) {
    layer.merge(task);
  }
}

/// Restores the weights of every merged layer of `module` bit for bit.
inline void unmerge(torch::nn::Module& module) {
  for (auto& layer : adapted_layers(module)) {
    layer.unmerge();
  }
}

}  // namespace tora
