#pragma once

/// Delta_b: the mean over tasks of the mean over that task's metrics of the relative change
/// against a baseline, signed so that improving is positive:
/// `(1/T) sum_t (1/K_t) sum_j (-1)^{lower_j} (M_tj - B_tj) / B_tj`.

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include <mtsam/metrics/metric_value.hpp>

namespace mtsam::metrics {

/// Delta_b of `method` against `baseline`, as a fraction (0.2393 for +23.93%). Every metric of
/// `method` needs a baseline figure with the same task and name (and a nonzero value); tasks are
/// weighted equally whatever their number of metrics. The directions come from `method`.
inline double delta_b(const std::vector<MetricValue>& method,
                      const std::vector<MetricValue>& baseline) {
  if (method.empty()) {
    throw std::invalid_argument("delta_b: no metrics given");
  }
  std::vector<std::string> tasks;
  std::vector<double> sums;
  std::vector<size_t> counts;
  for (const auto& m : method) {
    const MetricValue* base = nullptr;
    for (const auto& b : baseline) {
      if (b.task == m.task && b.name == m.name)
        base = &b;
    }
    if (base == nullptr) {
      throw std::invalid_argument("delta_b: the baseline has no figure for task '" + m.task +
                                  "' metric '" + m.name + "'");
    }
    if (base->value == 0.0) {
      throw std::invalid_argument("delta_b: the baseline's '" + m.task + "' '" + m.name +
                                  "' is 0, so the relative change is undefined");
    }
    const double change = (m.value - base->value) / base->value;
    size_t t = 0;
    while (t < tasks.size() && tasks[t] != m.task)
      ++t;
    if (t == tasks.size()) {
      tasks.push_back(m.task);
      sums.push_back(0.0);
      counts.push_back(0);
    }
    sums[t] += m.higher_is_better ? change : -change;
    counts[t] += 1;
  }
  double total = 0.0;
  for (size_t t = 0; t < tasks.size(); ++t) {
    total += sums[t] / static_cast<double>(counts[t]);
  }
  return total / static_cast<double>(tasks.size());
}

}  // namespace mtsam::metrics
