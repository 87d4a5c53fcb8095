#include <doctest/doctest.h>

#include <mtsam/data/image_io.hpp>

#include "train/tiny_problem.hpp"

#include <torch/torch.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#ifdef MTSAM_CLI

namespace {

using tora::test::TempDir;

struct Outcome {
  int status = -1;
  std::string out;
  std::string err;
};

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Outcome run_cli(const std::string& arguments, const TempDir& dir) {
  const auto out = dir.path / "stdout.txt";
  const auto err = dir.path / "stderr.txt";
  const std::string command = std::string("'") + MTSAM_CLI + "' " + arguments + " >'" +
                              out.string() + "' 2>'" + err.string() + "'";
  const int raw = std::system(command.c_str());
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, read_text(out), read_text(err)};
}

int64_t lines(const std::string& text) {
  return std::count(text.begin(), text.end(), '\n');
}

// A tiny model on tiny scenes, as in experiment_test.cpp.
std::filesystem::path write_tiny_config(const TempDir& dir) {
  const auto path = dir.path / "tiny.toml";
  std::ofstream(path) << R"(name = "tiny"
[model]
preset = "custom"
image_size = 32
[model.shape]
patch_size = 8
embed_dim = 32
depth = 2
num_heads = 2
global_attn_indexes = [1]
window_size = 2
prompt_dim = 16
mlp_dim = 32
dec_heads = 2
[adapter]
p = 4
q = 4
v = 2
[data]
dataset = "scenes"
tasks = ["semseg", "depth", "normals"]
train_count = 4
test_count = 2
height = 24
width = 32
[train]
epochs = 1
batch_size = 2
report_images = 1
device = "cpu"
)";
  return path;
}

}  // namespace

TEST_CASE("mtsam refuses bad arguments with one clear line and a non-zero status") {
  TempDir dir("cli_errors");
  const auto bad_toml = dir.path / "bad.toml";
  std::ofstream(bad_toml) << "[train]\nepochs = = 3\n";
  const auto blocker = dir.path / "a-file";
  std::ofstream(blocker) << "not a folder";
  const auto config = write_tiny_config(dir);

  struct Case {
    std::string arguments;
    std::string says;
  };
  const Case cases[] = {
      {"", "subcommand is required"},
      {"frob", "unknown command 'frob'"},
      {"train --epochs x", "--epochs"},
      {"train --no-such-flag", "--no-such-flag"},
      {"train -c '" + (dir.path / "missing.toml").string() + "'", "missing.toml"},
      {"train -c '" + bad_toml.string() + "'", "bad.toml:2:"},
      {"train -c '" + config.string() + "' -s train.lr=-1", "lr must be positive"},
      {"train -c '" + config.string() + "' -s train.epoch=3", "unknown trainer option 'epoch'"},
      {"train -c '" + config.string() + "' -s lr", "--set expects KEY=VALUE"},
      {"train -c '" + config.string() + "' -m lorax", "lorax"},
      {"train -c '" + config.string() + "' -o '" + (blocker / "run").string() + "'",
       "cannot be created"},
      {"train -c '" + config.string() + "' --require-improvement", "train.eval_before = true"},
      {"eval '" + (dir.path / "nothing").string() + "'", "neither a checkpoint folder"},
      {"info -c '" + config.string() + "' --methods lorax", "lorax"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.arguments);
    const auto outcome = run_cli(c.arguments, dir);
    CHECK(outcome.status != 0);
    CHECK(lines(outcome.err) == 1);
    CHECK(outcome.err.starts_with("mtsam: error: "));
    CHECK(outcome.err.find(c.says) != std::string::npos);
  }
}

TEST_CASE("mtsam help names every command") {
  TempDir dir("cli_help");
  const auto outcome = run_cli("--help", dir);
  CHECK(outcome.status == 0);
  for (const char* command : {"train", "eval", "predict", "merge", "info"}) {
    CHECK(outcome.out.find(command) != std::string::npos);
  }
  const auto train = run_cli("train --help", dir);
  CHECK(train.status == 0);
  CHECK(train.out.find("--resume") != std::string::npos);
}

TEST_CASE("mtsam trains, evaluates, predicts, merges and counts on a tiny configuration") {
  TempDir dir("cli_run");
  const auto config = write_tiny_config(dir);
  const auto run = dir.path / "run";
  const auto trained = run_cli("train -c '" + config.string() + "' -o '" + run.string() + "'", dir);
  REQUIRE_MESSAGE(trained.status == 0, trained.err);
  CHECK(trained.out.find("Test metrics") != std::string::npos);
  CHECK(std::filesystem::is_regular_file(run / "report.html"));
  CHECK(std::filesystem::is_regular_file(run / "results.json"));

  // Asked to improve every task, a run whose only step has learning rate 0 (the warm-up's
  // first) changes nothing, so it fails with status 4 and says why.
  const auto required =
      run_cli("train -c '" + config.string() + "' -o '" + (dir.path / "required").string() +
                  "' -s train.eval_before=true -s train.warmup_ratio=0.5 -s train.max_steps=1 "
                  "--require-improvement",
              dir);
  CHECK(required.status == 4);
  CHECK(required.out.find("Not every task improved.") != std::string::npos);
  CHECK(required.err.find("not every task improved over the evaluation before") !=
        std::string::npos);

  const auto evaluated = run_cli("eval '" + run.string() + "'", dir);
  CHECK_MESSAGE(evaluated.status == 0, evaluated.err);
  CHECK(evaluated.out.find("Abs Err") != std::string::npos);

  const auto image = dir.path / "room.png";
  mtsam::data::write_png(image, torch::randint(0, 255, {20, 30, 3}, torch::kUInt8));
  const auto predicted = run_cli("predict '" + run.string() + "' '" + image.string() + "' -o '" +
                                     (dir.path / "predicted").string() + "'",
                                 dir);
  CHECK_MESSAGE(predicted.status == 0, predicted.err);
  for (const char* task : {"semseg", "depth", "normals"}) {
    const auto png = dir.path / "predicted" / (std::string("room_") + task + ".png");
    REQUIRE(std::filesystem::is_regular_file(png));
    CHECK(mtsam::data::read_image(png).sizes() == torch::IntArrayRef({20, 30, 3}));
  }

  const auto merged =
      run_cli("merge '" + run.string() + "' -o '" + (dir.path / "merged").string() + "'", dir);
  CHECK_MESSAGE(merged.status == 0, merged.err);
  CHECK(std::filesystem::is_regular_file(dir.path / "merged" / "depth.safetensors"));
  // Every task's merged weights reproduce the adapted model.
  std::istringstream report(merged.out);
  int checked = 0;
  for (std::string line; std::getline(report, line);) {
    const auto at = line.find("random image: ");
    if (at != std::string::npos) {
      CHECK(std::stod(line.substr(at + 14)) < 1e-4);
      ++checked;
    }
  }
  CHECK(checked == 3);

  const auto info = run_cli("info -c '" + config.string() + "'", dir);
  CHECK_MESSAGE(info.status == 0, info.err);
  for (const char* method : {"lora-hps", "lora-stl", "multilora", "hydralora", "terra", "tora"}) {
    CHECK(info.out.find(method) != std::string::npos);
  }
}

#else

TEST_CASE("mtsam argument errors") {
  MESSAGE("skipped: the mtsam command is not built (TORA_BUILD_EXAMPLES is off)");
}

#endif
