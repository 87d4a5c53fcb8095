#pragma once

/// Full fine-tuning as an "adapter": no parameters of its own; the adapted layer's weight and
/// bias are trained directly (shared by every task).

#include <tora/adapters/adapter.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <optional>

namespace tora {

/// Options of FullImpl.
struct FullOptions {
  FullOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  /// Input features of the adapted layer.
  TORCH_ARG(int64_t, in_features);
  /// Output rows of the adapted layer.
  TORCH_ARG(int64_t, out_features);
  /// Tasks that may be routed through the layer (all share the weight); 1.
  TORCH_ARG(int64_t, num_tasks) = 1;
};

/// Full fine-tuning: trains_base() is true, the update is always zero (the trained weight is
/// the layer's own), and merging is a no-op.
class FullImpl : public AdapterBase {
 public:
  static constexpr Method kind = Method::full;
  static constexpr bool is_mergeable = true;

  explicit FullImpl(FullOptions options_)
      : AdapterBase(options_.in_features(), options_.out_features(), options_.num_tasks(), {}),
        options(options_) {}

  void reset() {}

  Method method() const override { return kind; }
  bool trains_base() const override { return true; }

  AdapterConfig config() const override {
    AdapterConfig config;
    config.method = kind;
    config.num_tasks = num_tasks();
    return config;
  }

  void add_update(torch::Tensor&, const torch::Tensor&, const detail::TaskRows&) override {}

  /// Zero [out, in] (float32 unless `dtype` says otherwise).
  torch::Tensor delta_weight(int64_t task,
                             std::optional<torch::ScalarType> dtype = std::nullopt) const override {
    check_task(task);
    return torch::zeros({adapted_rows(), in_features()}, dtype.value_or(torch::kFloat));
  }

  FullOptions options;
};

TORCH_MODULE(Full);

}  // namespace tora
