#include <doctest/doctest.h>

#include <mtsam/train/trainer.hpp>
#include <tora/io/safetensors.hpp>

#include "train/tiny_problem.hpp"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

using namespace mtsam::train;
using tora::test::TempDir;
using tora::test::tiny_model;
using tora::test::tiny_source;
using tora::test::tiny_specs;

namespace {

TrainerOptions tiny_options(const std::filesystem::path& dir) {
  return TrainerOptions()
      .epochs(3)
      .batch_size(3)
      .grad_accumulation(2)
      .lr(1e-2)
      .warmup_ratio(0.2)
      .task_weights({1.0, 1.0, 4.0})
      .eval_every(1)
      .report_images(1)
      .output_dir(dir)
      .seed(7);
}

std::vector<std::pair<std::string, torch::Tensor>> trainable(const TrainableModel& model) {
  return named_trainable(*model.module);
}

/// Trains with `heads` on 10 samples in batches of 5 (two steps an epoch, a checkpoint after
/// step 2), setting `*poisoned` once step 3 is done, and expects the run to diverge at step 4.
TrainResult run_poisoned_from_step_4(const std::filesystem::path& dir, const TrainableModel& model,
                                     const std::vector<TaskHead>& heads,
                                     const std::shared_ptr<bool>& poisoned) {
  TrainerCallbacks callbacks;
  callbacks.on_step = [poisoned](const StepRecord& s) { *poisoned = s.step == 3; };
  Trainer trainer(tiny_options(dir).batch_size(5).grad_accumulation(1), model, heads,
                  tiny_source(10, 1), tiny_source(2, 2), callbacks);
  auto result = trainer.run();
  REQUIRE(result.status == RunStatus::diverged);
  CHECK(result.steps == 3);
  return result;
}

}  // namespace

TEST_CASE("a short training run lowers the test loss of every task") {
  TempDir dir("lowers");
  auto options =
      tiny_options(dir.path).epochs(12).grad_accumulation(1).lr(3e-2).eval_before(true).eval_every(
          12);
  Trainer trainer(options, tiny_model(1), task_heads(tiny_specs()), tiny_source(10, 1),
                  tiny_source(4, 2));
  const auto result = trainer.run();
  REQUIRE(result.status == RunStatus::finished);
  REQUIRE(result.before.has_value());
  REQUIRE(result.evaluations.size() == 2);
  const auto& after = result.evaluations.back();
  for (const auto& task : after.tasks) {
    const auto* before = result.before->find(task.task);
    REQUIRE(before != nullptr);
    CHECK_MESSAGE(task.loss < 0.9 * before->loss, task.task, ": ", before->loss, " -> ", task.loss);
  }
  CHECK(after.delta_b.value() > 0.0);
  CHECK(std::filesystem::is_regular_file(dir.path / "checkpoints/last/model.safetensors"));
  CHECK(std::filesystem::is_regular_file(dir.path / "checkpoints/best/trainer_state.safetensors"));
  CHECK(std::filesystem::is_regular_file(dir.path / "log.jsonl"));
}

TEST_CASE("without task weights of its own, the trainer weighs tasks by their specs") {
  auto weighted_specs = tiny_specs();
  weighted_specs[2].loss_weight = 4.0;
  TempDir by_spec_dir("by_spec");
  auto by_spec_model = tiny_model(2);
  Trainer by_spec(tiny_options(by_spec_dir.path).epochs(1).task_weights({}), by_spec_model,
                  task_heads(weighted_specs), tiny_source(6, 1), tiny_source(2, 2));
  REQUIRE(by_spec.run().status == RunStatus::finished);
  TempDir given_dir("given");
  auto given_model = tiny_model(2);
  Trainer given(tiny_options(given_dir.path).epochs(1).task_weights({1.0, 1.0, 4.0}), given_model,
                task_heads(tiny_specs()), tiny_source(6, 1), tiny_source(2, 2));
  REQUIRE(given.run().status == RunStatus::finished);
  TempDir equal_dir("equal");
  auto equal_model = tiny_model(2);
  Trainer equal(tiny_options(equal_dir.path).epochs(1).task_weights({}), equal_model,
                task_heads(tiny_specs()), tiny_source(6, 1), tiny_source(2, 2));
  REQUIRE(equal.run().status == RunStatus::finished);
  const auto a = trainable(by_spec_model);
  const auto b = trainable(given_model);
  const auto c = trainable(equal_model);
  bool differs_from_equal = false;
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK_MESSAGE(torch::equal(a[i].second, b[i].second), a[i].first);
    differs_from_equal = differs_from_equal || !torch::equal(a[i].second, c[i].second);
  }
  CHECK(differs_from_equal);
}

