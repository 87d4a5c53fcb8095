#pragma once

/// Checkpoint files of a run: atomic writes, the output folder check, and the trainer state
/// (optimiser moments, step, epoch, the generators' states, the best evaluation so far) that lets
/// a resumed run continue exactly where the saved one stopped.

#include <mtsam/train/records.hpp>
#include <tora/io/safetensors.hpp>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace mtsam::train {

/// Creates `dir` if needed and proves it writable by creating and removing a file in it.
/// Throws std::runtime_error naming the folder and the reason.
inline void ensure_writable_directory(const std::filesystem::path& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error || !std::filesystem::is_directory(dir)) {
    throw std::runtime_error("output folder '" + dir.string() + "' cannot be created: " +
                             (error ? error.message() : std::string("a file has that name")));
  }
  const auto probe =
      dir / (".write-test-" +
             std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  {
    std::ofstream out(probe);
    out << "ok";
    if (!out) {
      throw std::runtime_error("output folder '" + dir.string() +
                               "' is not writable: choose another folder or fix its permissions");
    }
  }
  std::filesystem::remove(probe, error);
}

/// Writes `content` to `path` atomically: a temporary file beside it, then a rename.
inline void write_text_atomically(const std::filesystem::path& path, std::string_view content) {
  auto temporary = path;
  temporary += ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) {
      throw std::runtime_error("cannot write '" + temporary.string() + "'");
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::filesystem::remove(temporary, error);
    throw std::runtime_error("cannot move '" + temporary.string() + "' to '" + path.string() + "'");
  }
}

/// Replaces the folder `dir` by what `fill` writes into an empty folder beside it. At any moment
/// `dir` is the complete old content or the complete new one; a crash in between leaves the old
/// one as `<dir>.old`, which `existing_checkpoint` falls back to.
inline void replace_folder_atomically(
    const std::filesystem::path& dir,
    const std::function<void(const std::filesystem::path&)>& fill) {
  namespace fs = std::filesystem;
  const fs::path temporary = dir.string() + ".tmp";
  const fs::path previous = dir.string() + ".old";
  fs::remove_all(temporary);
  fs::create_directories(temporary);
  fill(temporary);
  fs::remove_all(previous);
  if (fs::exists(dir)) {
    fs::rename(dir, previous);
  }
  fs::rename(temporary, dir);
  fs::remove_all(previous);
}

/// The checkpoint folder `dir` if complete, else the `<dir>.old` a crash left behind, else none.
inline std::optional<std::filesystem::path> existing_checkpoint(const std::filesystem::path& dir) {
  const std::filesystem::path previous = dir.string() + ".old";
  for (const auto& candidate : {dir, previous}) {
    if (std::filesystem::is_directory(candidate)) {
      return candidate;
    }
  }
  return std::nullopt;
}

/// The trainable parameters of `module` (requires_grad) by their dotted names, in module order.
inline std::vector<std::pair<std::string, torch::Tensor>> named_trainable(
    const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& item : module.named_parameters()) {
    if (item.value().requires_grad()) {
      named.emplace_back(item.key(), item.value());
    }
  }
  return named;
}

/// Writes the trainable parameters of `module` to a safetensors file (atomically).
inline void save_trainable(const torch::nn::Module& module, const std::filesystem::path& file,
                           const tora::io::Metadata& metadata = {}) {
  tora::io::NamedTensors tensors;
  for (const auto& [name, tensor] : named_trainable(module)) {
    tensors.emplace_back(name, tensor.detach().to(torch::kCPU));
  }
  tora::io::write_safetensors(file, tensors, metadata);
}

/// Copies every tensor of a safetensors file into the parameter of `module` with that name. A
/// name the module lacks, or a shape that differs, is an error naming the key and both shapes.
inline void load_trainable(torch::nn::Module& module, const std::filesystem::path& file) {
  const auto saved = tora::io::read_safetensors(file);
  auto parameters = module.named_parameters();
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : saved.tensors) {
    auto* parameter = parameters.find(name);
    if (parameter == nullptr) {
      throw std::runtime_error("checkpoint '" + file.string() + "' holds '" + name +
                               "', which the model does not have: was it saved for another "
                               "configuration (method, ranks, tasks)?");
    }
    if (parameter->sizes() != tensor.sizes()) {
      std::ostringstream message;
      message << "checkpoint '" << file.string() << "': '" << name << "' has shape "
              << tensor.sizes() << " but the model's is " << parameter->sizes();
      throw std::runtime_error(message.str());
    }
    parameter->copy_(tensor);
  }
}

