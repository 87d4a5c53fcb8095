#include <doctest/doctest.h>

#include <mtsam/data/image_io.hpp>
#include <mtsam/train/log.hpp>
#include <mtsam/train/records.hpp>
#include <mtsam/train/report.hpp>
#include <mtsam/train/svg.hpp>
#include <mtsam/train/trainer.hpp>

#include "train/tiny_problem.hpp"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace mtsam::train;
using tora::test::TempDir;

namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Checks that every element is closed in order (void elements and `/>` aside), that no raw '<'
// or '>' sits outside a tag, and collects the `src` of every <img>. Returns "" when well formed.
std::string check_html(const std::string& html, std::vector<std::string>& images) {
  static const std::set<std::string> void_elements = {"meta", "img", "br", "hr", "link", "input"};
  std::vector<std::string> open;
  size_t at = 0;
  while (at < html.size()) {
    const size_t lt = html.find('<', at);
    const size_t stray = html.find('>', at);
    if (stray < lt) {
      return "stray '>' at " + std::to_string(stray);
    }
    if (lt == std::string::npos) {
      break;
    }
    const size_t gt = html.find('>', lt);
    if (gt == std::string::npos) {
      return "unclosed tag at " + std::to_string(lt);
    }
    const std::string tag = html.substr(lt + 1, gt - lt - 1);
    if (tag.find('<') != std::string::npos) {
      return "'<' inside a tag at " + std::to_string(lt);
    }
    at = gt + 1;
    if (tag.starts_with("!")) {
      continue;
    }
    const bool closing = tag.starts_with("/");
    size_t end = closing ? 1 : 0;
    while (end < tag.size() && (std::isalnum(static_cast<unsigned char>(tag[end])) != 0)) {
      ++end;
    }
    const std::string name = tag.substr(closing ? 1 : 0, end - (closing ? 1 : 0));
    if (closing) {
      if (open.empty() || open.back() != name) {
        return "</" + name + "> closes <" + (open.empty() ? "nothing" : open.back()) + ">";
      }
      open.pop_back();
      continue;
    }
    if (name == "img") {
      const size_t src = tag.find("src=\"");
      if (src == std::string::npos) {
        return "<img> without src";
      }
      images.push_back(tag.substr(src + 5, tag.find('"', src + 5) - src - 5));
    }
    if (void_elements.count(name) == 0 && !tag.ends_with("/")) {
      open.push_back(name);
    }
  }
  return open.empty() ? "" : "<" + open.back() + "> never closed";
}

}  // namespace

TEST_CASE("the report is valid HTML whose pictures exist as PNG files") {
  TempDir dir("report");
  auto options = TrainerOptions()
                     .epochs(2)
                     .batch_size(4)
                     .lr(1e-2)
                     .eval_before(true)
                     .report_images(2)
                     .output_dir(dir.path);
  Trainer trainer(options, tora::test::tiny_model(1), task_heads(tora::test::tiny_specs()),
                  tora::test::tiny_source(8, 1), tora::test::tiny_source(4, 2));
  trainer.set_description("tiny <report> & test", {{"name", "tiny"}});
  REQUIRE(trainer.run().status == RunStatus::finished);

  const auto html = read_text(dir.path / "report.html");
  REQUIRE(html.starts_with("<!DOCTYPE html>"));
  std::vector<std::string> images;
  CHECK(check_html(html, images) == "");
  CHECK(html.find("tiny &lt;report&gt; &amp; test") != std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("<polyline") != std::string::npos);
  CHECK(html.find("Pix Acc") != std::string::npos);
  // Two test images: the input, then truth and prediction for each of the three tasks.
  REQUIRE(images.size() == 2 * (1 + 2 * 3));
  for (const auto& name : images) {
    CAPTURE(name);
    CHECK(name.find("..") == std::string::npos);
    const auto picture = mtsam::data::read_image(dir.path / name);
    CHECK(picture.sizes() == torch::IntArrayRef({12, 12, 3}));
  }
}

TEST_CASE("a chart escapes its labels and skips points that are not finite") {
  const auto svg =
      line_chart("loss <a>", {{"x&y", {{0, 1.0}, {1, std::nan("")}, {2, 0.5}}}}, "step");
  std::vector<std::string> images;
  CHECK(check_html(svg, images) == "");
  CHECK(svg.find("loss &lt;a&gt;") != std::string::npos);
  CHECK(svg.find("x&amp;y") != std::string::npos);
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(line_chart("empty", {}, "step").find("no data") != std::string::npos);
}

TEST_CASE("evaluations go to JSON lines and come back unchanged") {
  TempDir dir("records");
  Evaluation e;
  e.step = 12;
  e.epoch = 3;
  e.samples = 4;
  e.delta_b = 0.125;
  e.tasks.push_back({"depth", 0.5, {{"depth", "Abs Err", 0.25, false}}});
  {
    JsonLinesLog log(dir.path / "log.jsonl");
    log.write(to_json(e));
  }
  std::ofstream(dir.path / "log.jsonl", std::ios::app) << "{\"cut\": ";
  const auto lines = read_json_lines(dir.path / "log.jsonl");
  REQUIRE(lines.size() == 1);
  const auto back = evaluation_from_json(lines[0]);
  CHECK(back.step == 12);
  CHECK(back.delta_b.value() == 0.125);
  REQUIRE(back.tasks.size() == 1);
  CHECK(back.tasks[0].loss == 0.5);
  CHECK(back.tasks[0].metrics[0].name == "Abs Err");
  CHECK(back.tasks[0].metrics[0].value == 0.25);
  CHECK_FALSE(back.tasks[0].metrics[0].higher_is_better);
}

TEST_CASE("Delta_b against a baseline file counts each metric in its direction") {
  TempDir dir("baseline");
  std::ofstream(dir.path / "hps.json") << R"({"semseg": {"mIoU": 0.5}, "depth": {"Abs Err": 0.4}})";
  const auto baseline = read_results(dir.path / "hps.json");
  const std::vector<TaskEvaluation> run = {{"semseg", 0.0, {{"semseg", "mIoU", 0.6, true}}},
                                           {"depth", 0.0, {{"depth", "Abs Err", 0.3, false}}}};
  CHECK(delta_b(run, baseline).value() == doctest::Approx((0.2 + 0.25) / 2));
  // A zero baseline figure has no relative change: it is left out, and so is its task.
  const std::vector<TaskEvaluation> zero = {{"semseg", 0.0, {{"semseg", "mIoU", 0.0, true}}},
                                            {"depth", 0.0, {{"depth", "Abs Err", 0.4, false}}}};
  CHECK(delta_b(run, zero).value() == doctest::Approx(0.25));
  CHECK_FALSE(delta_b({run[0]}, zero).has_value());
  CHECK_THROWS_WITH_AS(read_results(dir.path / "missing.json"), doctest::Contains("missing.json"),
                       std::runtime_error);
}