TEST_CASE("checkpoints hold the trainable parameters only") {
  TempDir dir("trainable");
  auto model = tiny_model(1);
  Trainer trainer(tiny_options(dir.path).epochs(1), model, task_heads(tiny_specs()),
                  tiny_source(6, 1), tiny_source(2, 2));
  REQUIRE(trainer.run().status == RunStatus::finished);
  const auto saved = tora::io::read_safetensors(dir.path / "checkpoints/last/model.safetensors");
  CHECK(saved.find("trunk.weight") != nullptr);
  CHECK(saved.find("semseg.bias") != nullptr);
  CHECK(saved.find("stem.weight") == nullptr);
  CHECK(saved.tensors.size() == trainable(model).size());
}

TEST_CASE("a run stopped and resumed ends with the same numbers as one that was not") {
  TempDir whole_dir("whole");
  auto whole_model = tiny_model(3);
  Trainer whole(tiny_options(whole_dir.path), whole_model, task_heads(tiny_specs()),
                tiny_source(10, 1), tiny_source(4, 2));
  const auto expected = whole.run();
  REQUIRE(expected.status == RunStatus::finished);
  REQUIRE(expected.steps == 6);

  // Step 3 stops in the middle of the second epoch, step 4 at its end, and the third stop comes
  // in the middle of the evaluation after step 4.
  const std::vector<std::pair<int64_t, bool>> stops = {{3, false}, {4, false}, {4, true}};
  for (const auto& stop : stops) {
    const int64_t stop_at = stop.first;
    const bool while_evaluating = stop.second;
    CAPTURE(stop_at);
    CAPTURE(while_evaluating);
    TempDir dir("resumed");
    TrainerCallbacks stopper;
    int64_t steps_seen = 0;
    bool evaluating = false;
    stopper.on_step = [&](const StepRecord& s) {
      steps_seen = s.step;
      evaluating = false;
    };
    stopper.on_evaluation_progress = [&](int64_t done, int64_t total) {
      evaluating = done < total;
    };
    stopper.should_stop = [&] { return steps_seen == stop_at && evaluating == while_evaluating; };
    Trainer first(tiny_options(dir.path), tiny_model(3), task_heads(tiny_specs()),
                  tiny_source(10, 1), tiny_source(4, 2), stopper);
    const auto stopped = first.run();
    REQUIRE(stopped.status == RunStatus::interrupted);
    CHECK(stopped.steps == stop_at);
    CHECK((stopped.message.find("while evaluating") != std::string::npos) == while_evaluating);
    CHECK(stopped.evaluations.size() == 1);  // after step 2; the one after step 4 is pending

    // A fresh model, as a new process would build it, then resumed.
    auto resumed_model = tiny_model(3);
    torch::rand({16});  // moves the generator: the resumed run must restore its saved state
    Trainer second(tiny_options(dir.path).resume(true), resumed_model, task_heads(tiny_specs()),
                   tiny_source(10, 1), tiny_source(4, 2));
    const auto resumed = second.run();
    REQUIRE(resumed.status == RunStatus::finished);
    CHECK(resumed.steps == 6);

    const auto a = trainable(whole_model);
    const auto b = trainable(resumed_model);
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      CHECK_MESSAGE(torch::equal(a[i].second, b[i].second), a[i].first);
    }
    REQUIRE(resumed.evaluations.size() == expected.evaluations.size());
    for (size_t e = 0; e < expected.evaluations.size(); ++e) {
      const auto& x = expected.evaluations[e];
      const auto& y = resumed.evaluations[e];
      CHECK(x.step == y.step);
      for (size_t t = 0; t < x.tasks.size(); ++t) {
        CHECK(x.tasks[t].loss == y.tasks[t].loss);
        for (size_t m = 0; m < x.tasks[t].metrics.size(); ++m) {
          CHECK(x.tasks[t].metrics[m].value == y.tasks[t].metrics[m].value);
        }
      }
    }
    const auto log = read_json_lines(dir.path / "log.jsonl");
    const auto whole_log = read_json_lines(whole_dir.path / "log.jsonl");
    REQUIRE(log.size() == whole_log.size());
    for (size_t i = 0; i < log.size(); ++i) {
      CHECK(log[i].at("type") == whole_log[i].at("type"));
      CHECK(log[i].at("step") == whole_log[i].at("step"));
      if (log[i].at("type") == "step") {
        CHECK(log[i].at("loss") == whole_log[i].at("loss"));
      }
    }
  }
}

