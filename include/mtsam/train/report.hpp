#pragma once

/// The HTML report of a run: loss and metric curves (inline SVG), the metrics table, and
/// predictions beside the ground truth for a few test images. One self-contained file plus the
/// PNG files it names; no scripts and nothing fetched from the network.

#include <mtsam/data/tasks.hpp>
#include <mtsam/train/checkpoint.hpp>
#include <mtsam/train/detail/number_text.hpp>
#include <mtsam/train/pictures.hpp>
#include <mtsam/train/records.hpp>
#include <mtsam/train/svg.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace mtsam::train {

/// Everything the report shows.
struct ReportData {
  std::string title = "MTSAM training report";
  /// One sentence on where the run stands (finished, interrupted, diverged...).
  std::string status;
  /// The tasks, in order; `reported` picks the table's metrics (all when empty).
  std::vector<data::TaskSpec> tasks;
  std::vector<StepRecord> steps;
  std::vector<Evaluation> evaluations;
  /// The row Delta_b is measured against, when it is a baseline file rather than the run's own
  /// first evaluation.
  std::optional<std::vector<TaskEvaluation>> baseline;
  /// Step of the best evaluation, -1 when none.
  int64_t best_step = -1;
  std::vector<PictureRow> pictures;
  /// The run's configuration, shown as JSON.
  nlohmann::json config;
};

namespace detail {

inline std::vector<std::string> table_metrics(const data::TaskSpec& spec,
                                              const std::vector<Evaluation>& evaluations) {
  if (!spec.reported.empty()) {
    return spec.reported;
  }
  std::vector<std::string> names;
  for (const auto& evaluation : evaluations) {
    if (const auto* task = evaluation.find(spec.name)) {
      for (const auto& metric : task->metrics) {
        if (std::find(names.begin(), names.end(), metric.name) == names.end()) {
          names.push_back(metric.name);
        }
      }
    }
  }
  return names;
}

inline std::string metric_cell(const std::vector<TaskEvaluation>& tasks, const std::string& task,
                               const std::string& metric) {
  for (const auto& t : tasks) {
    if (t.task == task) {
      if (const auto* m = t.find(metric)) {
        return format_number(m->value);
      }
    }
  }
  return "&ndash;";
}

}  // namespace detail

