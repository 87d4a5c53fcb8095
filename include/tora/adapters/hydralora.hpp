#pragma once

/// HydraLoRA: a shared A, N heads B_i and a per-token router,
/// dy = (alpha / r) sum_i w_i B_i A dropout(x) with w = softmax(R x). Not mergeable.

#include <tora/adapters/adapter.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace tora {

/// Options of HydraLoraImpl.
struct HydraLoraOptions {
  HydraLoraOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  /// Input features of the adapted layer.
  TORCH_ARG(int64_t, in_features);
  /// Output rows of the adapted layer.
  TORCH_ARG(int64_t, out_features);
  /// Tasks that may be routed through the layer (the router, not the task, picks heads); 1.
  TORCH_ARG(int64_t, num_tasks) = 1;
  /// Number of B heads N; 3.
  TORCH_ARG(int64_t, num_heads) = 3;
  /// Rank r; 8.
  TORCH_ARG(int64_t, rank) = 8;
  /// The update is multiplied by alpha / rank; 8.
  TORCH_ARG(double, alpha) = 8.0;
  /// Dropout probability on the adapter input (not on the router's); 0.1.
  TORCH_ARG(double, dropout) = 0.1;
  /// Output blocks adapted (empty: all rows); {}.
  TORCH_ARG(std::vector<bool>, output_blocks) = {};
};

/// HydraLoRA. A [r, in] Kaiming-uniform, B [N, adapted_rows, r] zero, router [N, in]
/// Kaiming-uniform (no bias). Its update depends on each token, so it cannot be merged:
/// MergeableAdapter<HydraLoraImpl> is false and delta_weight() throws.
class HydraLoraImpl : public AdapterBase {
 public:
  static constexpr Method kind = Method::hydralora;
  static constexpr bool is_mergeable = false;

  explicit HydraLoraImpl(HydraLoraOptions options_)
      : AdapterBase(options_.in_features(), options_.out_features(), options_.num_tasks(),
                    options_.output_blocks()),
        options(std::move(options_)) {
    reset();
  }

  /// Re-creates A, B and the router with their initial values.
  void reset() {
    TORCH_CHECK(options.rank() >= 1 && options.num_heads() >= 1,
                "HydraLoRA needs rank and num_heads >= 1, got ", options.rank(), " and ",
                options.num_heads());
    A = register_parameter("A", torch::empty({options.rank(), in_features()}));
    B = register_parameter("B",
                           torch::zeros({options.num_heads(), adapted_rows(), options.rank()}));
    router = register_parameter("router", torch::empty({options.num_heads(), in_features()}));
    detail::kaiming_uniform_rows_(A);
    detail::kaiming_uniform_rows_(router);
  }

  Method method() const override { return kind; }
  bool mergeable() const override { return false; }

  AdapterConfig config() const override {
    AdapterConfig config;
    config.method = kind;
    config.num_tasks = num_tasks();
    config.num_heads = options.num_heads();
    config.rank = options.rank();
    config.alpha = options.alpha();
    config.dropout = options.dropout();
    config.output_blocks = options.output_blocks();
    return config;
  }

  /// alpha / rank.
  double scale() const { return options.alpha() / static_cast<double>(options.rank()); }

  /// The router's mixing weights for x2 [N, in]: [N, heads], rows summing to 1.
  torch::Tensor mixing_weights(const torch::Tensor& x2) const {
    return torch::softmax(x2.mm(router.t()), -1);
  }

  void add_update(torch::Tensor& y2, const torch::Tensor& x2, const detail::TaskRows&) override {
    const int64_t n = x2.size(0);
    const int64_t heads = options.num_heads();
    const int64_t r = options.rank();
    auto h = input_dropout(x2, options.dropout()).mm(A.t());
    auto mixed = (mixing_weights(x2).unsqueeze(2) * h.unsqueeze(1)).reshape({n, heads * r});
    add_low_rank_(y2, mixed, B.permute({1, 0, 2}).reshape({adapted_rows(), heads * r}), scale());
  }

  torch::Tensor delta_weight(int64_t,
                             std::optional<torch::ScalarType> = std::nullopt) const override {
    TORCH_CHECK(false,
                "hydralora cannot be merged or turned into a weight: its router mixes the heads "
                "per token");
  }

  HydraLoraOptions options;
  /// [r, in]
  torch::Tensor A;
  /// [heads, adapted_rows, r]
  torch::Tensor B;
  /// [heads, in]
  torch::Tensor router;
};

TORCH_MODULE(HydraLora);

}  // namespace tora
