#pragma once

/// LoRA: y = W0 x + b + (alpha / r) B A dropout(x), one update for every task.

#include <tora/adapters/adapter.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace tora {

/// Options of LoraImpl (and LoraHpsImpl).
struct LoraOptions {
  LoraOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  /// Input features of the adapted layer.
  TORCH_ARG(int64_t, in_features);
  /// Output rows of the adapted layer.
  TORCH_ARG(int64_t, out_features);
  /// Tasks that may be routed through the layer (all share the update); 1.
  TORCH_ARG(int64_t, num_tasks) = 1;
  /// Rank r; 8.
  TORCH_ARG(int64_t, rank) = 8;
  /// The update is multiplied by alpha / rank; 8.
  TORCH_ARG(double, alpha) = 8.0;
  /// Dropout probability on the adapter input; 0.1.
  TORCH_ARG(double, dropout) = 0.1;
  /// Output blocks adapted (empty: all rows); {}.
  TORCH_ARG(std::vector<bool>, output_blocks) = {};
};

/// LoRA. A [r, in] Kaiming-uniform (a = sqrt 5), B [adapted_rows, r] zero, so dW = 0 at first.
class LoraImpl : public AdapterBase {
 public:
  static constexpr Method kind = Method::lora;
  static constexpr bool is_mergeable = true;

  explicit LoraImpl(LoraOptions options_)
      : AdapterBase(options_.in_features(), options_.out_features(), options_.num_tasks(),
                    options_.output_blocks()),
        options(std::move(options_)) {
    reset();
  }

  /// Re-creates A and B with their initial values.
  void reset() {
    TORCH_CHECK(options.rank() >= 1, "LoRA rank must be >= 1, got ", options.rank());
    A = register_parameter("A", torch::empty({options.rank(), in_features()}));
    B = register_parameter("B", torch::zeros({adapted_rows(), options.rank()}));
    detail::kaiming_uniform_rows_(A);
  }

  Method method() const override { return kind; }

  AdapterConfig config() const override {
    AdapterConfig config;
    config.method = method();
    config.num_tasks = num_tasks();
    config.rank = options.rank();
    config.alpha = options.alpha();
    config.dropout = options.dropout();
    config.output_blocks = options.output_blocks();
    return config;
  }

  /// alpha / rank.
  double scale() const { return options.alpha() / static_cast<double>(options.rank()); }

  void add_update(torch::Tensor& y2, const torch::Tensor& x2, const detail::TaskRows&) override {
    add_low_rank_(y2, input_dropout(x2, options.dropout()).mm(A.t()), B, scale());
  }

  torch::Tensor delta_weight(int64_t task,
                             std::optional<torch::ScalarType> dtype = std::nullopt) const override {
    check_task(task);
    return as(B, dtype).mm(as(A, dtype)) * scale();
  }

  LoraOptions options;
  /// [r, in]
  torch::Tensor A;
  /// [adapted_rows, r]
  torch::Tensor B;
};

TORCH_MODULE(Lora);

}  // namespace tora
