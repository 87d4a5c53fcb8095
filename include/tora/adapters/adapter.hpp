#pragma once

/// The common base of every adapter module: shapes, output blocks, the in-place update, the
/// per-task weight update used by merging, and the binding to an unmodified host linear.

#include <tora/config.hpp>
#include <tora/method.hpp>
#include <tora/routing.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tora {

namespace detail {

/// A run of consecutive adapted output rows: rows [out_start, out_start + length) of the layer
/// are rows [adapter_start, adapter_start + length) of the adapter.
struct BlockRun {
  int64_t out_start = 0;
  int64_t adapter_start = 0;
  int64_t length = 0;
};

/// The runs of `blocks` (empty: one run over all rows) for a layer with `out_features` rows.
inline std::vector<BlockRun> block_runs(const std::vector<bool>& blocks, int64_t out_features) {
  if (blocks.empty()) {
    return {{0, 0, out_features}};
  }
  const auto count = static_cast<int64_t>(blocks.size());
  TORCH_CHECK(out_features % count == 0, "output_blocks splits the ", out_features,
              " output rows into ", count, " equal blocks, which needs a multiple of ", count);
  const int64_t size = out_features / count;
  std::vector<BlockRun> runs;
  int64_t adapter_rows = 0;
  for (int64_t b = 0; b < count; ++b) {
    if (!blocks[b]) {
      continue;
    }
    if (!runs.empty() && runs.back().out_start + runs.back().length == b * size) {
      runs.back().length += size;
    } else {
      runs.push_back({b * size, adapter_rows, size});
    }
    adapter_rows += size;
  }
  TORCH_CHECK(!runs.empty(), "output_blocks must enable at least one of its ", count,
              " blocks, got none enabled");
  return runs;
}

/// Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) over each [rows, fan_in] matrix of `tensor`: the
/// Kaiming-uniform init with a = sqrt(5) that torch::nn::Linear uses, slice by slice.
inline void kaiming_uniform_rows_(torch::Tensor tensor) {
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(static_cast<double>(tensor.size(-1)));
  tensor.uniform_(-bound, bound);
}

}  // namespace detail

/// What an adapter living inside an unmodified linear module (see attach()) keeps: the host's
/// forward reads its `weight` member, which is rebound to W0 + s * dW_t per routing, while the
/// registered parameter stays the frozen W0.
struct HostBinding {
  std::string name;                               ///< the host's dotted name
  std::weak_ptr<torch::nn::Module> host;          ///< the host module
  std::function<torch::Tensor&()> weight_member;  ///< the member the host's forward reads
  torch::Tensor weight;                           ///< the registered weight parameter W0
  torch::Tensor bias;                             ///< the registered bias (or undefined)
  Routing routing;                                ///< the current routing
  std::optional<int64_t> merged_task;             ///< set while merged
  torch::Tensor backup;                           ///< W0 before merging
};

/// Base class of every adapter module. An adapter owns only its own parameters; the layer it
/// adapts (AdaptedLinear, or a host linear through HostBinding) owns W0 and the bias.
class AdapterBase : public torch::nn::Module {
 public:
  AdapterBase(int64_t in_features, int64_t out_features, int64_t num_tasks,
              std::vector<bool> output_blocks)
      : in_features_(in_features),
        out_features_(out_features),
        num_tasks_(num_tasks),
        output_blocks_(std::move(output_blocks)) {
    TORCH_CHECK(in_features >= 1 && out_features >= 1, "an adapter needs in and out features >= 1",
                ", got in ", in_features, ", out ", out_features);
    TORCH_CHECK(num_tasks >= 1, "an adapter needs num_tasks >= 1, got ", num_tasks);
    runs_ = detail::block_runs(output_blocks_, out_features);
    for (const auto& run : runs_) {
      adapted_rows_ += run.length;
    }
  }

  /// The method this adapter implements.
  virtual Method method() const = 0;
  /// The adapter's hyper-parameters as a config (what save_adapters() writes).
  virtual AdapterConfig config() const = 0;
  /// Whether the update can be folded into the weight (false for HydraLoRA).
  virtual bool mergeable() const { return true; }
  /// Whether the adapted layer's own weight and bias are trained (full fine-tuning).
  virtual bool trains_base() const { return false; }

  /// Adds the update for `x2` [N, in] to the base output `y2` [N, out] in place.
  virtual void add_update(torch::Tensor& y2, const torch::Tensor& x2,
                          const detail::TaskRows& rows) = 0;