/// What a run needs besides the model's weights to continue exactly.
struct TrainerState {
  int64_t step = 0;            ///< optimiser steps taken
  int64_t epoch = 0;           ///< the epoch under way (0-based)
  int64_t batch_in_epoch = 0;  ///< batches of `epoch` already used
  int64_t total_steps = 0;
  bool finished = false;            ///< the run reached its last step
  bool pending_evaluation = false;  ///< stopped where an evaluation was due, not yet made
  nlohmann::json options;           ///< trajectory_options() of the run
  std::optional<std::vector<TaskEvaluation>> reference;  ///< what Delta_b compares to
  std::optional<double> best_score;
  int64_t best_step = -1;
  tora::io::NamedTensors tensors;  ///< optimiser moments and generator states
};

namespace detail {

inline nlohmann::json reference_to_json(const std::vector<TaskEvaluation>& tasks) {
  nlohmann::json json = nlohmann::json::array();
  for (const auto& task : tasks) {
    json.push_back(to_json(task));
  }
  return json;
}

}  // namespace detail

/// Adds Adam's moments and step count of every named parameter to `tensors` as
/// `optimizer.<name>.{exp_avg,exp_avg_sq,max_exp_avg_sq,step}`.
inline void capture_adam(const torch::optim::Adam& optimizer,
                         const std::vector<std::pair<std::string, torch::Tensor>>& parameters,
                         tora::io::NamedTensors& tensors) {
  for (const auto& [name, parameter] : parameters) {
    auto found = optimizer.state().find(parameter.unsafeGetTensorImpl());
    if (found == optimizer.state().end()) {
      continue;
    }
    const auto& state = static_cast<const torch::optim::AdamParamState&>(*found->second);
    const std::string prefix = "optimizer." + name + ".";
    tensors.emplace_back(prefix + "exp_avg", state.exp_avg().to(torch::kCPU));
    tensors.emplace_back(prefix + "exp_avg_sq", state.exp_avg_sq().to(torch::kCPU));
    if (state.max_exp_avg_sq().defined()) {
      tensors.emplace_back(prefix + "max_exp_avg_sq", state.max_exp_avg_sq().to(torch::kCPU));
    }
    tensors.emplace_back(prefix + "step", torch::tensor({state.step()}, torch::kInt64));
  }
}

/// Restores what `capture_adam` saved; a parameter without saved moments starts fresh.
inline void restore_adam(torch::optim::Adam& optimizer,
                         const std::vector<std::pair<std::string, torch::Tensor>>& parameters,
                         const tora::io::SafetensorsFile& file) {
  for (const auto& [name, parameter] : parameters) {
    const std::string prefix = "optimizer." + name + ".";
    const auto* exp_avg = file.find(prefix + "exp_avg");
    const auto* exp_avg_sq = file.find(prefix + "exp_avg_sq");
    const auto* step = file.find(prefix + "step");
    if (exp_avg == nullptr || exp_avg_sq == nullptr || step == nullptr) {
      continue;
    }
    TORCH_CHECK(exp_avg->sizes() == parameter.sizes() && exp_avg_sq->sizes() == parameter.sizes(),
                "trainer state: optimiser moments of '", name, "' have shape ", exp_avg->sizes(),
                " but the parameter's is ", parameter.sizes());
    auto state = std::make_unique<torch::optim::AdamParamState>();
    state->step(step->item<int64_t>());
    state->exp_avg(exp_avg->to(parameter.options()).clone());
    state->exp_avg_sq(exp_avg_sq->to(parameter.options()).clone());
    if (const auto* max_sq = file.find(prefix + "max_exp_avg_sq")) {
      state->max_exp_avg_sq(max_sq->to(parameter.options()).clone());
    }
    optimizer.state()[parameter.unsafeGetTensorImpl()] = std::move(state);
  }
}

