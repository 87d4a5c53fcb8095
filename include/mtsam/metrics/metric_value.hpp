#pragma once

/// One named figure of one task, with the direction in which it improves; the unit of result
/// tables and of Delta_b.

#include <string>

namespace mtsam::metrics {

/// A figure such as {"depth", "Abs Err", 0.3839, false}.
struct MetricValue {
  /// Task name (see <mtsam/data/tasks.hpp>).
  std::string task;
  /// Metric name within the task ("mIoU", "Pix Acc", "Abs Err", "Rel Err", "Mean", "Median",
  /// "11.25", "22.5", "30", "maxF").
  std::string name;
  /// The value, in the unit the accumulators report (fractions, metres, degrees).
  double value = 0.0;
  /// True when larger is better (mIoU), false when smaller is better (errors).
  bool higher_is_better = true;
};

}  // namespace mtsam::metrics
