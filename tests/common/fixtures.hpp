#pragma once

#include <cstdlib>
#include <filesystem>
#include <optional>

namespace tora::test {

/// The reference fixture folder: `MTSAM_FIXTURES` when set, else `../shared/fixtures/reference`
/// beside the source tree. Empty when neither exists, so that parity tests can skip visibly.
inline std::optional<std::filesystem::path> fixture_dir() {
  if (const char* env = std::getenv("MTSAM_FIXTURES"); env != nullptr && *env != '\0') {
    std::filesystem::path dir(env);
    if (std::filesystem::is_directory(dir)) {
      return dir;
    }
    return std::nullopt;
  }
  std::filesystem::path dir(TORA_DEFAULT_FIXTURES);
  if (std::filesystem::is_directory(dir)) {
    return std::filesystem::canonical(dir);
  }
  return std::nullopt;
}

}  // namespace tora::test
