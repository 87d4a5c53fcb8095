#pragma once

/// The adapted layers of a module tree, seen the same way whether they are tora::AdaptedLinear
/// modules or unmodified linear modules adapted by weight rebinding (see attach()).

#include <tora/adapted_linear.hpp>
#include <tora/adapters/adapter.hpp>
#include <tora/routing.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tora {

namespace detail {

/// Points the host's `weight` member at W0 + s dW_task for `routing` (W0 itself for base
/// routing, full fine-tuning or while merged). Only single-task routing can be expressed by
/// one weight.
inline void rebind(AdapterBase& adapter, HostBinding& binding, const Routing& routing) {
  auto host = binding.host.lock();
  TORCH_CHECK(host, "'", binding.name, "': the linear module this adapter was attached to is gone");
  if (binding.merged_task) {
    TORCH_CHECK(routing.kind() == Routing::Kind::single && routing.task() == *binding.merged_task,
                "'", binding.name, "' holds task ", *binding.merged_task,
                " merged into its weight and cannot be routed ", routing.describe(),
                "; unmerge first");
  }
  if (routing.kind() == Routing::Kind::base || adapter.trains_base() || binding.merged_task) {
    binding.weight_member() = binding.weight;
    binding.routing = routing;
    return;
  }
  TORCH_CHECK(routing.kind() == Routing::Kind::single, "'", binding.name,
              "' is an unmodified linear module adapted by weight rebinding, which expresses "
              "single-task routing only, got ",
              routing.describe(),
              "; declare the layer as tora::AdaptedLinear in the model's code for stacked or "
              "per-row routing, or run the tasks one at a time");
  routing.check_tasks(adapter.num_tasks(), binding.name);
  binding.weight_member() = binding.weight + adapter.full_delta_weight(routing.task());
  binding.routing = routing;
}

}  // namespace detail

/// One adapted layer of a module tree: an AdaptedLinear with an adapter, or an unmodified
/// linear module holding an adapter through weight rebinding.
class AdaptedLayer {
 public:
  AdaptedLayer(std::string name, std::shared_ptr<AdaptedLinearImpl> linear)
      : name_(std::move(name)), linear_(std::move(linear)), adapter_(linear_->adapter()) {}

  AdaptedLayer(std::string name, std::shared_ptr<AdapterBase> bound_adapter)
      : name_(std::move(name)), adapter_(std::move(bound_adapter)) {}

  /// Dotted name of the layer inside the module the list was made from.
  const std::string& name() const { return name_; }
  AdapterBase& adapter() const { return *adapter_; }
  const std::shared_ptr<AdapterBase>& adapter_ptr() const { return adapter_; }
  /// The AdaptedLinear, or nullptr for a layer adapted by weight rebinding.
  const std::shared_ptr<AdaptedLinearImpl>& linear() const { return linear_; }
  /// Whether the layer is an unmodified linear adapted by weight rebinding.
  bool rebinds_weight() const { return linear_ == nullptr; }

  /// The layer's registered weight parameter W0 [out, in].
  torch::Tensor weight() const { return linear_ ? linear_->weight : binding().weight; }
  /// The layer's registered bias [out] (undefined without one).
  torch::Tensor bias() const { return linear_ ? linear_->bias : binding().bias; }

  /// Throws if `routing` cannot be applied to this layer.
  void check_routing(const Routing& routing) const {
    routing.check_tasks(adapter_->num_tasks(), name_);
    const auto merged = merged_task();
    TORCH_CHECK(!merged || (routing.kind() == Routing::Kind::single && routing.task() == *merged),
                "'", name_, "' holds task ", merged.value_or(-1),
                " merged into its weight and cannot be routed ", routing.describe(),
                "; unmerge first");
    TORCH_CHECK(linear_ || routing.kind() == Routing::Kind::single ||
                    routing.kind() == Routing::Kind::base || adapter_->trains_base(),
                "'", name_,
                "' is an unmodified linear module adapted by weight rebinding, which expresses "
                "single-task routing only, got ",
                routing.describe(),
                "; declare the layer as tora::AdaptedLinear in the model's code for stacked or "
                "per-row routing");
  }

  void set_routing(const Routing& routing) {
    if (linear_) {
      linear_->set_routing(routing);
    } else {
      detail::rebind(*adapter_, binding(), routing);
    }
  }

  Routing routing() const { return linear_ ? linear_->routing() : binding().routing; }

  /// W0 + s dW_task [out, in], computed in float32, in the weight's dtype.
  torch::Tensor merged_weight(int64_t task) const {
    if (linear_) {
      return linear_->merged_weight(task);
    }
    const auto& b = binding();
    return detail::merged_weight(b.merged_task ? b.backup : b.weight, *adapter_, task, name_);
  }

  /// Folds task `task`'s update into the layer's weight parameter.
  void merge(int64_t task) {
    if (linear_) {
      linear_->merge(task);
      return;
    }
    auto& b = binding();
    auto merged = merged_weight(task);
    {
      torch::NoGradGuard no_grad;
      if (!b.merged_task) {
        b.backup = b.weight.detach().clone();
      }
      b.weight.copy_(merged);
    }
    b.merged_task = task;
    detail::rebind(*adapter_, b, Routing::single(task));
  }

  /// Restores the weight as it was before merge() (bit for bit).
  void unmerge() {
    if (linear_) {
      linear_->unmerge();
      return;
    }
    auto& b = binding();
    if (!b.merged_task) {
      return;
    }
    {
      torch::NoGradGuard no_grad;
      b.weight.copy_(b.backup);
    }
    b.backup = torch::Tensor();
    b.merged_task.reset();
    detail::rebind(*adapter_, b, b.routing);
  }

  std::optional<int64_t> merged_task() const {
    return linear_ ? linear_->merged_task() : binding().merged_task;
  }

 private:
  HostBinding& binding() const { return *adapter_->host_binding(); }

  std::string name_;
  std::shared_ptr<AdaptedLinearImpl> linear_;
  std::shared_ptr<AdapterBase> adapter_;
};

/// Every adapted layer of `module` (itself included), in module order.
inline std::vector<AdaptedLayer> adapted_layers(const torch::nn::Module& module) {
  std::vector<AdaptedLayer> layers;
  if (dynamic_cast<const AdaptedLinearImpl*>(&module) != nullptr) {
    auto self = std::dynamic_pointer_cast<AdaptedLinearImpl>(
        const_cast<torch::nn::Module&>(module).shared_from_this());
    if (self->adapter()) {
      layers.emplace_back(std::string(), self);
    }
  }
  for (const auto& item : module.named_modules(std::string(), false)) {
    if (auto linear = std::dynamic_pointer_cast<AdaptedLinearImpl>(item.value())) {
      if (linear->adapter()) {
        layers.emplace_back(item.key(), linear);
      }
      continue;
    }
    auto adapter = std::dynamic_pointer_cast<AdapterBase>(item.value());
    if (adapter && adapter->host_binding()) {
      const std::string& key = item.key();
      const std::string suffix = "adapter";
      std::string host = key.size() > suffix.size() ? key.substr(0, key.size() - suffix.size() - 1)
                                                    : std::string();
      layers.emplace_back(host, adapter);
    }
  }
  return layers;
}

}  // namespace tora