TEST_CASE("resuming with other settings than the saved run is refused") {
  TempDir dir("settings");
  Trainer first(tiny_options(dir.path).epochs(1), tiny_model(1), task_heads(tiny_specs()),
                tiny_source(6, 1), tiny_source(2, 2));
  REQUIRE(first.run().status == RunStatus::finished);
  Trainer second(tiny_options(dir.path).epochs(1).batch_size(2).resume(true), tiny_model(1),
                 task_heads(tiny_specs()), tiny_source(6, 1), tiny_source(2, 2));
  CHECK_THROWS_WITH_AS(second.run(), doctest::Contains("batch_size was 3, now 2"),
                       std::invalid_argument);

  // The described experiment (model, adapter, data) must be the same too; the name need not.
  TempDir described("described");
  const nlohmann::json config = {{"name", "first"},
                                 {"adapter", {{"method", "tora"}, {"p", 8}}},
                                 {"data", {{"seed", 0}}},
                                 {"train", {{"device", "cpu"}}}};
  TrainerCallbacks stopper;
  int64_t steps_seen = 0;
  stopper.on_step = [&](const StepRecord& s) { steps_seen = s.step; };
  stopper.should_stop = [&] { return steps_seen == 1; };
  Trainer third(tiny_options(described.path).epochs(2), tiny_model(1), task_heads(tiny_specs()),
                tiny_source(6, 1), tiny_source(2, 2), stopper);
  third.set_description("first", config);
  REQUIRE(third.run().status == RunStatus::interrupted);
  auto changed = config;
  changed["name"] = "renamed";
  changed["train"]["device"] = "cuda";
  changed["adapter"]["p"] = 16;
  Trainer fourth(tiny_options(described.path).epochs(2).resume(true), tiny_model(1),
                 task_heads(tiny_specs()), tiny_source(6, 1), tiny_source(2, 2));
  fourth.set_description("renamed", changed);
  CHECK_THROWS_WITH_AS(fourth.run(), doctest::Contains("adapter.p was 8, now 16"),
                       std::invalid_argument);
  changed["adapter"]["p"] = 8;
  Trainer fifth(tiny_options(described.path).epochs(2).resume(true), tiny_model(1),
                task_heads(tiny_specs()), tiny_source(6, 1), tiny_source(2, 2));
  fifth.set_description("renamed", changed);
  CHECK(fifth.run().status == RunStatus::finished);
}

TEST_CASE("a baseline without every reported metric is refused before training") {
  TempDir dir("baseline_gap");
  Trainer trainer(tiny_options(dir.path), tiny_model(1), task_heads(tiny_specs()),
                  tiny_source(6, 1), tiny_source(2, 2));
  std::vector<TaskEvaluation> baseline;
  for (const auto& spec : tiny_specs()) {
    TaskEvaluation task{spec.name, 0.0, {}};
    for (const auto& name : spec.reported) {
      task.metrics.push_back({spec.name, name, 0.5, true});
    }
    baseline.push_back(task);
  }
  CHECK_NOTHROW(trainer.set_baseline(baseline));
  baseline[1].metrics.pop_back();
  CHECK_THROWS_WITH(trainer.set_baseline(baseline),
                    doctest::Contains("the baseline has no 'Rel Err' for task 'depth'"));
}

TEST_CASE("resuming without a checkpoint says so") {
  TempDir dir("nothing");
  Trainer trainer(tiny_options(dir.path).resume(true), tiny_model(1), task_heads(tiny_specs()),
                  tiny_source(6, 1), tiny_source(2, 2));
  CHECK_THROWS_WITH_AS(trainer.run(), doctest::Contains("holds no checkpoint"), std::runtime_error);
}

