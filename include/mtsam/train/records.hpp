#pragma once

/// What a run reports: a record per optimiser step, a record per evaluation, their JSON form
/// (the lines of the run's log), and Delta_b of an evaluation against a baseline.

#include <mtsam/metrics/delta_b.hpp>
#include <mtsam/metrics/metric_value.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace mtsam::train {

/// One figure of a task, with its direction (see <mtsam/metrics/metric_value.hpp>).
using MetricValue = metrics::MetricValue;

/// Every metric of one task, and its mean loss over the evaluated samples.
struct TaskEvaluation {
  std::string task;
  double loss = std::numeric_limits<double>::quiet_NaN();
  std::vector<MetricValue> metrics;

  /// The metric called `name`, or nullptr.
  const MetricValue* find(const std::string& name) const {
    for (const auto& metric : metrics) {
      if (metric.name == name) {
        return &metric;
      }
    }
    return nullptr;
  }
};

/// One evaluation on the test split.
struct Evaluation {
  int64_t step = 0;   ///< optimiser steps taken before it
  int64_t epoch = 0;  ///< epochs completed before it
  int64_t samples = 0;
  double seconds = 0.0;
  std::vector<TaskEvaluation> tasks;
  std::optional<double> delta_b;  ///< against the run's baseline, as a fraction (0.1 = +10%)

  /// The task called `name`, or nullptr.
  const TaskEvaluation* find(const std::string& name) const {
    for (const auto& task : tasks) {
      if (task.task == name) {
        return &task;
      }
    }
    return nullptr;
  }
};

/// One optimiser step.
struct StepRecord {
  int64_t step = 0;  ///< 1-based: steps taken including this one
  int64_t total_steps = 0;
  int64_t epoch = 0;  ///< 0-based epoch the step belongs to
  double lr = 0.0;
  double loss = 0.0;         ///< weighted task losses plus lambda times the regulariser
  double task_loss = 0.0;    ///< the weighted task losses alone
  double regularizer = 0.0;  ///< the regulariser before weighting
  std::vector<std::pair<std::string, double>> task_losses;
  double seconds = 0.0;  ///< wall time since the run (or the resumed part) started
};

/// Delta_b of `run` against `baseline` (see <mtsam/metrics/delta_b.hpp>), as a fraction. Every
/// metric of `run` needs a baseline figure of the same task and name (std::invalid_argument
/// names the first that lacks one). A metric whose baseline is 0 or either value not finite
/// (say, no normal within 11.25 degrees before training) has no relative change and is left
/// out; a task left without metrics is left out; nothing left gives std::nullopt.
inline std::optional<double> delta_b(const std::vector<TaskEvaluation>& run,
                                     const std::vector<TaskEvaluation>& baseline) {
  std::vector<MetricValue> method;
  std::vector<MetricValue> reference;
  for (const auto& task : run) {
    const TaskEvaluation* base = nullptr;
    for (const auto& candidate : baseline) {
      base = candidate.task == task.task ? &candidate : base;
    }
    for (auto metric : task.metrics) {
      const MetricValue* figure = base != nullptr ? base->find(metric.name) : nullptr;
      if (figure == nullptr) {
        throw std::invalid_argument("the baseline has no figure for task '" + task.task +
                                    "' metric '" + metric.name + "'");
      }
      if (figure->value == 0.0 || !std::isfinite(figure->value) || !std::isfinite(metric.value)) {
        continue;
      }
      metric.task = task.task;
      method.push_back(std::move(metric));
      reference.push_back({task.task, figure->name, figure->value, figure->higher_is_better});
    }
  }
  if (method.empty()) {
    return std::nullopt;
  }
  return metrics::delta_b(method, reference);
}

/// JSON of a task's results: `{"task", "loss", "metrics": [{"name", "value",
/// "higher_is_better"}]}`.
inline nlohmann::json to_json(const TaskEvaluation& task) {
  nlohmann::json metrics = nlohmann::json::array();
  for (const auto& m : task.metrics) {
    metrics.push_back(
        {{"name", m.name}, {"value", m.value}, {"higher_is_better", m.higher_is_better}});
  }
  nlohmann::json json = {{"task", task.task}, {"metrics", metrics}};
  json["loss"] = std::isfinite(task.loss) ? nlohmann::json(task.loss) : nlohmann::json(nullptr);
  return json;
}

