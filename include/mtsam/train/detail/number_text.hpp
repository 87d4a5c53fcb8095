#pragma once

/// Numbers as text for logs, tables and reports, in the C locale whatever the program's.

#include <array>
#include <charconv>
#include <cmath>
#include <string>

namespace mtsam::train::detail {

/// `value` with `digits` significant digits, in printf's %g form ("0.000123", "1.5e+06", "nan").
inline std::string general_text(double value, int digits) {
  std::array<char, 64> buffer{};
  const auto end = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value,
                                 std::chars_format::general, digits)
                       .ptr;
  return std::string(buffer.data(), end);
}

/// `value` with `decimals` digits after the point; with `sign`, "+" before what is not negative.
inline std::string fixed_text(double value, int decimals, bool sign = false) {
  std::array<char, 64> buffer{};
  const auto end = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value,
                                 std::chars_format::fixed, decimals)
                       .ptr;
  std::string text(buffer.data(), end);
  return sign && !std::signbit(value) && !std::isnan(value) ? "+" + text : text;
}

/// A fraction as a signed percentage with two decimals: 0.2393 -> "+23.93%".
inline std::string signed_percent(double fraction) {
  return fixed_text(100.0 * fraction, 2, true) + "%";
}

}  // namespace mtsam::train::detail
