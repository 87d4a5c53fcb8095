#pragma once

/// Results tables in the paper's style, as text: one row per run or method, the reported
/// metrics of every task with their direction, trainable parameters and Delta_b. Fractions
/// (mIoU, pixel accuracy, the "within t degrees" shares, maxF) are shown in percent.

#include <mtsam/data/tasks.hpp>
#include <mtsam/train/detail/number_text.hpp>
#include <mtsam/train/records.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace mtsam::train {

/// One row of a results table.
struct ResultRow {
  std::string label;
  std::vector<TaskEvaluation> tasks;
  /// Trainable parameters, when known.
  std::optional<int64_t> parameters;
  /// Delta_b against the table's reference row, as a fraction.
  std::optional<double> delta_b;
};

/// Whether a metric is a fraction shown in percent.
inline bool is_percentage(const std::string& metric) {
  return metric == "mIoU" || metric == "Pix Acc" || metric == "11.25" || metric == "22.5" ||
         metric == "30" || metric == "maxF";
}

namespace detail {

/// Display width of UTF-8 text (code points; the arrows are one column each).
inline size_t display_width(const std::string& text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

inline std::string pad(const std::string& text, size_t width, bool left) {
  const size_t w = display_width(text);
  const std::string fill(width > w ? width - w : 0, ' ');
  return left ? text + fill : fill + text;
}

inline std::string cell(double value, const std::string& metric) {
  return is_percentage(metric) ? fixed_text(100.0 * value, 2) : general_text(value, 4);
}

}  // namespace detail

/// The table as lines of text. Columns: the label, then per task (in `specs` order) its
/// reported metrics with an up or down arrow, then "Params (M)" and "Delta_b" when any row
/// has them.
inline std::string results_table(const std::vector<data::TaskSpec>& specs,
                                 const std::vector<ResultRow>& rows) {
  struct Column {
    std::string task;
    std::string metric;
    std::string header;
  };
  std::vector<Column> columns;
  for (const auto& spec : specs) {
    for (const auto& metric : spec.reported) {
      bool higher = true;
      for (const auto& row : rows) {
        for (const auto& task : row.tasks) {
          if (task.task == spec.name) {
            if (const auto* m = task.find(metric)) {
              higher = m->higher_is_better;
            }
          }
        }
      }
      columns.push_back({spec.name, metric, metric + (higher ? " ↑" : " ↓")});
    }
  }
  const bool with_params =
      std::any_of(rows.begin(), rows.end(), [](const ResultRow& r) { return r.parameters; });
  const bool with_delta =
      std::any_of(rows.begin(), rows.end(), [](const ResultRow& r) { return r.delta_b; });

  std::vector<std::vector<std::string>> grid;
  std::vector<std::string> header = {""};
  for (const auto& column : columns) {
    header.push_back(column.header);
  }
  if (with_params) {
    header.push_back("Params (M)");
  }
  if (with_delta) {
    header.push_back("Δb");
  }
  grid.push_back(header);
  for (const auto& row : rows) {
    std::vector<std::string> line = {row.label};
    for (const auto& column : columns) {
      std::string text = "-";
      for (const auto& task : row.tasks) {
        if (task.task == column.task) {
          if (const auto* m = task.find(column.metric)) {
            text = detail::cell(m->value, column.metric);
          }
        }
      }
      line.push_back(text);
    }
    if (with_params) {
      line.push_back(row.parameters
                         ? detail::fixed_text(static_cast<double>(*row.parameters) / 1e6, 3)
                         : std::string("-"));
    }
    if (with_delta) {
      line.push_back(row.delta_b ? detail::signed_percent(*row.delta_b) : std::string("-"));
    }
    grid.push_back(line);
  }

  std::vector<size_t> widths(grid.front().size(), 0);
  for (const auto& line : grid) {
    for (size_t c = 0; c < line.size(); ++c) {
      widths[c] = std::max(widths[c], detail::display_width(line[c]));
    }
  }
  // A first line naming each task above its columns.
  std::string text = detail::pad("", widths[0], true);
  size_t c = 1;
  for (const auto& spec : specs) {
    size_t span = 0;
    size_t count = 0;
    for (size_t k = c; k < 1 + columns.size() && columns[k - 1].task == spec.name; ++k) {
      span += widths[k] + 2;
      ++count;
    }
    text += "  " + detail::pad(spec.name, span > 2 ? span - 2 : 0, true);
    c += count;
  }
  text += "\n";
  for (const auto& line : grid) {
    for (size_t k = 0; k < line.size(); ++k) {
      text += (k == 0 ? "" : "  ") + detail::pad(line[k], widths[k], k == 0);
    }
    text += "\n";
  }
  return text;
}

}  // namespace mtsam::train