/// The report as one HTML document.
inline std::string render_report(const ReportData& report) {
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
      escape_html(report.title) +
      "</title>\n<style>\nbody{font-family:sans-serif;margin:24px;color:#222}"
      "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;"
      "text-align:right}th{background:#f3f3f3}tr.best td{font-weight:bold;background:#eef6ee}"
      ".charts{display:flex;flex-wrap:wrap;gap:8px}.pictures td{text-align:center}"
      ".pictures img{width:200px;image-rendering:pixelated}pre{background:#f7f7f7;padding:8px}"
      "\n</style>\n</head>\n<body>\n<h1>" +
      escape_html(report.title) + "</h1>\n<p>" + escape_html(report.status) + "</p>\n";

  html += "<h2>Training loss</h2>\n<div class=\"charts\">\n";
  ChartSeries total{"weighted task losses", {}};
  ChartSeries regularizer{"regulariser", {}};
  ChartSeries lr{"learning rate", {}};
  for (const auto& s : report.steps) {
    total.points.emplace_back(static_cast<double>(s.step), s.task_loss);
    regularizer.points.emplace_back(static_cast<double>(s.step), s.regularizer);
    lr.points.emplace_back(static_cast<double>(s.step), s.lr);
  }
  html += line_chart("Weighted task loss", {total}, "step") + "\n";
  for (const auto& spec : report.tasks) {
    ChartSeries task{spec.name, {}};
    for (const auto& s : report.steps) {
      for (const auto& [name, value] : s.task_losses) {
        if (name == spec.name) {
          task.points.emplace_back(static_cast<double>(s.step), value);
        }
      }
    }
    html += line_chart("Loss: " + spec.name, {task}, "step") + "\n";
  }
  html += line_chart("Orthogonal regulariser", {regularizer}, "step") + "\n";
  html += line_chart("Learning rate", {lr}, "step") + "\n</div>\n";

  html += "<h2>Test metrics</h2>\n<div class=\"charts\">\n";
  std::vector<ChartSeries> test_losses;
  for (const auto& spec : report.tasks) {
    ChartSeries loss{spec.name, {}};
    for (const auto& e : report.evaluations) {
      if (const auto* task = e.find(spec.name)) {
        loss.points.emplace_back(static_cast<double>(e.epoch), task->loss);
      }
    }
    test_losses.push_back(std::move(loss));
  }
  html += line_chart("Test loss", test_losses, "epoch") + "\n";
  for (const auto& spec : report.tasks) {
    for (const auto& metric : detail::table_metrics(spec, report.evaluations)) {
      ChartSeries series{metric, {}};
      for (const auto& e : report.evaluations) {
        if (const auto* task = e.find(spec.name)) {
          if (const auto* m = task->find(metric)) {
            series.points.emplace_back(static_cast<double>(e.epoch), m->value);
          }
        }
      }
      html += line_chart(spec.name + ": " + metric, {series}, "epoch") + "\n";
    }
  }
  html += "</div>\n";

  html += "<h2>Results</h2>\n<table>\n<tr><th rowspan=\"2\">epoch</th><th rowspan=\"2\">step</th>";
  for (const auto& spec : report.tasks) {
    html += "<th colspan=\"" +
            std::to_string(detail::table_metrics(spec, report.evaluations).size()) + "\">" +
            escape_html(spec.name) + "</th>";
  }
  html += "<th rowspan=\"2\">&Delta;<sub>b</sub></th></tr>\n<tr>";
  for (const auto& spec : report.tasks) {
    for (const auto& metric : detail::table_metrics(spec, report.evaluations)) {
      bool higher = true;
      for (const auto& e : report.evaluations) {
        if (const auto* task = e.find(spec.name)) {
          if (const auto* m = task->find(metric)) {
            higher = m->higher_is_better;
          }
        }
      }
      html += "<th>" + escape_html(metric) + (higher ? " &uarr;" : " &darr;") + "</th>";
    }
  }
  html += "</tr>\n";
  if (report.baseline) {
    html += "<tr><td colspan=\"2\">baseline</td>";
    for (const auto& spec : report.tasks) {
      for (const auto& metric : detail::table_metrics(spec, report.evaluations)) {
        html += "<td>" + detail::metric_cell(*report.baseline, spec.name, metric) + "</td>";
      }
    }
    html += "<td>+0.00%</td></tr>\n";
  }
  for (const auto& e : report.evaluations) {
    html += std::string(e.step == report.best_step ? "<tr class=\"best\">" : "<tr>") + "<td>" +
            std::to_string(e.epoch) + "</td><td>" + std::to_string(e.step) + "</td>";
    for (const auto& spec : report.tasks) {
      for (const auto& metric : detail::table_metrics(spec, report.evaluations)) {
        html += "<td>" + detail::metric_cell(e.tasks, spec.name, metric) + "</td>";
      }
    }
    html += "<td>" + (e.delta_b ? detail::signed_percent(*e.delta_b) : std::string("&ndash;")) +
            "</td></tr>\n";
  }
  html += "</table>\n<p>&Delta;<sub>b</sub>: mean relative improvement over the " +
          std::string(report.baseline ? "baseline row" : "run's first evaluation") +
          " (the paper's measure against LoRA-HPS). The best evaluation is in bold.</p>\n";

  html += "<h2>Predictions on test images</h2>\n";
  if (report.pictures.empty()) {
    html += "<p>No pictures.</p>\n";
  }
  for (const auto& row : report.pictures) {
    html += "<table class=\"pictures\">\n<tr><th>test image " + std::to_string(row.index) + "</th>";
    for (const auto& spec : report.tasks) {
      html += "<th>" + escape_html(spec.name) + ": truth</th><th>" + escape_html(spec.name) +
              ": prediction</th>";
    }
    html += "</tr>\n<tr><td><img src=\"" + escape_html(row.input) + "\" alt=\"input\"></td>";
    for (size_t t = 0; t < row.tasks.size(); ++t) {
      html += "<td><img src=\"" + escape_html(row.tasks[t].second) + "\" alt=\"truth\"></td>";
      html += "<td><img src=\"" + escape_html(row.tasks[t].first) + "\" alt=\"prediction\"></td>";
    }
    html += "</tr>\n</table>\n";
  }

  if (!report.config.is_null()) {
    html += "<h2>Configuration</h2>\n<pre>" + escape_html(report.config.dump(2)) + "</pre>\n";
  }
  html += "</body>\n</html>\n";
  return html;
}

/// Writes the report to `file` atomically.
inline void write_report(const std::filesystem::path& file, const ReportData& report) {
  write_text_atomically(file, render_report(report));
}

}  // namespace mtsam::train