TEST_CASE(
    "a loss that turns NaN stops the run naming the task and step and keeps the last good "
    "checkpoint") {
  TempDir dir("nan");
  auto poisoned = std::make_shared<bool>(false);
  auto heads = task_heads(tiny_specs());
  heads[1].loss = [poisoned](const torch::Tensor& output, const torch::Tensor& target) {
    auto loss = mtsam::losses::depth_loss(output, target);
    return *poisoned ? loss * std::nan("") : loss;
  };
  auto model = tiny_model(1);
  const auto result = run_poisoned_from_step_4(dir.path, model, heads, poisoned);
  CHECK(result.message.find("task 'depth'") != std::string::npos);
  CHECK(result.message.find("nan at step 4 (epoch 2)") != std::string::npos);
  CHECK(result.message.find("checkpoints/last") != std::string::npos);

  const auto last = dir.path / "checkpoints/last";
  CHECK(load_trainer_state(last / "trainer_state.safetensors").step == 2);
  const auto saved = tora::io::read_safetensors(last / "model.safetensors");
  for (const auto& [name, value] : trainable(model)) {
    const auto* tensor = saved.find(name);
    REQUIRE(tensor != nullptr);
    CHECK(torch::isfinite(*tensor).all().item<bool>());
  }
  CHECK_FALSE(
      torch::equal(*saved.find("trunk.weight"), model.module->named_parameters()["trunk.weight"]));
}

TEST_CASE("a finite loss with non-finite gradients stops the run before the step is applied") {
  TempDir dir("nan_gradient");
  auto poisoned = std::make_shared<bool>(false);
  auto heads = task_heads(tiny_specs());
  heads[0].loss = [poisoned, spec = heads[0].spec](const torch::Tensor& output,
                                                   const torch::Tensor& target) {
    auto loss = mtsam::losses::task_loss(spec, output, target);
    if (!*poisoned) {
      return loss;
    }
    // Adds exactly 0 to the loss, but its gradient is 0 * infinity: NaN.
    return loss + torch::sqrt((output - output.detach()).pow(2).sum());
  };
  auto model = tiny_model(1);
  const auto result = run_poisoned_from_step_4(dir.path, model, heads, poisoned);
  CHECK_MESSAGE(result.message.find("the gradient of '") != std::string::npos, result.message);
  CHECK(result.message.find("is not finite at step 4 (epoch 2)") != std::string::npos);
  for (const auto& [name, value] : trainable(model)) {
    CHECK_MESSAGE(torch::isfinite(value).all().item<bool>(), name);
  }
}

TEST_CASE("an output folder that cannot be written is refused before training starts") {
  TempDir dir("unwritable");
  const auto blocker = dir.path / "a-file";
  std::ofstream(blocker) << "not a folder";
  bool stepped = false;
  TrainerCallbacks callbacks;
  callbacks.on_step = [&](const StepRecord&) { stepped = true; };
  Trainer trainer(tiny_options(blocker / "run"), tiny_model(1), task_heads(tiny_specs()),
                  tiny_source(6, 1), tiny_source(2, 2), callbacks);
  CHECK_THROWS_WITH_AS(trainer.run(), doctest::Contains("cannot be created"), std::runtime_error);
  CHECK_FALSE(stepped);
}

TEST_CASE("the linear schedule warms up from 0 then decays to 0") {
  const LinearWarmupSchedule schedule(20, 0.1);
  CHECK(schedule.warmup_steps() == 2);
  CHECK(schedule.factor(0) == 0.0);
  CHECK(schedule.factor(1) == 0.5);
  CHECK(schedule.factor(2) == 1.0);
  CHECK(schedule.factor(11) == doctest::Approx(0.5));
  CHECK(schedule.factor(20) == 0.0);
  const LinearWarmupSchedule no_warmup(4, 0.0);
  CHECK(no_warmup.factor(0) == 1.0);
  CHECK(no_warmup.factor(3) == 0.25);
}

TEST_CASE("each epoch's order depends only on the seed and the epoch") {
  CHECK(epoch_order(50, 3, 1, true) == epoch_order(50, 3, 1, true));
  CHECK(epoch_order(50, 3, 1, true) != epoch_order(50, 3, 2, true));
  CHECK(epoch_order(50, 3, 1, true) != epoch_order(50, 4, 1, true));
  auto order = epoch_order(50, 3, 1, true);
  std::sort(order.begin(), order.end());
  CHECK(order == epoch_order(50, 3, 1, false));
}
