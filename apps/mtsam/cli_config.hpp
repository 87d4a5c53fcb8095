#pragma once

// The command's configuration: a TOML file turned into the JSON that
// mtsam::train::experiment_from_json reads, with `section.key=value` overrides on top.

#include <mtsam/train/config.hpp>

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace mtsam::cli {

/// Bad input from the user (arguments, configuration): reported in one line, exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline nlohmann::json toml_to_json(const toml::node& node) {
  if (const auto* table = node.as_table()) {
    nlohmann::json json = nlohmann::json::object();
    for (const auto& [key, value] : *table) {
      json[std::string(key.str())] = toml_to_json(value);
    }
    return json;
  }
  if (const auto* array = node.as_array()) {
    nlohmann::json json = nlohmann::json::array();
    for (const auto& value : *array) {
      json.push_back(toml_to_json(value));
    }
    return json;
  }
  if (const auto* text = node.as_string()) {
    return text->get();
  }
  if (const auto* integer = node.as_integer()) {
    return integer->get();
  }
  if (const auto* number = node.as_floating_point()) {
    return number->get();
  }
  if (const auto* flag = node.as_boolean()) {
    return flag->get();
  }
  throw UsageError(
      "configuration values must be tables, arrays, strings, numbers or booleans; "
      "dates and times are not used");
}

/// A TOML file as JSON. Parse errors name the file, line and column.
inline nlohmann::json read_toml(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path)) {
    throw UsageError("configuration file '" + path.string() + "' does not exist");
  }
  try {
    return toml_to_json(toml::parse_file(path.string()));
  } catch (const toml::parse_error& e) {
    std::ostringstream message;
    message << path.string() << ":" << e.source().begin.line << ":" << e.source().begin.column
            << ": " << e.description();
    throw UsageError(message.str());
  }
}

/// The value of an override: TOML syntax when it parses (numbers, booleans, arrays, quoted
/// strings), else the text itself (so paths need no quotes).
inline nlohmann::json override_value(const std::string& text) {
  try {
    const auto table = toml::parse("value = " + text);
    if (const auto* node = table.get("value")) {
      return toml_to_json(*node);
    }
  } catch (const toml::parse_error&) {
  }
  return text;
}

/// Sets the dotted `key` of `json` to `value`, creating tables on the way.
inline void set_key(nlohmann::json& json, const std::string& key, nlohmann::json value) {
  nlohmann::json* at = &json;
  size_t begin = 0;
  while (true) {
    const size_t dot = key.find('.', begin);
    const std::string part = key.substr(begin, dot == std::string::npos ? dot : dot - begin);
    if (part.empty()) {
      throw UsageError("key '" + key + "' has an empty part");
    }
    if (!at->is_object()) {
      throw UsageError("key '" + key + "': '" + part + "' is inside a value, not a table");
    }
    if (dot == std::string::npos) {
      (*at)[part] = std::move(value);
      return;
    }
    at = &(*at)[part];
    if (at->is_null()) {
      *at = nlohmann::json::object();
    }
    begin = dot + 1;
  }
}

/// Applies `section.key=value` to `json`.
inline void apply_override(nlohmann::json& json, const std::string& assignment) {
  const auto equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0) {
    throw UsageError("--set expects KEY=VALUE (e.g. train.lr=1e-4), got '" + assignment + "'");
  }
  set_key(json, assignment.substr(0, equals), override_value(assignment.substr(equals + 1)));
}

/// The configuration: `file` (TOML, or JSON for a checkpoint's config.json; empty: defaults),
/// then every `KEY=VALUE` override in order, then `settings` (dotted key -> value), which the
/// command's own flags make. Configuration errors become UsageError.
inline train::ExperimentConfig load_config(
    const std::filesystem::path& file, const std::vector<std::string>& overrides,
    const std::vector<std::pair<std::string, nlohmann::json>>& settings = {}) {
  nlohmann::json json = nlohmann::json::object();
  if (!file.empty()) {
    if (file.extension() == ".json") {
      std::ifstream in(file);
      if (!in) {
        throw UsageError("cannot read '" + file.string() + "'");
      }
      try {
        json = nlohmann::json::parse(in);
      } catch (const nlohmann::json::exception& e) {
        throw UsageError(file.string() + ": " + e.what());
      }
    } else {
      json = read_toml(file);
    }
  }
  for (const auto& assignment : overrides) {
    apply_override(json, assignment);
  }
  for (const auto& [key, value] : settings) {
    set_key(json, key, value);
  }
  try {
    return train::experiment_from_json(json);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string(file.empty() ? "configuration" : file.string()) + ": " + e.what());
  }
}

}  // namespace mtsam::cli
