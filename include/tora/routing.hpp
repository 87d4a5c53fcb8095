#pragma once

/// Which task each row of an adapted layer's input belongs to.

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tora {

/// Task routing of a forward pass. The input of an adapted layer is `[B, ..., in]`; dim 0 is
/// the batch that routing splits.
///
///     tora::Routing::single(2);                  // every row is task 2
///     tora::Routing::stacked();                  // B = T groups of B/T rows: task 0, 1, ...
///     tora::Routing::per_row(ids);               // ids [B] int64: row b is task ids[b]
///                                                // (or rows b*k .. b*k+k-1 of k*B rows)
///     tora::Routing::base();                     // adapters off: the frozen model
class Routing {
 public:
  enum class Kind { base, single, stacked, per_row };

  /// single(0).
  Routing() = default;

  /// Adapters contribute nothing: the forward is the base model's.
  static Routing base() { return Routing(Kind::base); }

  /// Every row belongs to `task`.
  static Routing single(int64_t task) {
    TORCH_CHECK(task >= 0, "a task id must be >= 0, got ", task);
    Routing routing(Kind::single);
    routing.task_ = task;
    return routing;
  }

  /// Task-major stacked batch: dim 0 holds tasks.size() equal groups, group g for task
  /// tasks[g]; an empty list means every task of each adapter, 0..T-1, in order.
  static Routing stacked(std::vector<int64_t> tasks = {}) {
    for (int64_t task : tasks) {
      TORCH_CHECK(task >= 0, "a task id must be >= 0, got ", task);
    }
    Routing routing(Kind::stacked);
    routing.tasks_ = std::move(tasks);
    return routing;
  }

  /// Row b of dim 0 belongs to task task_ids[b]; `task_ids` is [B] int64 on any device. A dim 0
  /// of k * B rows is read as B equal consecutive groups (say, each sample's k attention
  /// windows), group b for task_ids[b].
  static Routing per_row(torch::Tensor task_ids) {
    TORCH_CHECK(task_ids.defined() && task_ids.dim() == 1 && task_ids.scalar_type() == torch::kLong,
                "per-row task ids must be a [B] int64 tensor, got ",
                task_ids.defined() ? task_ids.sizes().vec() : std::vector<int64_t>{}, " of ",
                task_ids.defined() ? c10::toString(task_ids.scalar_type()) : "nothing");
    Routing routing(Kind::per_row);
    if (task_ids.numel() > 0) {
      auto extremes = torch::stack({task_ids.min(), task_ids.max()}).cpu();
      TORCH_CHECK(extremes[0].item<int64_t>() >= 0, "per-row task ids must be >= 0, got ",
                  extremes[0].item<int64_t>());
      routing.task_ = extremes[1].item<int64_t>();
    }
    routing.ids_ = std::move(task_ids);
    return routing;
  }

  Kind kind() const { return kind_; }
  /// The task of single(); the largest id of per_row().
  int64_t task() const { return task_; }
  /// The group tasks of stacked() (empty: all tasks in order).
  const std::vector<int64_t>& tasks() const { return tasks_; }
  /// The ids of per_row().
  const torch::Tensor& task_ids() const { return ids_; }

  /// Throws unless every task this routing names is below `num_tasks`.
  void check_tasks(int64_t num_tasks, const std::string& where) const {
    int64_t largest = -1;
    if (kind_ == Kind::single || kind_ == Kind::per_row) {
      largest = task_;
    }
    for (int64_t task : tasks_) {
      largest = std::max(largest, task);
    }
    TORCH_CHECK(largest < num_tasks, where, ": routing names task ", largest,
                " but the adapter has ", num_tasks, " task(s) (ids 0..", num_tasks - 1, ")");
  }

  /// A short description such as "single(2)" or "stacked(all)".
  std::string describe() const {
    switch (kind_) {
      case Kind::base:
        return "base";
      case Kind::single:
        return "single(" + std::to_string(task_) + ")";
      case Kind::stacked: {
        if (tasks_.empty()) {
          return "stacked(all)";
        }
        std::string text = "stacked(";
        for (size_t i = 0; i < tasks_.size(); ++i) {
          if (i > 0) {
            text += ',';
          }
          text += std::to_string(tasks_[i]);
        }
        return text + ")";
      }
      case Kind::per_row:
        return "per_row(" + std::to_string(ids_.numel()) + " rows)";
    }
    return "unknown";
  }

 private:
  explicit Routing(Kind kind) : kind_(kind) {}

  Kind kind_ = Kind::single;
  int64_t task_ = 0;
  std::vector<int64_t> tasks_;
  torch::Tensor ids_;
};

namespace detail {

/// A routing resolved against one input x2 [N, in] (N = B * rows per sample).
struct TaskRows {
  Routing::Kind kind = Routing::Kind::single;
  int64_t task = 0;        ///< single: the task
  int64_t groups = 0;      ///< stacked: number of groups
  int64_t group_rows = 0;  ///< stacked: rows of x2 per group
  /// stacked: [groups] int64 task of each group; undefined when the groups are 0..T-1 in order.
  torch::Tensor group_tasks;
  torch::Tensor row_tasks;  ///< per_row: [N] int64 task of each row of x2
};

/// Resolves `routing` for an input `x` [B, ..., in] of an adapter with `num_tasks` tasks.
inline TaskRows resolve(const Routing& routing, const torch::Tensor& x, int64_t num_tasks,
                        const std::string& where) {
  routing.check_tasks(num_tasks, where);
  TaskRows rows;
  rows.kind = routing.kind();
  rows.task = routing.task();
  if (routing.kind() == Routing::Kind::base || routing.kind() == Routing::Kind::single) {
    return rows;
  }
  TORCH_CHECK(x.dim() >= 2, where, ": ", routing.describe(),
              " routing splits dim 0 of the input, which needs [B, ..., in], got ", x.sizes());
  const int64_t batch = x.size(0);
  const int64_t per_sample = batch == 0 ? 0 : x.numel() / (batch * x.size(-1));
  if (routing.kind() == Routing::Kind::stacked) {
    rows.groups =
        routing.tasks().empty() ? num_tasks : static_cast<int64_t>(routing.tasks().size());
    TORCH_CHECK(batch % rows.groups == 0, where, ": stacked routing expects dim 0 to hold ",
                rows.groups, " equal task groups, got ", batch, " rows");
    rows.group_rows = batch / rows.groups * per_sample;
    if (!routing.tasks().empty()) {
      rows.group_tasks = torch::tensor(routing.tasks(), torch::kLong).to(x.device());
    }
    return rows;
  }
  const int64_t count = routing.task_ids().numel();
  TORCH_CHECK(count > 0 && batch % count == 0, where, ": per-row routing has ", count,
              " task ids but the input has ", batch,
              " rows in dim 0; expected as many rows, or a multiple (equal consecutive groups)");
  auto ids = routing.task_ids().to(x.device());
  const int64_t repeat = batch / count * per_sample;
  rows.row_tasks = repeat == 1 ? ids : ids.repeat_interleave(repeat);
  return rows;
}

}  // namespace detail

}  // namespace tora
