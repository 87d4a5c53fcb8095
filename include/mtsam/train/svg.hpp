#pragma once

/// Line charts as self-contained SVG (no scripts, no external resources), for the HTML report.

#include <mtsam/train/detail/number_text.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mtsam::train {

/// One line of a chart: a label and (x, y) points; non-finite points are skipped.
struct ChartSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;
};

/// Text with `&`, `<`, `>`, `"` and `'` escaped, for HTML and SVG.
inline std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace detail {

inline std::string format_number(double value) {
  return general_text(value, 4);
}

/// About `count` round tick values covering [low, high].
inline std::vector<double> nice_ticks(double low, double high, int count) {
  const double span = high - low;
  const double raw = span / std::max(1, count);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double factor : {1.0, 2.0, 5.0, 10.0}) {
    step = factor * magnitude;
    if (step >= raw) {
      break;
    }
  }
  std::vector<double> ticks;
  for (double t = std::ceil(low / step) * step; t <= high + step * 1e-9; t += step) {
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  }
  return ticks;
}

/// At most `limit` points: consecutive points averaged in equal buckets.
inline std::vector<std::pair<double, double>> thin(const std::vector<std::pair<double, double>>& in,
                                                   size_t limit) {
  if (in.size() <= limit) {
    return in;
  }
  std::vector<std::pair<double, double>> out;
  const double per = static_cast<double>(in.size()) / static_cast<double>(limit);
  for (size_t b = 0; b < limit; ++b) {
    const auto begin = static_cast<size_t>(std::floor(b * per));
    const auto end = std::min(in.size(), static_cast<size_t>(std::floor((b + 1) * per)));
    double x = 0.0;
    double y = 0.0;
    for (size_t i = begin; i < end; ++i) {
      x += in[i].first;
      y += in[i].second;
    }
    const double n = static_cast<double>(end - begin);
    out.emplace_back(x / n, y / n);
  }
  return out;
}

inline constexpr const char* chart_colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                                "#9467bd", "#8c564b", "#e377c2", "#17becf"};

}  // namespace detail

/// An SVG line chart of `series` with axes, ticks and a legend; an empty chart says "no data".
inline std::string line_chart(const std::string& title, const std::vector<ChartSeries>& series,
                              const std::string& x_label, int width = 440, int height = 260) {
  const double left = 58.0;
  const double right = 12.0;
  const double top = 28.0;
  const double bottom = 40.0 + 16.0 * static_cast<double>((series.size() + 2) / 3);
  const double plot_w = width - left - right;
  const double plot_h = height - top - bottom;

  double x_min = std::numeric_limits<double>::infinity();
  double x_max = -x_min;
  double y_min = x_min;
  double y_max = -x_min;
  std::vector<std::vector<std::pair<double, double>>> kept;
  for (const auto& s : series) {
    std::vector<std::pair<double, double>> finite;
    for (const auto& [x, y] : s.points) {
      if (std::isfinite(x) && std::isfinite(y)) {
        finite.emplace_back(x, y);
        x_min = std::min(x_min, x);
        x_max = std::max(x_max, x);
        y_min = std::min(y_min, y);
        y_max = std::max(y_max, y);
      }
    }
    kept.push_back(detail::thin(finite, 400));
  }

  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) +
                    "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " +
                    std::to_string(width) + " " + std::to_string(height) +
                    "\" font-family=\"sans-serif\" font-size=\"11\">";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>";
  svg += "<text x=\"" + std::to_string(width / 2) +
         "\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">" + escape_html(title) + "</text>";
  if (!std::isfinite(x_min)) {
    svg += "<text x=\"" + std::to_string(width / 2) + "\" y=\"" + std::to_string(height / 2) +
           "\" text-anchor=\"middle\" fill=\"#888\">no data</text></svg>";
    return svg;
  }
  if (x_max - x_min < 1e-12) {
    x_min -= 0.5;
    x_max += 0.5;
  }
  if (y_max - y_min < 1e-12 * std::max(1.0, std::abs(y_max))) {
    const double pad = std::max(1e-6, std::abs(y_max) * 0.05);
    y_min -= pad;
    y_max += pad;
  }
  const auto px = [&](double x) { return left + (x - x_min) / (x_max - x_min) * plot_w; };
  const auto py = [&](double y) { return top + (1.0 - (y - y_min) / (y_max - y_min)) * plot_h; };
  const auto f = [](double v) { return detail::format_number(v); };

  svg += "<rect x=\"" + f(left) + "\" y=\"" + f(top) + "\" width=\"" + f(plot_w) + "\" height=\"" +
         f(plot_h) + "\" fill=\"none\" stroke=\"#999\"/>";
  for (double t : detail::nice_ticks(y_min, y_max, 5)) {
    svg += "<line x1=\"" + f(left) + "\" x2=\"" + f(left + plot_w) + "\" y1=\"" + f(py(t)) +
           "\" y2=\"" + f(py(t)) + "\" stroke=\"#eee\"/>";
    svg += "<text x=\"" + f(left - 4) + "\" y=\"" + f(py(t) + 4) + "\" text-anchor=\"end\">" +
           f(t) + "</text>";
  }
  for (double t : detail::nice_ticks(x_min, x_max, 6)) {
    svg += "<text x=\"" + f(px(t)) + "\" y=\"" + f(top + plot_h + 14) +
           "\" text-anchor=\"middle\">" + f(t) + "</text>";
  }
  svg += "<text x=\"" + f(left + plot_w / 2) + "\" y=\"" + f(top + plot_h + 28) +
         "\" text-anchor=\"middle\" fill=\"#555\">" + escape_html(x_label) + "</text>";

  for (size_t i = 0; i < kept.size(); ++i) {
    const char* colour = detail::chart_colours[i % std::size(detail::chart_colours)];
    if (kept[i].size() == 1) {
      svg += "<circle cx=\"" + f(px(kept[i][0].first)) + "\" cy=\"" + f(py(kept[i][0].second)) +
             "\" r=\"3\" fill=\"" + colour + "\"/>";
    } else if (!kept[i].empty()) {
      svg += "<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"" + std::string(colour) +
             "\" points=\"";
      for (const auto& [x, y] : kept[i]) {
        svg += f(px(x)) + "," + f(py(y)) + " ";
      }
      svg += "\"/>";
    }
    const double lx = left + static_cast<double>(i % 3) * plot_w / 3.0;
    const double ly = top + plot_h + 42 + 16.0 * static_cast<double>(i / 3);
    svg += "<rect x=\"" + f(lx) + "\" y=\"" + f(ly - 8) + "\" width=\"10\" height=\"10\" fill=\"" +
           colour + "\"/>";
    svg += "<text x=\"" + f(lx + 14) + "\" y=\"" + f(ly + 1) + "\">" +
           escape_html(series[i].label) + "</text>";
  }
  svg += "</svg>";
  return svg;
}

}  // namespace mtsam::train