  /// Task `task`'s scaled update [adapted_rows, in] (differentiable), computed in `dtype`
  /// when given, else in the parameters' dtype. Throws when the method is not mergeable.
  virtual torch::Tensor delta_weight(
      int64_t task, std::optional<torch::ScalarType> dtype = std::nullopt) const = 0;

  /// Task `task`'s scaled update over every output row [out, in]: zero in blocks not adapted.
  torch::Tensor full_delta_weight(int64_t task,
                                  std::optional<torch::ScalarType> dtype = std::nullopt) const {
    auto delta = delta_weight(task, dtype);
    if (adapted_rows_ == out_features_) {
      return delta;
    }
    std::vector<torch::Tensor> pieces;
    int64_t row = 0;
    for (const auto& run : runs_) {
      if (run.out_start > row) {
        pieces.push_back(torch::zeros({run.out_start - row, in_features_}, delta.options()));
      }
      pieces.push_back(delta.narrow(0, run.adapter_start, run.length));
      row = run.out_start + run.length;
    }
    if (row < out_features_) {
      pieces.push_back(torch::zeros({out_features_ - row, in_features_}, delta.options()));
    }
    return torch::cat(pieces, 0);
  }

  int64_t in_features() const { return in_features_; }
  /// Output rows of the adapted layer.
  int64_t out_features() const { return out_features_; }
  /// Output rows this adapter updates (the enabled output blocks).
  int64_t adapted_rows() const { return adapted_rows_; }
  int64_t num_tasks() const { return num_tasks_; }
  const std::vector<bool>& output_blocks() const { return output_blocks_; }

  /// The binding to an unmodified host linear, when attach() made one.
  HostBinding* host_binding() { return host_ ? &*host_ : nullptr; }
  const HostBinding* host_binding() const { return host_ ? &*host_ : nullptr; }
  void bind_host(HostBinding binding) { host_ = std::move(binding); }

 protected:
  void check_task(int64_t task) const {
    TORCH_CHECK(task >= 0 && task < num_tasks_, to_string(method()), " adapter: task ", task,
                " is out of range, it has ", num_tasks_, " task(s)");
  }

  /// Dropout on the adapter branch's input, in training mode only.
  torch::Tensor input_dropout(const torch::Tensor& x2, double p) const {
    if (p <= 0.0 || !is_training()) {
      return x2;
    }
    return torch::dropout(x2, p, true);
  }

  /// y2[:, adapted rows] += scale * h [N, k] @ up' (up [adapted_rows, k]), in place.
  void add_low_rank_(torch::Tensor& y2, const torch::Tensor& h, const torch::Tensor& up,
                     double scale) const {
    if (adapted_rows_ == out_features_) {
      y2.addmm_(h, up.t(), 1.0, scale);
      return;
    }
    for (const auto& run : runs_) {
      y2.narrow(1, run.out_start, run.length)
          .addmm_(h, up.narrow(0, run.adapter_start, run.length).t(), 1.0, scale);
    }
  }

  /// y2[:, adapted rows] += delta [N, adapted_rows], in place.
  void add_dense_(torch::Tensor& y2, const torch::Tensor& delta) const {
    if (adapted_rows_ == out_features_) {
      y2.add_(delta);
      return;
    }
    for (const auto& run : runs_) {
      y2.narrow(1, run.out_start, run.length).add_(delta.narrow(1, run.adapter_start, run.length));
    }
  }

  /// `tensor` cast to `dtype` when given.
  static torch::Tensor as(const torch::Tensor& tensor, std::optional<torch::ScalarType> dtype) {
    return dtype ? tensor.to(*dtype) : tensor;
  }

 private:
  int64_t in_features_;
  int64_t out_features_;
  int64_t num_tasks_;
  std::vector<bool> output_blocks_;
  std::vector<detail::BlockRun> runs_;
  int64_t adapted_rows_ = 0;
  std::optional<HostBinding> host_;
};

namespace detail {

/// `weight` + s * dW_task computed in float32, cast back to the weight's dtype; refuses a
/// non-finite update.
inline torch::Tensor merged_weight(const torch::Tensor& weight, const AdapterBase& adapter,
                                   int64_t task, const std::string& where) {
  TORCH_CHECK(adapter.mergeable(), where, ": ", to_string(adapter.method()),
              " cannot be merged: its update depends on each token, so no single weight holds it");
  torch::NoGradGuard no_grad;
  auto delta = adapter.full_delta_weight(task, torch::kFloat).to(weight.device());
  TORCH_CHECK(delta.isfinite().all().item<bool>(), where, ": refusing to merge task ", task,
              " because its update holds NaN or infinite values");
  return (weight.to(torch::kFloat) + delta).to(weight.scalar_type());
}

}  // namespace detail

}  // namespace tora