/// Adds the states of LibTorch's default CPU generator and of every CUDA device's generator.
inline void capture_generators(tora::io::NamedTensors& tensors) {
  auto cpu = at::globalContext().defaultGenerator(torch::kCPU);
  {
    std::lock_guard<std::mutex> lock(cpu.mutex());
    tensors.emplace_back("generator.cpu", cpu.get_state());
  }
  if (torch::cuda::is_available()) {
    for (int64_t i = 0; i < static_cast<int64_t>(torch::cuda::device_count()); ++i) {
      auto cuda = at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, i));
      std::lock_guard<std::mutex> lock(cuda.mutex());
      tensors.emplace_back("generator.cuda." + std::to_string(i), cuda.get_state());
    }
  }
}

/// Restores what `capture_generators` saved (the CUDA ones where those devices exist).
inline void restore_generators(const tora::io::SafetensorsFile& file) {
  if (const auto* state = file.find("generator.cpu")) {
    auto cpu = at::globalContext().defaultGenerator(torch::kCPU);
    std::lock_guard<std::mutex> lock(cpu.mutex());
    cpu.set_state(*state);
  }
  if (torch::cuda::is_available()) {
    for (int64_t i = 0; i < static_cast<int64_t>(torch::cuda::device_count()); ++i) {
      if (const auto* state = file.find("generator.cuda." + std::to_string(i))) {
        auto cuda = at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, i));
        std::lock_guard<std::mutex> lock(cuda.mutex());
        cuda.set_state(*state);
      }
    }
  }
}

/// Writes the trainer state as safetensors: tensors as they are, the rest as JSON in the
/// metadata entry "mtsam.trainer_state".
inline void save_trainer_state(const std::filesystem::path& file, const TrainerState& state) {
  nlohmann::json json = {{"step", state.step},
                         {"epoch", state.epoch},
                         {"batch_in_epoch", state.batch_in_epoch},
                         {"total_steps", state.total_steps},
                         {"finished", state.finished},
                         {"pending_evaluation", state.pending_evaluation},
                         {"options", state.options},
                         {"best_step", state.best_step}};
  json["best_score"] = state.best_score ? nlohmann::json(*state.best_score) : nullptr;
  json["reference"] =
      state.reference ? detail::reference_to_json(*state.reference) : nlohmann::json(nullptr);
  tora::io::write_safetensors(file, state.tensors, {{"mtsam.trainer_state", json.dump()}});
}

/// Reads what `save_trainer_state` wrote; throws naming the file when it is not a trainer state.
inline TrainerState load_trainer_state(const std::filesystem::path& file,
                                       tora::io::SafetensorsFile* raw = nullptr) {
  auto saved = tora::io::read_safetensors(file);
  const auto entry = saved.metadata.find("mtsam.trainer_state");
  if (entry == saved.metadata.end()) {
    throw std::runtime_error("'" + file.string() +
                             "' is not a trainer state: its metadata lacks mtsam.trainer_state");
  }
  TrainerState state;
  try {
    const auto json = nlohmann::json::parse(entry->second);
    state.step = json.at("step").get<int64_t>();
    state.epoch = json.at("epoch").get<int64_t>();
    state.batch_in_epoch = json.at("batch_in_epoch").get<int64_t>();
    state.total_steps = json.at("total_steps").get<int64_t>();
    state.finished = json.value("finished", false);
    state.pending_evaluation = json.value("pending_evaluation", false);
    state.options = json.at("options");
    state.best_step = json.value("best_step", int64_t{-1});
    if (json.at("best_score").is_number()) {
      state.best_score = json.at("best_score").get<double>();
    }
    if (json.at("reference").is_array()) {
      std::vector<TaskEvaluation> reference;
      for (const auto& task : json.at("reference")) {
        reference.push_back(task_evaluation_from_json(task.at("task").get<std::string>(), task));
      }
      state.reference = std::move(reference);
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("trainer state '" + file.string() + "' is damaged: " + e.what());
  }
  state.tensors = saved.tensors;
  if (raw != nullptr) {
    *raw = std::move(saved);
  }
  return state;
}

}  // namespace mtsam::train
