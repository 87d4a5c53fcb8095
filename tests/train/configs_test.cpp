// The configuration files in examples/ load, and hold the paper's settings for its benchmarks.

#include <doctest/doctest.h>

#if __has_include("cli_config.hpp")

#include "cli_config.hpp"

#include <mtsam/train.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace {

mtsam::train::ExperimentConfig example(const std::string& name) {
  return mtsam::cli::load_config(std::filesystem::path(TORA_SOURCE_DIR) / "examples" / name, {});
}

}  // namespace

TEST_CASE("the benchmark configurations hold the paper's ranks, batch sizes and recipe") {
  struct Expected {
    std::string file, dataset;
    int64_t p, v, batch, tasks;
  };
  for (const auto& e : {Expected{"nyuv2.toml", "nyuv2", 32, 8, 4, 3},
                        Expected{"cityscapes.toml", "cityscapes", 16, 4, 8, 2},
                        Expected{"pascal_context.toml", "pascal_context", 32, 8, 8, 4}}) {
    CAPTURE(e.file);
    const auto config = example(e.file);
    CHECK(config.data.dataset == e.dataset);
    CHECK(config.adapter.method == tora::Method::tora);
    CHECK(config.adapter.p == e.p);
    CHECK(config.adapter.q == e.p);
    CHECK(config.adapter.v == e.v);
    CHECK(config.adapter.scaling == 0.5);
    CHECK(config.adapter.dropout == doctest::Approx(0.1));
    CHECK(config.train.batch_size() == e.batch);
    CHECK(config.train.lr() == doctest::Approx(1e-3));
    CHECK(config.train.weight_decay() == doctest::Approx(1e-6));
    CHECK(config.train.warmup_ratio() == doctest::Approx(0.05));
    CHECK(config.train.regularizer_weight() == 1.0);
    CHECK(static_cast<int64_t>(mtsam::train::experiment_tasks(config.data).size()) == e.tasks);
  }
  CHECK(example("nyuv2.toml").train.task_weights() == std::vector<double>{1.0, 1.0, 4.0});
}

TEST_CASE("the quick start configuration loads and fine-tunes from its cached backbone") {
  const auto config = example("quickstart.toml");
  CHECK(config.data.dataset == "scenes");
  CHECK(config.adapter.method == tora::Method::tora);
  CHECK(config.model.checkpoint == ".cache/mtsam/sam_scenes_tiny.pth");
  CHECK(config.train.eval_before());
}

TEST_CASE("NYUv2's tasks carry the reference loss weights 1, 1, 4") {
  mtsam::train::DataConfig data;
  data.dataset = "nyuv2";
  const auto specs = mtsam::train::experiment_tasks(data);
  REQUIRE(specs.size() == 3);
  CHECK(specs[0].loss_weight == 1.0);
  CHECK(specs[1].loss_weight == 1.0);
  CHECK(specs[2].loss_weight == 4.0);
}

#endif
