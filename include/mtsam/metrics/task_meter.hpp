#pragma once

/// The metric accumulator of one task, chosen from its `TaskSpec`, with its figures as named
/// `MetricValue`s for result tables and Delta_b.

#include <torch/torch.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <mtsam/data/tasks.hpp>
#include <mtsam/metrics/depth.hpp>
#include <mtsam/metrics/metric_value.hpp>
#include <mtsam/metrics/normals.hpp>
#include <mtsam/metrics/saliency.hpp>
#include <mtsam/metrics/segmentation.hpp>

namespace mtsam::metrics {

/// Accumulates one task's metric over batches of head outputs and batched targets.
///
/// Figures by kind: segmentation "mIoU", "Pix Acc"; depth "Abs Err", "Rel Err"; normals "Mean",
/// "Median", "11.25", "22.5", "30" (fractions for the last three); saliency "maxF", "mIoU".
class TaskMeter {
 public:
  explicit TaskMeter(data::TaskSpec spec) : spec_(std::move(spec)), metric_(make(spec_)) {}

  /// Adds a batch: the task head's output (logits for segmentation and saliency) and the target.
  void update(const torch::Tensor& pred, const torch::Tensor& target) {
    std::visit([&](auto& m) { m.update(pred, target); }, metric_);
  }

  /// Every figure of the task's kind.
  std::vector<MetricValue> all() const {
    const std::string& t = spec_.name;
    if (const auto* s = std::get_if<SegmentationMetric>(&metric_)) {
      return {{t, "mIoU", s->miou(), true}, {t, "Pix Acc", s->pixel_accuracy(), true}};
    }
    if (const auto* d = std::get_if<DepthMetric>(&metric_)) {
      return {{t, "Abs Err", d->abs_err(), false}, {t, "Rel Err", d->rel_err(), false}};
    }
    if (const auto* n = std::get_if<NormalMetric>(&metric_)) {
      return {{t, "Mean", n->mean(), false},
              {t, "Median", n->median(), false},
              {t, "11.25", n->within(0), true},
              {t, "22.5", n->within(1), true},
              {t, "30", n->within(2), true}};
    }
    const auto& sal = std::get<SaliencyMetric>(metric_);
    return {{t, "maxF", sal.max_f(), true}, {t, "mIoU", sal.max_miou(), true}};
  }

  /// The figures named in `spec().reported`, in that order (all of them when it is empty).
  std::vector<MetricValue> reported() const {
    const auto every = all();
    if (spec_.reported.empty())
      return every;
    std::vector<MetricValue> out;
    for (const auto& name : spec_.reported) {
      bool found = false;
      for (const auto& v : every) {
        if (v.name == name) {
          out.push_back(v);
          found = true;
        }
      }
      TORCH_CHECK(found, "TaskMeter: task '", spec_.name, "' reports '", name,
                  "', which its kind does not compute");
    }
    return out;
  }

  void reset() { metric_ = make(spec_); }

  const data::TaskSpec& spec() const { return spec_; }

 private:
  using Metric = std::variant<SegmentationMetric, DepthMetric, NormalMetric, SaliencyMetric>;

  static Metric make(const data::TaskSpec& spec) {
    switch (spec.kind) {
      case data::TaskKind::segmentation:
        return SegmentationMetric(spec.channels, spec.empty_class_counts_zero);
      case data::TaskKind::depth:
        return DepthMetric(spec.aggregation);
      case data::TaskKind::normals:
        return NormalMetric(spec.aggregation);
      case data::TaskKind::saliency:
        return SaliencyMetric(SaliencyMetric::default_thresholds(), true,
                              static_cast<double>(spec.ignore_index));
    }
    throw std::invalid_argument("TaskMeter: unknown task kind for '" + spec.name + "'");
  }

  data::TaskSpec spec_;
  Metric metric_;
};

}  // namespace mtsam::metrics
