#include <doctest/doctest.h>

#include <mtsam/train.hpp>

#include "train/tiny_problem.hpp"

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

using namespace mtsam::train;
using tora::test::TempDir;

namespace {

// A tiny MTSAM on 24x32 scenes: 32-pixel encoder input, 8-pixel patches (4x4 grid).
nlohmann::json tiny_experiment(const std::filesystem::path& out) {
  return {{"name", "tiny"},
          {"model",
           {{"preset", "custom"},
            {"image_size", 32},
            {"shape",
             {{"patch_size", 8},
              {"embed_dim", 32},
              {"depth", 2},
              {"num_heads", 2},
              {"global_attn_indexes", {1}},
              {"window_size", 2},
              {"prompt_dim", 16},
              {"mlp_dim", 32},
              {"dec_heads", 2}}}}},
          {"adapter", {{"method", "tora"}, {"p", 4}, {"q", 4}, {"v", 2}}},
          {"data",
           {{"dataset", "scenes"},
            {"train_count", 8},
            {"test_count", 4},
            {"height", 24},
            {"tasks", {"semseg", "depth", "normals"}},
            {"width", 32},
            {"augment", false}}},
          {"train",
           {{"epochs", 8},
            {"batch_size", 4},
            {"lr", 3e-3},
            {"warmup_ratio", 0.0},
            {"eval_before", true},
            {"eval_every", 10},
            {"report_images", 1},
            {"output_dir", out.string()}}}};
}

}  // namespace

TEST_CASE(
    "ToRA fine-tuning of a tiny MTSAM on scenes lowers the loss of every task, and its "
    "checkpoint folder restores the trained model") {
  TempDir dir("mtsam");
  const auto config = experiment_from_json(tiny_experiment(dir.path));
  const auto specs = experiment_tasks(config.data);
  REQUIRE(specs.size() == 3);
  torch::manual_seed(0);
  auto model = build_model(config, specs);
  auto [train, test] = experiment_data(config, specs);
  Trainer trainer(config.train, trainable_model(model, config.regularizer), task_heads(specs),
                  train, test);
  trainer.set_description(config.name, to_json(config));
  const auto result = trainer.run();
  REQUIRE(result.status == RunStatus::finished);
  REQUIRE(result.before.has_value());
  const auto& after = result.evaluations.back();
  for (const auto& task : after.tasks) {
    const auto* before = result.before->find(task.task);
    REQUIRE(before != nullptr);
    CHECK_MESSAGE(task.loss < before->loss, task.task, ": ", before->loss, " -> ", task.loss);
  }

  // The checkpoint folder restores the trained model.
  {
    const auto folder = dir.path / "checkpoints/last";
    CHECK(std::filesystem::is_regular_file(folder / "adapters.safetensors"));
    CHECK(std::filesystem::is_regular_file(folder / "adapter_config.json"));
    CHECK(std::filesystem::is_regular_file(folder / "config.json"));
    torch::manual_seed(0);
    auto fresh = build_model(config, specs);
    auto restored = trainable_model(fresh, config.regularizer);
    restored.load_from(folder);
    const auto again = evaluate(restored, task_heads(specs), test,
                                EvaluateOptions().batch_size(config.train.eval_batch_size()));
    for (size_t t = 0; t < after.tasks.size(); ++t) {
      CHECK(again.tasks[t].loss == doctest::Approx(after.tasks[t].loss).epsilon(1e-6));
    }
  }
}

TEST_CASE("experiment configurations refuse unknown keys and bad values by name") {
  CHECK_THROWS_WITH_AS(experiment_from_json({{"modle", {}}}), doctest::Contains("'modle'"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(experiment_from_json({{"train", {{"epoch", 3}}}}),
                       doctest::Contains("unknown trainer option 'epoch'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(experiment_from_json({{"train", {{"lr", -1.0}}}}),
                       doctest::Contains("lr must be positive"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(experiment_from_json({{"adapter", {{"method", "lorax"}}}}),
                       doctest::Contains("lorax"), std::invalid_argument);
  DataConfig edges;
  edges.dataset = "nyuv2";
  edges.tasks = {"edges"};
  CHECK_THROWS_WITH_AS(experiment_tasks(edges), doctest::Contains("no task 'edges'"),
                       std::invalid_argument);
  const auto defaults = experiment_from_json(nlohmann::json::object());
  CHECK(defaults.train.lr() == 1e-3);
  CHECK(defaults.train.weight_decay() == 1e-6);
  CHECK(defaults.train.warmup_ratio() == 0.05);
  CHECK(defaults.train.regularizer_weight() == 1.0);
  CHECK(defaults.adapter.dropout == 0.1);
  CHECK(defaults.adapter.method == tora::Method::tora);
}

TEST_CASE("a task exported as a SAM checkpoint reads back with the official key names") {
  TempDir dir("sam_export");
  auto json = tiny_experiment(dir.path);
  json["data"]["tasks"] = {"semseg", "saliency"};
  const auto config = experiment_from_json(json);
  const auto specs = experiment_tasks(config.data);
  torch::manual_seed(0);
  auto model = build_model(config, specs);
  const auto exported = sam_state_dict_from_task(*model, 1);
  const auto file = dir.path / "sam_tiny.pth";
  write_pth(file, exported);

  const auto read = mtsam::read_checkpoint(file);
  REQUIRE(read.size() == exported.size());
  for (const auto& item : exported) {
    const auto* found = read.find(item.key());
    REQUIRE_MESSAGE(found != nullptr, item.key());
    CHECK(torch::equal(*found, item.value()));
  }
  CHECK(torch::equal(read["mask_decoder.iou_token.weight"],
                     model->named_parameters()["decoders.1.iou_token.weight"]));
  CHECK(torch::equal(read["prompt_encoder.no_mask_embed.weight"],
                     model->named_parameters()["task_embeddings.1"]));
  mtsam::Sam sam(model->options.shape());
  CHECK_NOTHROW(mtsam::load_sam(*sam, file));
}
