#pragma once

/// The run log: one JSON object per line, appended and flushed as the run goes.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mtsam::train {

/// Reads a JSON-lines file; blank lines and a last line cut short by a crash are skipped, any
/// other malformed line is an error naming the path and the line number.
inline std::vector<nlohmann::json> read_json_lines(const std::filesystem::path& path) {
  std::vector<nlohmann::json> records;
  std::ifstream in(path);
  if (!in) {
    return records;
  }
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find_first_not_of(" \t\r") == std::string::npos) {
      continue;
    }
    try {
      records.push_back(nlohmann::json::parse(lines[i]));
    } catch (const nlohmann::json::exception&) {
      if (i + 1 == lines.size()) {
        break;
      }
      throw std::runtime_error("log '" + path.string() + "' line " + std::to_string(i + 1) +
                               " is not JSON");
    }
  }
  return records;
}

/// Appends JSON records to a file, one line each, flushed at once.
class JsonLinesLog {
 public:
  JsonLinesLog() = default;

  /// Opens `path` for appending. With `keep_through_step`, first rewrites the file without the
  /// records whose "step" is larger (what a resumed run is about to redo).
  explicit JsonLinesLog(const std::filesystem::path& path,
                        std::optional<int64_t> keep_through_step = std::nullopt)
      : path_(path) {
    if (keep_through_step) {
      auto kept = read_json_lines(path);
      std::ofstream out(path, std::ios::trunc);
      for (const auto& record : kept) {
        if (record.value("step", int64_t{0}) <= *keep_through_step) {
          out << record.dump() << '\n';
        }
      }
      if (!out) {
        throw std::runtime_error("cannot rewrite the log '" + path.string() + "'");
      }
    }
    out_.open(path, std::ios::app);
    if (!out_) {
      throw std::runtime_error("cannot open the log '" + path.string() + "' for writing");
    }
  }

  /// Appends `record` as one line.
  void write(const nlohmann::json& record) {
    if (!out_.is_open()) {
      return;
    }
    out_ << record.dump() << '\n';
    out_.flush();
    if (!out_) {
      throw std::runtime_error("cannot write to the log '" + path_.string() + "'");
    }
  }

  /// The file written to.
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::ofstream out_;
};

}  // namespace mtsam::train
