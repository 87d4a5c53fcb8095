#pragma once

/// A linear layer that can carry an adapter: the building block for models written with tora
/// in mind (MTSAM's attention qkv).

#include <tora/adapters/adapter.hpp>
#include <tora/adapters/factory.hpp>
#include <tora/concepts.hpp>
#include <tora/config.hpp>
#include <tora/routing.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>

namespace tora {

/// A frozen base linear plus an optional adapter.
///
/// Its own parameters are `weight` [out, in] and `bias` [out], exactly torch::nn::Linear's keys,
/// so the state dict of an unadapted model is unchanged; the adapter is the child `adapter`.
/// `forward(x)` [..., in] -> [..., out] adds the adapter's update for the current routing.
///
///     tora::AdaptedLinear qkv(768, 2304);
///     qkv->set_adapter(tora::make_adapter(config, 768, 2304));
///     qkv->set_routing(tora::Routing::stacked());
class AdaptedLinearImpl : public torch::nn::Module {
 public:
  AdaptedLinearImpl(int64_t in_features, int64_t out_features)
      : AdaptedLinearImpl(torch::nn::LinearOptions(in_features, out_features)) {}

  explicit AdaptedLinearImpl(torch::nn::LinearOptions options_) : options(std::move(options_)) {
    reset();
  }

  /// Wraps an existing linear module: its weight and bias tensors become this layer's own
  /// (shared, not copied).
  template <LinearModule L>
  explicit AdaptedLinearImpl(L& linear)
      : options(torch::nn::LinearOptions(linear.weight.size(1), linear.weight.size(0))
                    .bias(linear.bias.defined())) {
    weight = register_parameter("weight", linear.weight, linear.weight.requires_grad());
    if (linear.bias.defined()) {
      bias = register_parameter("bias", linear.bias, linear.bias.requires_grad());
    }
  }

  /// Wraps the module a holder such as torch::nn::Linear points to.
  template <class Holder>
  requires LinearModule<typename Holder::ContainedType>
  explicit AdaptedLinearImpl(const Holder& holder) : AdaptedLinearImpl(*holder.ptr()) {}

  /// Creates weight and bias as torch::nn::Linear does (Kaiming-uniform, a = sqrt 5).
  void reset() {
    weight =
        register_parameter("weight", torch::empty({options.out_features(), options.in_features()}));
    detail::kaiming_uniform_rows_(weight);
    if (options.bias()) {
      bias = register_parameter("bias", torch::empty({options.out_features()}));
      torch::NoGradGuard no_grad;
      const double bound = 1.0 / std::sqrt(static_cast<double>(options.in_features()));
      bias.uniform_(-bound, bound);
    } else {
      bias = torch::Tensor();
    }
  }

  /// "AdaptedLinear [out, in] with a tora adapter", to tell layers apart in error messages.
  std::string label() const {
    std::string text = "AdaptedLinear [" + std::to_string(options.out_features()) + ", " +
                       std::to_string(options.in_features()) + "]";
    if (adapter_) {
      text += " with a " + std::string(to_string(adapter_->method())) + " adapter";
    }
    return text;
  }

  /// [..., in] -> [..., out].
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t in = options.in_features();
    TORCH_CHECK(x.dim() >= 1 && x.size(-1) == in, "AdaptedLinear expects input [..., ", in,
                "], got ", x.sizes());
    auto x2 = x.reshape({-1, in});
    auto y2 = torch::linear(x2, weight, bias);
    if (merged_task_) {
      // The weight is W0 + s dW_t: only task t's routing can be served, not even the base.
      TORCH_CHECK(routing_.kind() == Routing::Kind::single && routing_.task() == *merged_task_,
                  label(), " holds task ", *merged_task_, " merged into its weight but is ",
                  "routed ", routing_.describe(), "; unmerge() first");
    } else if (adapter_ && routing_.kind() != Routing::Kind::base) {
      adapter_->add_update(y2, x2, detail::resolve(routing_, x, adapter_->num_tasks(), label()));
    }
    auto sizes = x.sizes().vec();
    sizes.back() = options.out_features();
    return y2.view(sizes);
  }

