#pragma once

/// ToRA (the paper's section 3.3): the update tensor dW [out, in, T] = G x1 U1 x2 U2 x3 U3,
/// task t uses W0 + s dW[:, :, t]. The forward is factorised, s ((x U2) G_t') U1' with
/// G_t = sum_l U3[t, l] G[:, :, l]; the [out, in, T] tensor is never built.

#include <tora/adapters/adapter.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace tora {

/// Options of ToraImpl.
struct ToraOptions {
  ToraOptions(int64_t in_features, int64_t out_features, int64_t num_tasks)
      : in_features_(in_features), out_features_(out_features), num_tasks_(num_tasks) {}
  /// Input features of the adapted layer.
  TORCH_ARG(int64_t, in_features);
  /// Output rows of the adapted layer.
  TORCH_ARG(int64_t, out_features);
  /// Number of tasks T.
  TORCH_ARG(int64_t, num_tasks);
  /// Rank of the output factor U1 [adapted_rows, p]; 32.
  TORCH_ARG(int64_t, p) = 32;
  /// Rank of the input factor U2 [in, q]; 32.
  TORCH_ARG(int64_t, q) = 32;
  /// Rank of the task factor U3 [T, v]; 8.
  TORCH_ARG(int64_t, v) = 8;
  /// Scaling s of the update; 0.5.
  TORCH_ARG(double, scaling) = 0.5;
  /// Dropout probability on the adapter input; 0.1.
  TORCH_ARG(double, dropout) = 0.1;
  /// Output blocks adapted (empty: all rows); {}.
  TORCH_ARG(std::vector<bool>, output_blocks) = {};
};

/// ToRA. G [p, q, v] zero; U1 [adapted_rows, p], U2 [in, q], U3 [T, v] standard normal.
class ToraImpl : public AdapterBase {
 public:
  static constexpr Method kind = Method::tora;
  static constexpr bool is_mergeable = true;

  explicit ToraImpl(ToraOptions options_)
      : AdapterBase(options_.in_features(), options_.out_features(), options_.num_tasks(),
                    options_.output_blocks()),
        options(std::move(options_)) {
    reset();
  }

  /// Re-creates the core and the factors with their initial values.
  void reset() {
    TORCH_CHECK(options.p() >= 1 && options.q() >= 1 && options.v() >= 1,
                "ToRA ranks p, q, v must be >= 1, got ", options.p(), ", ", options.q(), ", ",
                options.v());
    G = register_parameter("G", torch::zeros({options.p(), options.q(), options.v()}));
    U1 = register_parameter("U1", torch::randn({adapted_rows(), options.p()}));
    U2 = register_parameter("U2", torch::randn({in_features(), options.q()}));
    U3 = register_parameter("U3", torch::randn({num_tasks(), options.v()}));
  }

  Method method() const override { return kind; }

  AdapterConfig config() const override {
    AdapterConfig config;
    config.method = kind;
    config.num_tasks = num_tasks();
    config.p = options.p();
    config.q = options.q();
    config.v = options.v();
    config.scaling = options.scaling();
    config.dropout = options.dropout();
    config.output_blocks = options.output_blocks();
    return config;
  }

  /// G_t = sum_l U3[t, l] G[:, :, l] for one task: [p, q].
  torch::Tensor task_core(int64_t task) const { return torch::matmul(G, U3[task]); }

  /// G_t for every task: [T, p, q].
  torch::Tensor task_cores() const {
    const int64_t p = options.p();
    const int64_t q = options.q();
    return U3.mm(G.reshape({p * q, options.v()}).t()).view({num_tasks(), p, q});
  }

  void add_update(torch::Tensor& y2, const torch::Tensor& x2,
                  const detail::TaskRows& rows) override {
    const auto x = input_dropout(x2, options.dropout());
    const double s = options.scaling();
    const int64_t p = options.p();
    torch::Tensor h;  // [N, p]
    switch (rows.kind) {
      case Routing::Kind::base:
        return;
      case Routing::Kind::single:
        // (x U2) G_t' = x (U2 G_t'): fold the tiny [in, p] product first.
        h = x.mm(U2.mm(task_core(rows.task).t() * s));
        break;
      case Routing::Kind::stacked: {
        auto cores = task_cores();
        if (rows.group_tasks.defined()) {
          cores = cores.index_select(0, rows.group_tasks);
        }
        auto maps = torch::matmul(U2, cores.transpose(1, 2) * s);  // [groups, in, p]
        h = torch::bmm(x.reshape({rows.groups, rows.group_rows, in_features()}), maps)
                .view({-1, p});
        break;
      }
      case Routing::Kind::per_row: {
        const int64_t n = x.size(0);
        auto maps = torch::matmul(U2, task_cores().transpose(1, 2) * s);  // [T, in, p]
        auto all = x.mm(maps.permute({1, 0, 2}).reshape({in_features(), num_tasks() * p}));
        h = all.view({n, num_tasks(), p})
                .gather(1, rows.row_tasks.view({n, 1, 1}).expand({n, 1, p}))
                .squeeze(1);
        break;
      }
    }
    add_low_rank_(y2, h, U1, 1.0);
  }

  /// s U1 G_t U2' [adapted_rows, in].
  torch::Tensor delta_weight(int64_t task,
                             std::optional<torch::ScalarType> dtype = std::nullopt) const override {
    check_task(task);
    auto core = torch::matmul(as(G, dtype), as(U3, dtype)[task]);
    return as(U1, dtype).mm(core).mm(as(U2, dtype).t()) * options.scaling();
  }

  /// The matrices whose norms make the orthogonal regulariser, in float32:
  /// U1'U1 - I, U2'U2 - I, and per l (G_l = G[:, :, l] [p, q]) G_l'G_l - I [q, q], the paper's
  /// term. With `core_rows`, G_l G_l' - I [p, p] instead: the reference code names the factors
  /// input side first, so its G_l is this G_l transposed and its G_l'G_l is this G_l G_l'.
  std::vector<torch::Tensor> orthogonality_residuals(bool core_rows = false) const {
    auto u1 = U1.to(torch::kFloat);
    auto u2 = U2.to(torch::kFloat);
    auto g = G.to(torch::kFloat);
    auto eye = [&](int64_t n) { return torch::eye(n, u1.options()); };
    std::vector<torch::Tensor> residuals = {u1.t().mm(u1) - eye(options.p()),
                                            u2.t().mm(u2) - eye(options.q())};
    for (int64_t l = 0; l < options.v(); ++l) {
      auto slice = g.select(2, l);
      residuals.push_back(core_rows ? slice.mm(slice.t()) - eye(options.p())
                                    : slice.t().mm(slice) - eye(options.q()));
    }
    return residuals;
  }

  ToraOptions options;
  /// Core [p, q, v]
  torch::Tensor G;
  /// Output factor [adapted_rows, p]
  torch::Tensor U1;
  /// Input factor [in, q]
  torch::Tensor U2;
  /// Task factor [T, v]
  torch::Tensor U3;
};

TORCH_MODULE(Tora);

}  // namespace tora
