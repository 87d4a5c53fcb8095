#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

namespace tora::test {

/// The reference fixture folder: `MTSAM_FIXTURES` when set, else `../shared/fixtures/reference`
/// beside the source tree. Empty when the default folder does not exist, so that parity tests
/// can skip visibly; a `MTSAM_FIXTURES` that names no folder is an error, since it was asked for.
inline std::optional<std::filesystem::path> fixture_dir() {
  if (const char* env = std::getenv("MTSAM_FIXTURES"); env != nullptr && *env != '\0') {
    std::filesystem::path dir(env);
    if (!std::filesystem::is_directory(dir)) {
      throw std::runtime_error("MTSAM_FIXTURES names '" + dir.string() +
                               "', expected a folder of reference fixtures there, found none");
    }
    return dir;
  }
  std::filesystem::path dir(TORA_DEFAULT_FIXTURES);
  if (std::filesystem::is_directory(dir)) {
    return std::filesystem::canonical(dir);
  }
  return std::nullopt;
}

/// How many tests of this run were skipped for want of the fixture folder; the test main turns
/// a passing run with skips into exit status 77, which CTest reports as a skip.
inline int& fixture_skips() {
  static int count = 0;
  return count;
}

/// The fixture folder, or nullopt after logging why the calling test is skipped (and counting
/// the skip).
inline std::optional<std::filesystem::path> fixtures_or_skip() {
  auto dir = fixture_dir();
  if (!dir) {
    ++fixture_skips();
    MESSAGE(
        "skipped: no reference fixture folder (set MTSAM_FIXTURES or provide "
        "../shared/fixtures/reference)");
  }
  return dir;
}

}  // namespace tora::test
