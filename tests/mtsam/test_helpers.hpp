#pragma once

// Shared by the mtsam tests: fixture files, model shapes from the fixtures' JSON, comparisons.

#include <common/fixtures.hpp>
#include <mtsam/mtsam.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace mtsam::test {

using tora::test::fixtures_or_skip;

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open ", path.string());
  return nlohmann::json::parse(in);
}

/// The largest absolute difference; fails the test when the shapes differ.
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE_MESSAGE(a.sizes() == b.sizes(), "shapes differ: ", a.sizes(), " vs ", b.sizes());
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

/// A temporary folder removed at scope exit.
class TempDir {
 public:
  explicit TempDir(const std::string& stem) {
    path_ = std::filesystem::temp_directory_path() /
            (stem + "_" + std::to_string(reinterpret_cast<std::uintptr_t>(this)) + "_" +
             std::to_string(std::rand()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace mtsam::test

namespace mtsam::test {

/// The MTSAM options a fixture JSON file describes (shape keys, `task_channels`, the ToRA ranks
/// R1, R2, R3 of the reference, `scaling`, `enable_qkv`).
inline MTSAMOptions mtsam_options_from_fixture(const nlohmann::json& json) {
  std::vector<Task> tasks;
  const auto channels = json.at("task_channels").get<std::vector<int64_t>>();
  for (size_t t = 0; t < channels.size(); ++t) {
    tasks.push_back({"task" + std::to_string(t), channels[t], TaskKind::classes});
  }
  tora::AdapterConfig adapter = default_adapter_config();
  adapter.p = json.at("R2").get<int64_t>();
  adapter.q = json.at("R1").get<int64_t>();
  adapter.v = json.at("R3").get<int64_t>();
  adapter.scaling = json.at("scaling").get<double>();
  adapter.output_blocks = json.at("enable_qkv").get<std::vector<bool>>();
  return MTSAMOptions(shape_from_json(json), tasks).adapter(adapter);
}

}  // namespace mtsam::test