  /// Installs `adapter` as the child `adapter` (replacing any), moved to the weight's device
  /// and dtype. The base weight and bias are frozen unless the adapter trains them (full).
  template <class A>
  requires std::derived_from<A, AdapterBase> std::shared_ptr<A> set_adapter(
      std::shared_ptr<A> adapter) {
    TORCH_CHECK(adapter, "set_adapter: the adapter is null");
    TORCH_CHECK(!merged_task_, "set_adapter: ", label(), " holds task ", merged_task_.value_or(0),
                " merged into its weight; unmerge() first");
    TORCH_CHECK(adapter->in_features() == options.in_features() &&
                    adapter->out_features() == options.out_features(),
                "set_adapter: the adapter is for [", adapter->out_features(), ", ",
                adapter->in_features(), "] but this layer is [", options.out_features(), ", ",
                options.in_features(), "]");
    adapter->to(weight.device(), weight.scalar_type());
    auto base = std::static_pointer_cast<AdapterBase>(adapter);
    adapter_ = adapter_ ? replace_module("adapter", base) : register_module("adapter", base);
    weight.requires_grad_(adapter->trains_base());
    if (bias.defined()) {
      bias.requires_grad_(adapter->trains_base());
    }
    return adapter;
  }

  /// Builds and installs the adapter `config` describes.
  std::shared_ptr<AdapterBase> set_adapter(const AdapterConfig& config) {
    return set_adapter(make_adapter(config, options.in_features(), options.out_features()));
  }

  /// The adapter, or nullptr.
  std::shared_ptr<AdapterBase> adapter() const { return adapter_; }

  /// The adapter as `A`, or nullptr when there is none or it is another type.
  template <class A>
  std::shared_ptr<A> adapter_as() const {
    return std::dynamic_pointer_cast<A>(adapter_);
  }

  /// Routing used by forward (see Routing); checked against the adapter's tasks.
  void set_routing(Routing routing) {
    if (adapter_) {
      routing.check_tasks(adapter_->num_tasks(), label());
    }
    routing_ = std::move(routing);
  }
  const Routing& routing() const { return routing_; }

  /// W0 + s dW_task [out, in], computed in float32 and cast to the weight's dtype.
  torch::Tensor merged_weight(int64_t task) const {
    TORCH_CHECK(adapter_, "merged_weight: this AdaptedLinear has no adapter");
    const auto& base = merged_task_ ? backup_ : weight;
    return detail::merged_weight(base, *adapter_, task, "AdaptedLinear");
  }

  /// Folds task `task`'s update into the weight (kept for unmerge()); forward then runs the
  /// base path only and must be routed single(task).
  void merge(int64_t task) {
    auto merged = merged_weight(task);
    torch::NoGradGuard no_grad;
    if (!merged_task_) {
      backup_ = weight.detach().clone();
    }
    weight.copy_(merged);
    merged_task_ = task;
  }

  /// Restores the weight as it was before merge() (bit for bit).
  void unmerge() {
    if (!merged_task_) {
      return;
    }
    torch::NoGradGuard no_grad;
    weight.copy_(backup_);
    backup_ = torch::Tensor();
    merged_task_.reset();
  }

  /// The merged task, if any.
  std::optional<int64_t> merged_task() const { return merged_task_; }

  void pretty_print(std::ostream& stream) const override {
    stream << "tora::AdaptedLinear(in_features=" << options.in_features()
           << ", out_features=" << options.out_features() << ", bias=" << std::boolalpha
           << bias.defined()
           << ", adapter=" << (adapter_ ? std::string(to_string(adapter_->method())) : "none")
           << ")";
  }

  torch::nn::LinearOptions options;
  /// [out, in]
  torch::Tensor weight;
  /// [out], undefined without bias
  torch::Tensor bias;

 private:
  std::shared_ptr<AdapterBase> adapter_;
  Routing routing_;
  std::optional<int64_t> merged_task_;
  torch::Tensor backup_;
};

TORCH_MODULE(AdaptedLinear);

}  // namespace tora