/// The log line of an evaluation (`"type": "eval"`).
inline nlohmann::json to_json(const Evaluation& e) {
  nlohmann::json tasks = nlohmann::json::array();
  for (const auto& task : e.tasks) {
    tasks.push_back(to_json(task));
  }
  nlohmann::json json = {{"type", "eval"},       {"step", e.step},       {"epoch", e.epoch},
                         {"samples", e.samples}, {"seconds", e.seconds}, {"tasks", tasks}};
  json["delta_b"] = e.delta_b ? nlohmann::json(*e.delta_b) : nlohmann::json(nullptr);
  return json;
}

/// The log line of an optimiser step (`"type": "step"`).
inline nlohmann::json to_json(const StepRecord& s) {
  nlohmann::json tasks = nlohmann::json::array();
  for (const auto& [name, loss] : s.task_losses) {
    tasks.push_back({{"task", name}, {"loss", loss}});
  }
  return {{"type", "step"},
          {"step", s.step},
          {"total_steps", s.total_steps},
          {"epoch", s.epoch},
          {"lr", s.lr},
          {"loss", s.loss},
          {"task_loss", s.task_loss},
          {"regularizer", s.regularizer},
          {"tasks", tasks},
          {"seconds", s.seconds}};
}

/// A task's results from JSON: the form `to_json` writes, or a plain `{"metric": value}` object
/// (directions then unknown: every metric counts as higher-is-better until matched to a run).
inline TaskEvaluation task_evaluation_from_json(const std::string& name, const nlohmann::json& j) {
  TaskEvaluation task;
  task.task = name;
  if (j.contains("metrics") && j.at("metrics").is_array()) {
    for (const auto& m : j.at("metrics")) {
      task.metrics.push_back({name, m.at("name").get<std::string>(), m.at("value").get<double>(),
                              m.value("higher_is_better", true)});
    }
    if (j.contains("loss") && j.at("loss").is_number()) {
      task.loss = j.at("loss").get<double>();
    }
    return task;
  }
  if (!j.is_object()) {
    throw std::invalid_argument("results of task '" + name + "' must be an object, got " +
                                j.dump());
  }
  for (const auto& item : j.items()) {
    if (!item.value().is_number()) {
      throw std::invalid_argument("metric '" + item.key() + "' of task '" + name +
                                  "' must be a number, got " + item.value().dump());
    }
    task.metrics.push_back({name, item.key(), item.value().get<double>(), true});
  }
  return task;
}

/// An evaluation from its log line.
inline Evaluation evaluation_from_json(const nlohmann::json& j) {
  Evaluation e;
  e.step = j.value("step", int64_t{0});
  e.epoch = j.value("epoch", int64_t{0});
  e.samples = j.value("samples", int64_t{0});
  e.seconds = j.value("seconds", 0.0);
  for (const auto& task : j.at("tasks")) {
    e.tasks.push_back(task_evaluation_from_json(task.at("task").get<std::string>(), task));
  }
  if (j.contains("delta_b") && j.at("delta_b").is_number()) {
    e.delta_b = j.at("delta_b").get<double>();
  }
  return e;
}

/// A step record from its log line.
inline StepRecord step_record_from_json(const nlohmann::json& j) {
  StepRecord s;
  s.step = j.at("step").get<int64_t>();
  s.total_steps = j.value("total_steps", int64_t{0});
  s.epoch = j.value("epoch", int64_t{0});
  s.lr = j.value("lr", 0.0);
  s.loss = j.value("loss", 0.0);
  s.task_loss = j.value("task_loss", s.loss);
  s.regularizer = j.value("regularizer", 0.0);
  s.seconds = j.value("seconds", 0.0);
  for (const auto& task : j.at("tasks")) {
    s.task_losses.emplace_back(task.at("task").get<std::string>(), task.at("loss").get<double>());
  }
  return s;
}

/// Reads a results file: an evaluation as `mtsam eval` writes it (`{"tasks": [...]}`), or the
/// plain form `{"<task>": {"<metric>": value, ...}, ...}`. Throws naming the path and problem.
inline std::vector<TaskEvaluation> read_results(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("cannot open the results file '" + path.string() + "'");
  }
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(in);
    if (json.contains("tasks") && json.at("tasks").is_array()) {
      return evaluation_from_json(json).tasks;
    }
    std::vector<TaskEvaluation> tasks;
    for (const auto& item : json.items()) {
      tasks.push_back(task_evaluation_from_json(item.key(), item.value()));
    }
    return tasks;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("results file '" + path.string() + "' is not valid: " + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error("results file '" + path.string() + "': " + e.what());
  }
}

}  // namespace mtsam::train
