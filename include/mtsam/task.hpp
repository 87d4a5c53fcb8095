#pragma once

/// What MTSAM predicts: a list of tasks, each with a name, a number of output channels and a
/// kind that says how its channels are read (class scores, a regressed value, a unit vector, a
/// binary mask).

#include <nlohmann/json.hpp>

#include <cstdint>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mtsam {

/// How a task's output channels are interpreted.
enum class TaskKind {
  classes,      ///< one score per class (semantic segmentation, human parts)
  regression,   ///< one or more real values per pixel (depth)
  unit_vector,  ///< a direction, L2-normalised per pixel (surface normals)
  binary,       ///< one logit per pixel (saliency, edges)
};

/// "classes", "regression", "unit_vector" or "binary".
constexpr std::string_view to_string(TaskKind kind) {
  switch (kind) {
    case TaskKind::classes:
      return "classes";
    case TaskKind::regression:
      return "regression";
    case TaskKind::unit_vector:
      return "unit_vector";
    case TaskKind::binary:
      return "binary";
  }
  return "unknown";
}

/// The kind called `name` (see to_string).
inline TaskKind task_kind_from_string(std::string_view name) {
  for (auto kind :
       {TaskKind::classes, TaskKind::regression, TaskKind::unit_vector, TaskKind::binary}) {
    if (to_string(kind) == name) {
      return kind;
    }
  }
  throw std::invalid_argument("unknown task kind '" + std::string(name) +
                              "': expected classes, regression, unit_vector or binary");
}

/// One task of the multi-task model.
struct Task {
  std::string name;                   ///< e.g. "segmentation"
  int64_t channels = 1;               ///< output channels N_t
  TaskKind kind = TaskKind::classes;  ///< how the channels are read
  bool operator==(const Task&) const = default;
};

/// Prints `name (channels kind)`.
inline std::ostream& operator<<(std::ostream& out, const Task& task) {
  return out << task.name << " (" << task.channels << " " << to_string(task.kind) << ")";
}

/// The NYUv2 tasks of the paper: 13-class segmentation, depth, surface normals.
inline std::vector<Task> nyuv2_tasks() {
  return {{"segmentation", 13, TaskKind::classes},
          {"depth", 1, TaskKind::regression},
          {"normal", 3, TaskKind::unit_vector}};
}

/// Throws std::invalid_argument unless the tasks are non-empty, uniquely named, with at least
/// one channel each (three for a unit vector).
inline void validate_tasks(const std::vector<Task>& tasks) {
  if (tasks.empty()) {
    throw std::invalid_argument("MTSAM needs at least one task");
  }
  for (size_t i = 0; i < tasks.size(); ++i) {
    const auto& task = tasks[i];
    if (task.channels < 1) {
      throw std::invalid_argument("task '" + task.name + "' needs at least one channel, got " +
                                  std::to_string(task.channels));
    }
    for (size_t j = 0; j < i; ++j) {
      if (tasks[j].name == task.name) {
        throw std::invalid_argument("two tasks are called '" + task.name + "'");
      }
    }
  }
}

inline void to_json(nlohmann::json& json, const Task& task) {
  json = nlohmann::json{{"name", task.name},
                        {"channels", task.channels},
                        {"kind", std::string(to_string(task.kind))}};
}

inline void from_json(const nlohmann::json& json, Task& task) {
  if (!json.is_object() || !json.contains("name") || !json.contains("channels")) {
    throw std::invalid_argument("a task is {\"name\", \"channels\", \"kind\"}, got " + json.dump());
  }
  task.name = json.at("name").get<std::string>();
  task.channels = json.at("channels").get<int64_t>();
  task.kind = json.contains("kind") ? task_kind_from_string(json.at("kind").get<std::string>())
                                    : TaskKind::classes;
}

}  // namespace mtsam
