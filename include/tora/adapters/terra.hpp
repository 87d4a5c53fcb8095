#pragma once

/// Terra: dW(t) = (alpha / r) B K(t)' A with K(t) = I + c_t Omega, an r x r matrix per task.

#include <tora/adapters/adapter.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace tora {

/// Options of TerraImpl.
struct TerraOptions {
  TerraOptions(int64_t in_features, int64_t out_features, int64_t num_tasks)
      : in_features_(in_features), out_features_(out_features), num_tasks_(num_tasks) {}
  /// Input features of the adapted layer.
  TORCH_ARG(int64_t, in_features);
  /// Output rows of the adapted layer.
  TORCH_ARG(int64_t, out_features);
  /// Number of tasks T.
  TORCH_ARG(int64_t, num_tasks);
  /// Rank r; 8.
  TORCH_ARG(int64_t, rank) = 8;
  /// The update is multiplied by alpha / rank (1 with the defaults: the bare formula); 8.
  TORCH_ARG(double, alpha) = 8.0;
  /// Dropout probability on the adapter input; 0.1.
  TORCH_ARG(double, dropout) = 0.1;
  /// Task coordinates c_t (empty: c_t = (t + 1) / T); {}.
  TORCH_ARG(std::vector<double>, coordinates) = {};
  /// One Omega shared by every task instead of one per task; false.
  TORCH_ARG(bool, shared_omega) = false;
  /// Output blocks adapted (empty: all rows); {}.
  TORCH_ARG(std::vector<bool>, output_blocks) = {};
};

/// Terra. A [r, in] ~ N(0, 1/r^2), B [adapted_rows, r] zero, Omega [T or 1, r, r] zero,
/// `coordinates` [T] a buffer.
class TerraImpl : public AdapterBase {
 public:
  static constexpr Method kind = Method::terra;
  static constexpr bool is_mergeable = true;

  explicit TerraImpl(TerraOptions options_)
      : AdapterBase(options_.in_features(), options_.out_features(), options_.num_tasks(),
                    options_.output_blocks()),
        options(std::move(options_)) {
    reset();
  }

  /// Re-creates A, B, Omega and the coordinates with their initial values.
  void reset() {
    const int64_t r = options.rank();
    TORCH_CHECK(r >= 1, "Terra rank must be >= 1, got ", r);
    std::vector<double> c = options.coordinates();
    if (c.empty()) {
      for (int64_t t = 0; t < num_tasks(); ++t) {
        c.push_back(static_cast<double>(t + 1) / static_cast<double>(num_tasks()));
      }
    }
    TORCH_CHECK(static_cast<int64_t>(c.size()) == num_tasks(), "Terra expects ", num_tasks(),
                " task coordinates, got ", c.size());
    A = register_parameter("A", torch::randn({r, in_features()}) / static_cast<double>(r));
    B = register_parameter("B", torch::zeros({adapted_rows(), r}));
    Omega =
        register_parameter("Omega", torch::zeros({options.shared_omega() ? 1 : num_tasks(), r, r}));
    coordinates = register_buffer("coordinates", torch::tensor(c, torch::kFloat));
  }

  Method method() const override { return kind; }

  AdapterConfig config() const override {
    AdapterConfig config;
    config.method = kind;
    config.num_tasks = num_tasks();
    config.rank = options.rank();
    config.alpha = options.alpha();
    config.dropout = options.dropout();
    config.terra_coordinates = options.coordinates();
    config.terra_shared_omega = options.shared_omega();
    config.output_blocks = options.output_blocks();
    return config;
  }

  /// alpha / rank.
  double scale() const { return options.alpha() / static_cast<double>(options.rank()); }

  /// K(t) for every task: [T, r, r].
  torch::Tensor task_matrices() const {
    auto eye = torch::eye(options.rank(), Omega.options());
    return eye + coordinates.to(Omega.scalar_type()).view({-1, 1, 1}) * Omega;
  }

  void add_update(torch::Tensor& y2, const torch::Tensor& x2,
                  const detail::TaskRows& rows) override {
    const int64_t r = options.rank();
    auto h = input_dropout(x2, options.dropout()).mm(A.t());
    switch (rows.kind) {
      case Routing::Kind::base:
        return;
      case Routing::Kind::single:
        h = h.mm(task_matrix(rows.task));
        break;
      case Routing::Kind::stacked: {
        auto k = task_matrices();
        if (rows.group_tasks.defined()) {
          k = k.index_select(0, rows.group_tasks);
        }
        h = torch::bmm(h.view({rows.groups, rows.group_rows, r}), k).view({-1, r});
        break;
      }
      case Routing::Kind::per_row: {
        const int64_t n = h.size(0);
        auto all = h.mm(task_matrices().permute({1, 0, 2}).reshape({r, num_tasks() * r}));
        h = all.view({n, num_tasks(), r})
                .gather(1, rows.row_tasks.view({n, 1, 1}).expand({n, 1, r}))
                .squeeze(1);
        break;
      }
    }
    add_low_rank_(y2, h, B, scale());
  }

  torch::Tensor delta_weight(int64_t task,
                             std::optional<torch::ScalarType> dtype = std::nullopt) const override {
    check_task(task);
    return as(B, dtype).mm(as(task_matrix(task), dtype).t()).mm(as(A, dtype)) * scale();
  }

  TerraOptions options;
  /// [r, in]
  torch::Tensor A;
  /// [adapted_rows, r]
  torch::Tensor B;
  /// [T, r, r], or [1, r, r] when shared
  torch::Tensor Omega;
  /// [T] task coordinates c_t (a buffer)
  torch::Tensor coordinates;

 private:
  torch::Tensor task_matrix(int64_t task) const {
    auto omega = Omega[options.shared_omega() ? 0 : task];
    return torch::eye(options.rank(), Omega.options()) +
           coordinates[task].to(Omega.scalar_type()) * omega;
  }
};

TORCH_MODULE(Terra);

}  // namespace tora
