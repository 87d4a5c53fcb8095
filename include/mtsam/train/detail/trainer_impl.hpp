#pragma once

/// The body of `mtsam::train::Trainer` (declared in <mtsam/train/trainer.hpp>).

#include <mtsam/train/detail/run_checks.hpp>
#include <mtsam/train/trainer.hpp>

#include <fstream>

namespace mtsam::train {

inline void Trainer::record_evaluation(Evaluation evaluation) {
  evaluation.step = state_.step;
  evaluation.epoch = state_.epoch;
  const auto reported = reported_metrics(evaluation.tasks, heads_);
  if (!state_.reference) {
    state_.reference = reported;
  }
  evaluation.delta_b = delta_b(reported, *state_.reference);
  const double score = evaluation.delta_b.value_or(0.0);
  if (!state_.best_score || score > *state_.best_score) {
    state_.best_score = score;
    state_.best_step = evaluation.step;
    best_pending_ = true;
  }
  log_.write(to_json(evaluation));
  evaluations_.push_back(evaluation);
  if (callbacks_.on_evaluation) {
    callbacks_.on_evaluation(evaluation);
  }
}

inline Evaluation Trainer::evaluate_now() {
  auto evaluation = evaluate(model_, heads_, test_,
                             EvaluateOptions()
                                 .batch_size(options_.eval_batch_size())
                                 .max_samples(options_.max_eval_samples())
                                 .device(options_.device())
                                 .progress(callbacks_.on_evaluation_progress)
                                 .should_stop(callbacks_.should_stop));
  model_.module->train();
  return evaluation;
}

inline void Trainer::save_checkpoint(torch::optim::Adam& optimizer) {
  TrainerState saved = state_;
  saved.tensors.clear();
  capture_adam(optimizer, parameters_, saved.tensors);
  capture_generators(saved.tensors);
  const auto last = checkpoint_dir("last");
  replace_folder_atomically(last, [&](const std::filesystem::path& folder) {
    model_.save_to(folder);
    save_trainer_state(folder / "trainer_state.safetensors", saved);
    if (!config_.is_null()) {
      write_text_atomically(folder / "config.json", config_.dump(2) + "\n");
    }
  });
  checkpoint_written_ = true;
  if (callbacks_.on_checkpoint) {
    callbacks_.on_checkpoint(last);
  }
  if (best_pending_ && options_.save_best()) {
    const auto best = checkpoint_dir("best");
    replace_folder_atomically(best, [&](const std::filesystem::path& folder) {
      std::filesystem::copy(last, folder, std::filesystem::copy_options::recursive);
    });
    if (callbacks_.on_checkpoint) {
      callbacks_.on_checkpoint(best);
    }
  }
  best_pending_ = false;
}

inline void Trainer::resume(torch::optim::Adam& optimizer) {
  const auto folder = existing_checkpoint(checkpoint_dir("last"));
  if (!folder) {
    throw std::runtime_error("cannot resume: '" + checkpoint_dir("last").string() +
                             "' holds no checkpoint; start the run without resume");
  }
  tora::io::SafetensorsFile raw;
  TrainerState saved = load_trainer_state(*folder / "trainer_state.safetensors", &raw);
  const auto differences = detail::option_differences(saved.options, state_.options);
  if (!differences.empty()) {
    throw std::invalid_argument("cannot resume '" + folder->string() +
                                "' with other settings than it was started with (" + differences +
                                "); resume with the saved settings or use a new output folder");
  }
  // The model, adapter and data settings the run was described with (set_description): a
  // resumed run must continue the same experiment. Its trainer options were compared above;
  // the name only titles the report.
  if (const auto saved_config = *folder / "config.json";
      config_.is_object() && std::filesystem::exists(saved_config)) {
    nlohmann::json was;
    try {
      std::ifstream in(saved_config);
      in >> was;
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error("cannot resume: '" + saved_config.string() +
                               "' is not valid JSON (" + e.what() + ")");
    }
    const auto changed = detail::option_differences(was, config_, {"name", "train"});
    if (!changed.empty()) {
      throw std::invalid_argument("cannot resume '" + folder->string() +
                                  "' with another configuration than it was started with (" +
                                  changed +
                                  "); resume with the saved settings or use a new output folder");
    }
  }
  if (saved.total_steps != state_.total_steps) {
    throw std::invalid_argument(
        "cannot resume '" + folder->string() + "': it was planned for " +
        std::to_string(saved.total_steps) + " steps but the same settings now give " +
        std::to_string(state_.total_steps) + " (has the training split changed size?)");
  }
  model_.load_from(*folder);
  restore_adam(optimizer, parameters_, raw);
  restore_generators(raw);
  state_ = std::move(saved);
  state_.tensors.clear();

  const auto log_path = options_.output_dir() / "log.jsonl";
  for (const auto& record : read_json_lines(log_path)) {
    if (record.value("step", int64_t{0}) > state_.step) {
      continue;
    }
    if (record.value("type", "") == "step") {
      steps_.push_back(step_record_from_json(record));
    } else if (record.value("type", "") == "eval") {
      evaluations_.push_back(evaluation_from_json(record));
    }
  }
  log_ = JsonLinesLog(log_path, state_.step);
}

inline void Trainer::update_report(const std::string& status) {
  ReportData data;
  data.title = title_;
  data.status = status;
  for (const auto& head : heads_) {
    data.tasks.push_back(head.spec);
  }
  data.steps = steps_;
  data.evaluations = evaluations_;
  data.baseline = baseline_;
  data.best_step = state_.best_step;
  data.config = config_;
  data.pictures = draw_predictions(model_, heads_, test_, options_.report_images(),
                                   options_.output_dir(), options_.device());
  model_.module->train();
  write_report(options_.output_dir() / "report.html", data);
}

inline TrainResult Trainer::run() {
  start_ = std::chrono::steady_clock::now();
  ensure_writable_directory(options_.output_dir());
  const auto device = options_.device();
  model_.module->to(device);
  parameters_ = named_trainable(*model_.module);
  TORCH_CHECK(!parameters_.empty(), "Trainer: the model has no trainable parameter");
  std::vector<torch::Tensor> tensors;
  for (const auto& [name, tensor] : parameters_) {
    tensors.push_back(tensor);
  }
  torch::optim::Adam optimizer(tensors, torch::optim::AdamOptions(options_.lr())
                                            .betas({options_.beta1(), options_.beta2()})
                                            .eps(options_.adam_eps())
                                            .weight_decay(options_.weight_decay()));

  const int64_t samples = train_.size;
  const int64_t batch = options_.batch_size();
  const int64_t batches = options_.drop_last() ? samples / batch : (samples + batch - 1) / batch;
  TORCH_CHECK(batches >= 1, "the training split has ", samples, " samples, less than one batch of ",
              batch, "; lower batch_size or keep drop_last off");
  const int64_t accumulation = options_.grad_accumulation();
  const LinearWarmupSchedule schedule(
      options_.epochs() * ((batches + accumulation - 1) / accumulation), options_.warmup_ratio());
  const auto weights = normalised_weights();

  steps_.clear();
  evaluations_.clear();
  checkpoint_written_ = false;
  best_pending_ = false;
  state_ = TrainerState{};
  state_.total_steps = schedule.total_steps();
  state_.options = trajectory_options(options_);
  if (options_.resume()) {
    resume(optimizer);
  } else {
    torch::manual_seed(options_.seed());
    log_ = JsonLinesLog(options_.output_dir() / "log.jsonl", int64_t{-1});
  }
  if (baseline_) {
    state_.reference = baseline_;
  }
  const int64_t limit = options_.max_steps() > 0
                            ? std::min(options_.max_steps(), schedule.total_steps())
                            : schedule.total_steps();

  TrainResult result;
  const auto finish = [&](RunStatus status, std::string message) {
    result.status = status;
    result.message = std::move(message);
    result.steps = state_.step;
    result.evaluations = evaluations_;
    for (const auto& e : evaluations_) {
      if (e.step == 0 && !result.before) {
        result.before = e;
      }
      if (e.step == state_.best_step) {
        result.best = e;
      }
    }
    if (checkpoint_written_ || existing_checkpoint(checkpoint_dir("last"))) {
      result.last_checkpoint = checkpoint_dir("last");
    }
    result.report = options_.output_dir() / "report.html";
    update_report(std::string(to_string(status)) + ": " + result.message);
    return result;
  };

  // Stopping saves the state; an evaluation that was due (or cut short) is made on resume.
  const auto stop_here = [&](bool evaluation_pending, const std::string& where) {
    state_.pending_evaluation = evaluation_pending;
    save_checkpoint(optimizer);
    return finish(RunStatus::interrupted,
                  "stopped" + where + " at step " + std::to_string(state_.step) + " of " +
                      std::to_string(limit) + "; the state is saved in '" +
                      checkpoint_dir("last").string() + "', resume to continue");
  };
  // Records an evaluation; false when should_stop cut it short.
  const auto evaluated = [&] {
    try {
      record_evaluation(evaluate_now());
      return true;
    } catch (const EvaluationInterrupted&) {
      return false;
    }
  };

  if ((options_.eval_before() && state_.step == 0 && evaluations_.empty()) ||
      state_.pending_evaluation) {
    state_.pending_evaluation = false;
    if (!evaluated()) {
      return stop_here(true, " while evaluating");
    }
    save_checkpoint(optimizer);
    update_report("running: step " + std::to_string(state_.step) + " of " + std::to_string(limit));
  }

  model_.module->train();
  while (state_.step < limit && state_.epoch < options_.epochs()) {
    const auto order = epoch_order(samples, options_.seed(), state_.epoch, options_.shuffle());
    bool stop = false;
    while (state_.batch_in_epoch < batches && state_.step < limit && !stop) {
      const int64_t group_end = std::min(batches, state_.batch_in_epoch + accumulation);
      const int64_t group_samples =
          std::min(samples, group_end * batch) - state_.batch_in_epoch * batch;
      optimizer.zero_grad();
      std::vector<double> task_losses(heads_.size(), 0.0);
      for (int64_t b = state_.batch_in_epoch; b < group_end; ++b) {
        const std::vector<int64_t> indices(order.begin() + b * batch,
                                           order.begin() + std::min(samples, (b + 1) * batch));
        auto [images, targets] = load_batch(train_, indices, state_.epoch, heads_, device);
        const auto outputs = model_.forward(images);
        TORCH_CHECK(outputs.size() == heads_.size(), "the model returned ", outputs.size(),
                    " outputs for ", heads_.size(), " tasks");
        const double share =
            static_cast<double>(indices.size()) / static_cast<double>(group_samples);
        torch::Tensor loss;
        for (size_t t = 0; t < heads_.size(); ++t) {
          const auto task_loss = heads_[t].compute_loss(outputs[t], targets[t]);
          const double value = task_loss.item<double>();
          if (!std::isfinite(value)) {
            optimizer.zero_grad();
            return finish(RunStatus::diverged,
                          diverged_message("the loss of task '" + heads_[t].spec.name + "'",
                                           detail::general_text(value, 6)));
          }
          task_losses[t] += value * share;
          loss = loss.defined() ? loss + weights[t] * task_loss : weights[t] * task_loss;
        }
        (loss * share).backward();
      }
      double regularizer = 0.0;
      if (model_.regularizer) {
        const auto value = model_.regularizer();
        regularizer = value.item<double>();
        if (!std::isfinite(regularizer)) {
          optimizer.zero_grad();
          return finish(RunStatus::diverged,
                        diverged_message("the regulariser", detail::general_text(regularizer, 6)));
        }
        if (options_.regularizer_weight() > 0.0) {
          (options_.regularizer_weight() * value).backward();
        }
      }
      // Finite losses can still give non-finite gradients (an overflow in the backward); one
      // such step would write NaN into every parameter that Adam touches.
      if (const auto bad = detail::first_non_finite_gradient(parameters_)) {
        optimizer.zero_grad();
        return finish(RunStatus::diverged,
                      diverged_message("the gradient of '" + *bad + "'", "not finite"));
      }
      if (options_.max_grad_norm() > 0.0) {
        torch::nn::utils::clip_grad_norm_(tensors, options_.max_grad_norm());
      }
      const double lr = schedule.apply(optimizer, options_.lr(), state_.step);
      optimizer.step();
      ++state_.step;
      state_.batch_in_epoch = group_end;

      StepRecord record;
      record.step = state_.step;
      record.total_steps = schedule.total_steps();
      record.epoch = state_.epoch;
      record.lr = lr;
      record.regularizer = regularizer;
      record.loss = options_.regularizer_weight() * regularizer;
      for (size_t t = 0; t < heads_.size(); ++t) {
        record.task_losses.emplace_back(heads_[t].spec.name, task_losses[t]);
        record.task_loss += weights[t] * task_losses[t];
      }
      record.loss += record.task_loss;
      record.seconds = seconds();
      log_.write(to_json(record));
      steps_.push_back(record);
      if (callbacks_.on_step && (state_.step % options_.log_every() == 0 || state_.step == limit)) {
        callbacks_.on_step(record);
      }
      stop = callbacks_.should_stop && callbacks_.should_stop();
    }

    if (state_.batch_in_epoch >= batches) {
      ++state_.epoch;
      state_.batch_in_epoch = 0;
    }
    const bool done = state_.step >= limit || state_.epoch >= options_.epochs();
    const bool at_epoch_end = state_.batch_in_epoch == 0;
    const bool evaluation_due = done || (at_epoch_end && options_.eval_every() > 0 &&
                                         state_.epoch % options_.eval_every() == 0);
    state_.finished = done;
    if (stop && !done) {
      return stop_here(evaluation_due, "");
    }
    if (evaluation_due && !evaluated()) {
      return stop_here(true, " while evaluating");
    }
    if (at_epoch_end || done) {
      save_checkpoint(optimizer);
    }
    if (evaluation_due && !done) {
      update_report("running: step " + std::to_string(state_.step) + " of " +
                    std::to_string(limit));
    }
  }
  return finish(RunStatus::finished, std::to_string(state_.step) + " steps, " +
                                         std::to_string(state_.epoch) + " epochs, " +
                                         detail::general_text(seconds(), 6) + " s");
}

inline std::string Trainer::diverged_message(const std::string& subject,
                                             const std::string& value) const {
  std::string message = subject + " is " + value + " at step " + std::to_string(state_.step + 1) +
                        " (epoch " + std::to_string(state_.epoch + 1) +
                        "); the step was not applied. ";
  const auto last = existing_checkpoint(checkpoint_dir("last"));
  message += last ? "The last good checkpoint is '" + last->string() + "'."
                  : std::string("No checkpoint had been written yet.");
  return message;
}

}  // namespace mtsam::train
