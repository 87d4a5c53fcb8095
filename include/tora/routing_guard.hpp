#pragma once

/// Setting the task routing of every adapted layer of a module tree.

#include <tora/layers.hpp>
#include <tora/routing.hpp>

#include <torch/torch.h>

#include <utility>
#include <vector>

namespace tora {

/// Routes every adapted layer of `module` by `routing`. All layers are checked before any is
/// changed. Layers adapted by weight rebinding rebuild their weight here, so call this (or
/// make a RoutingGuard) before every forward of such a model, and again after moving it.
inline void set_routing(torch::nn::Module& module, const Routing& routing) {
  auto layers = adapted_layers(module);
  for (const auto& layer : layers) {
    layer.check_routing(routing);
  }
  for (auto& layer : layers) {
    layer.set_routing(routing);
  }
}

/// Routes every adapted layer of a module tree for its lifetime, then restores each layer's
/// previous routing.
///
///     for (int64_t task = 0; task < 3; ++task) {
///       tora::RoutingGuard guard(*model, tora::Routing::single(task));
///       auto loss = criterion(model->forward(x), targets[task]);
///     }
class RoutingGuard {
 public:
  RoutingGuard(torch::nn::Module& module, const Routing& routing) {
    auto layers = adapted_layers(module);
    for (const auto& layer : layers) {
      layer.check_routing(routing);
    }
    for (auto& layer : layers) {
      previous_.emplace_back(layer, layer.routing());
      layer.set_routing(routing);
    }
  }

  RoutingGuard(const RoutingGuard&) = delete;
  RoutingGuard& operator=(const RoutingGuard&) = delete;

  ~RoutingGuard() {
    for (auto& [layer, routing] : previous_) {
      try {
        layer.set_routing(routing);
      } catch (const std::exception&) {
        // A layer whose host module is gone keeps nothing to restore.
      }
    }
  }

 private:
  std::vector<std::pair<AdaptedLayer, Routing>> previous_;
};

}  // namespace tora
