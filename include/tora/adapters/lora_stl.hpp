#pragma once

/// LoRA-STL: one LoRA per task, dW_t = (alpha / r) B_t A_t.

#include <tora/adapters/adapter.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace tora {

/// Options of LoraStlImpl.
struct LoraStlOptions {
  LoraStlOptions(int64_t in_features, int64_t out_features, int64_t num_tasks)
      : in_features_(in_features), out_features_(out_features), num_tasks_(num_tasks) {}
  /// Input features of the adapted layer.
  TORCH_ARG(int64_t, in_features);
  /// Output rows of the adapted layer.
  TORCH_ARG(int64_t, out_features);
  /// Number of tasks T, one LoRA each.
  TORCH_ARG(int64_t, num_tasks);
  /// Rank r of every task's LoRA; 8.
  TORCH_ARG(int64_t, rank) = 8;
  /// Each update is multiplied by alpha / rank; 8.
  TORCH_ARG(double, alpha) = 8.0;
  /// Dropout probability on the adapter input; 0.1.
  TORCH_ARG(double, dropout) = 0.1;
  /// Output blocks adapted (empty: all rows); {}.
  TORCH_ARG(std::vector<bool>, output_blocks) = {};
};

/// LoRA-STL. A [T, r, in] Kaiming-uniform per task, B [T, adapted_rows, r] zero.
class LoraStlImpl : public AdapterBase {
 public:
  static constexpr Method kind = Method::lora_stl;
  static constexpr bool is_mergeable = true;

  explicit LoraStlImpl(LoraStlOptions options_)
      : AdapterBase(options_.in_features(), options_.out_features(), options_.num_tasks(),
                    options_.output_blocks()),
        options(std::move(options_)) {
    reset();
  }

  /// Re-creates A and B with their initial values.
  void reset() {
    TORCH_CHECK(options.rank() >= 1, "LoRA-STL rank must be >= 1, got ", options.rank());
    A = register_parameter("A", torch::empty({num_tasks(), options.rank(), in_features()}));
    B = register_parameter("B", torch::zeros({num_tasks(), adapted_rows(), options.rank()}));
    detail::kaiming_uniform_rows_(A);
  }

  Method method() const override { return kind; }

  AdapterConfig config() const override {
    AdapterConfig config;
    config.method = kind;
    config.num_tasks = num_tasks();
    config.rank = options.rank();
    config.alpha = options.alpha();
    config.dropout = options.dropout();
    config.output_blocks = options.output_blocks();
    return config;
  }

  /// alpha / rank.
  double scale() const { return options.alpha() / static_cast<double>(options.rank()); }

  void add_update(torch::Tensor& y2, const torch::Tensor& x2,
                  const detail::TaskRows& rows) override {
    const auto x = input_dropout(x2, options.dropout());
    const int64_t r = options.rank();
    switch (rows.kind) {
      case Routing::Kind::base:
        return;
      case Routing::Kind::single:
        add_low_rank_(y2, x.mm(A[rows.task].t()), B[rows.task], scale());
        return;
      case Routing::Kind::stacked: {
        auto a = rows.group_tasks.defined() ? A.index_select(0, rows.group_tasks) : A;
        auto b = rows.group_tasks.defined() ? B.index_select(0, rows.group_tasks) : B;
        auto h = torch::bmm(x.reshape({rows.groups, rows.group_rows, in_features()}),
                            a.transpose(1, 2)) *
                 scale();
        add_dense_(y2, torch::bmm(h, b.transpose(1, 2)).reshape({x.size(0), adapted_rows()}));
        return;
      }
      case Routing::Kind::per_row: {
        // Every task's hidden state, with the other tasks' blocks zeroed per row.
        const int64_t n = x.size(0);
        auto h = x.mm(A.reshape({num_tasks() * r, in_features()}).t()).view({n, num_tasks(), r});
        auto keep = torch::one_hot(rows.row_tasks, num_tasks()).to(h.scalar_type());
        h = (h * keep.unsqueeze(2)).view({n, num_tasks() * r});
        add_low_rank_(y2, h, B.permute({1, 0, 2}).reshape({adapted_rows(), num_tasks() * r}),
                      scale());
        return;
      }
    }
  }

  torch::Tensor delta_weight(int64_t task,
                             std::optional<torch::ScalarType> dtype = std::nullopt) const override {
    check_task(task);
    return as(B[task], dtype).mm(as(A[task], dtype)) * scale();
  }

  LoraStlOptions options;
  /// [T, r, in]
  torch::Tensor A;
  /// [T, adapted_rows, r]
  torch::Tensor B;
};

TORCH_MODULE(LoraStl);

}  // namespace tora
