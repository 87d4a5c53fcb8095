#pragma once

/// MultiLoRA: n parallel LoRAs, each with a learnable per-output scale vector,
/// dW = (alpha / r) sum_i diag(s_i) B_i A_i; task-agnostic.

#include <tora/adapters/adapter.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace tora {

/// Options of MultiLoraImpl.
struct MultiLoraOptions {
  MultiLoraOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  /// Input features of the adapted layer.
  TORCH_ARG(int64_t, in_features);
  /// Output rows of the adapted layer.
  TORCH_ARG(int64_t, out_features);
  /// Tasks that may be routed through the layer (all share the update); 1.
  TORCH_ARG(int64_t, num_tasks) = 1;
  /// Number of parallel LoRAs n; 3.
  TORCH_ARG(int64_t, num_loras) = 3;
  /// Rank r of each LoRA; 8.
  TORCH_ARG(int64_t, rank) = 8;
  /// The update is multiplied by alpha / rank; 8.
  TORCH_ARG(double, alpha) = 8.0;
  /// Dropout probability on the adapter input; 0.1.
  TORCH_ARG(double, dropout) = 0.1;
  /// Output blocks adapted (empty: all rows); {}.
  TORCH_ARG(std::vector<bool>, output_blocks) = {};
};

/// MultiLoRA. A [n, r, in] and B [n, adapted_rows, r] Kaiming-uniform, scales
/// [n, adapted_rows] zero (so dW = 0 at first).
class MultiLoraImpl : public AdapterBase {
 public:
  static constexpr Method kind = Method::multilora;
  static constexpr bool is_mergeable = true;

  explicit MultiLoraImpl(MultiLoraOptions options_)
      : AdapterBase(options_.in_features(), options_.out_features(), options_.num_tasks(),
                    options_.output_blocks()),
        options(std::move(options_)) {
    reset();
  }

  /// Re-creates A, B and the scales with their initial values.
  void reset() {
    TORCH_CHECK(options.rank() >= 1 && options.num_loras() >= 1,
                "MultiLoRA needs rank and num_loras >= 1, got ", options.rank(), " and ",
                options.num_loras());
    const int64_t n = options.num_loras();
    A = register_parameter("A", torch::empty({n, options.rank(), in_features()}));
    B = register_parameter("B", torch::empty({n, adapted_rows(), options.rank()}));
    scales = register_parameter("scales", torch::zeros({n, adapted_rows()}));
    detail::kaiming_uniform_rows_(A);
    detail::kaiming_uniform_rows_(B);
  }

  Method method() const override { return kind; }

  AdapterConfig config() const override {
    AdapterConfig config;
    config.method = kind;
    config.num_tasks = num_tasks();
    config.num_loras = options.num_loras();
    config.rank = options.rank();
    config.alpha = options.alpha();
    config.dropout = options.dropout();
    config.output_blocks = options.output_blocks();
    return config;
  }

  /// alpha / rank.
  double scale() const { return options.alpha() / static_cast<double>(options.rank()); }

  void add_update(torch::Tensor& y2, const torch::Tensor& x2, const detail::TaskRows&) override {
    const auto x = input_dropout(x2, options.dropout());
    add_low_rank_(y2, x.mm(stacked_down().t()), stacked_up(), scale());
  }

  torch::Tensor delta_weight(int64_t task,
                             std::optional<torch::ScalarType> dtype = std::nullopt) const override {
    check_task(task);
    return as(stacked_up(), dtype).mm(as(stacked_down(), dtype)) * scale();
  }

  MultiLoraOptions options;
  /// [n, r, in]
  torch::Tensor A;
  /// [n, adapted_rows, r]
  torch::Tensor B;
  /// [n, adapted_rows], the diagonal of each diag(s_i)
  torch::Tensor scales;

 private:
  /// [A_1; ...; A_n] as [n r, in].
  torch::Tensor stacked_down() const {
    return A.reshape({options.num_loras() * options.rank(), in_features()});
  }
  /// [diag(s_1) B_1, ..., diag(s_n) B_n] as [adapted_rows, n r].
  torch::Tensor stacked_up() const {
    return (B * scales.unsqueeze(2))
        .permute({1, 0, 2})
        .reshape({adapted_rows(), options.num_loras() * options.rank()});
  }
};

TORCH_MODULE(MultiLora);

}  // namespace tora
