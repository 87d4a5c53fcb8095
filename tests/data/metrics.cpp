// Metrics, losses and Delta_b: parity with the reference code's fixture and the paper's tables.

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <mtsam/losses/dense.hpp>
#include <mtsam/metrics/delta_b.hpp>
#include <mtsam/metrics/depth.hpp>
#include <mtsam/metrics/normals.hpp>
#include <mtsam/metrics/saliency.hpp>
#include <mtsam/metrics/segmentation.hpp>
#include <mtsam/metrics/task_meter.hpp>

#include "common/fixtures.hpp"

namespace md = mtsam::data;
namespace ml = mtsam::losses;
namespace mm = mtsam::metrics;

namespace {

std::map<std::string, torch::Tensor> load_fixture(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  std::map<std::string, torch::Tensor> out;
  for (const auto& entry : torch::pickle_load(bytes).toGenericDict()) {
    out[entry.key().toStringRef()] = entry.value().toTensor();
  }
  return out;
}

// Within 1e-5 of `expected`, relatively.
bool close(double actual, double expected) {
  return std::abs(actual - expected) <= 1e-5 * std::abs(expected);
}

std::vector<mm::MetricValue> row(const std::vector<std::string>& tasks,
                                 const std::vector<std::string>& names,
                                 const std::vector<double>& values,
                                 const std::vector<bool>& higher) {
  std::vector<mm::MetricValue> out;
  for (size_t i = 0; i < values.size(); ++i) {
    out.push_back({tasks[i], names[i], values[i], higher[i]});
  }
  return out;
}

double rounded_percent(double fraction) {
  return std::round(fraction * 10000.0) / 100.0;
}

}  // namespace

TEST_CASE("the NYUv2 metrics and losses match the reference code on its fixture" *
          doctest::test_suite("fixtures")) {
  const auto dir = tora::test::fixtures_or_skip();
  if (!dir) {
    return;
  }
  auto f = load_fixture(*dir / "nyuv2_metrics.pth");
  const auto ref = [&](const char* key) { return f.at(key).item<double>(); };

  // The reference evaluated the whole batch of two images at once: pooled figures.
  mm::SegmentationMetric seg(13);
  seg.update(f.at("logits"), f.at("label"));
  CHECK(close(seg.miou(), ref("miou")));
  CHECK(close(seg.pixel_accuracy(), ref("pix_acc")));

  mm::DepthMetric depth(md::Aggregation::pooled);
  depth.update(f.at("depth_pred"), f.at("depth"));
  CHECK(close(depth.abs_err(), ref("abs_err")));
  CHECK(close(depth.rel_err(), ref("rel_err")));

  mm::NormalMetric normals(md::Aggregation::pooled);
  normals.update(f.at("normal_pred"), f.at("normal"));
  CHECK(close(normals.mean(), ref("normal_mean")));
  CHECK(close(normals.median(), ref("normal_median")));
  CHECK(close(normals.within(0), ref("within_11_25")));
  CHECK(close(normals.within(1), ref("within_22_5")));
  CHECK(close(normals.within(2), ref("within_30")));

  CHECK(close(ml::segmentation_loss(f.at("logits"), f.at("label"), -1).item<double>(),
              ref("seg_loss")));
  CHECK(close(ml::depth_loss(f.at("depth_pred"), f.at("depth")).item<double>(), ref("depth_loss")));
  CHECK(close(ml::normal_loss(f.at("normal_pred"), f.at("normal")).item<double>(),
              ref("normal_loss")));
}

TEST_CASE("per-image aggregation is the mean of each image's own figures") {
  torch::manual_seed(3);
  const auto pred_d = torch::rand({3, 1, 5, 6}) + 0.1;
  auto gt_d = torch::rand({3, 1, 5, 6}) + 0.5;
  gt_d.slice(3, 0, 2).zero_();
  const auto pred_n = torch::randn({3, 3, 5, 6});
  auto gt_n = torch::nn::functional::normalize(
      torch::randn({3, 3, 5, 6}), torch::nn::functional::NormalizeFuncOptions().dim(1));
  gt_n.slice(2, 0, 1).zero_();

  mm::DepthMetric depth;
  mm::NormalMetric normals;
  depth.update(pred_d, gt_d);
  normals.update(pred_n, gt_n);
  double abs = 0, rel = 0, mean = 0, median = 0, w30 = 0;
  for (int64_t b = 0; b < 3; ++b) {
    mm::DepthMetric d1(md::Aggregation::pooled);
    mm::NormalMetric n1(md::Aggregation::pooled);
    d1.update(pred_d.slice(0, b, b + 1), gt_d.slice(0, b, b + 1));
    n1.update(pred_n.slice(0, b, b + 1), gt_n.slice(0, b, b + 1));
    abs += d1.abs_err() / 3;
    rel += d1.rel_err() / 3;
    mean += n1.mean() / 3;
    median += n1.median() / 3;
    w30 += n1.within(2) / 3;
  }
  CHECK(close(depth.abs_err(), abs));
  CHECK(close(depth.rel_err(), rel));
  CHECK(close(normals.mean(), mean));
  CHECK(close(normals.median(), median));
  CHECK(close(normals.within(2), w30));

  mm::DepthMetric pooled(md::Aggregation::pooled);
  pooled.update(pred_d.slice(0, 0, 2), gt_d.slice(0, 0, 2));
  pooled.update(pred_d.slice(0, 2, 3), gt_d.slice(0, 2, 3));
  const auto valid = gt_d.ne(0);
  CHECK(close(pooled.abs_err(), (pred_d - gt_d).abs().masked_select(valid).mean().item<double>()));
}

TEST_CASE("an unseen class counts zero in PASCAL's mIoU and is left out in NYUv2's") {
  const auto target = torch::tensor({0, 0, 1, 1, 255}, torch::kInt64).view({1, 1, 5});
  const auto pred = torch::tensor({0, 1, 1, 1, 2}, torch::kInt64).view({1, 1, 5});
  mm::SegmentationMetric skip(3);
  mm::SegmentationMetric zero(3, true);
  skip.update(pred, target);
  zero.update(pred, target);
  // Class 0: 1 / 2; class 1: 2 / 3; class 2: never in the target nor predicted on counted pixels.
  CHECK(close(skip.miou(), (0.5 + 2.0 / 3.0) / 2.0));
  CHECK(close(zero.miou(), (0.5 + 2.0 / 3.0) / 3.0));
  CHECK(close(zero.pixel_accuracy(), 3.0 / 4.0));
  CHECK(zero.confusion().sum().item<int64_t>() == 4);
  // A label map prediction out of range where the target counts is refused, not clamped.
  CHECK_THROWS_WITH(
      skip.update(torch::tensor({0, 3, 1, 1, 2}, torch::kInt64).view({1, 1, 5}), target),
      doctest::Contains("must be in [0, 3) where the target is valid, got values "
                        "from 0 to 3"));
}

TEST_CASE("saliency maxF and max mIoU average precision, recall and IoU over images") {
  mm::SaliencyMetric sal({0.2, 0.6}, false);
  // Image 1: the ignored last pixel does not count. Image 2: nothing salient, nothing predicted.
  sal.update(torch::tensor({0.1f, 0.5f, 0.95f, 0.3f}).view({1, 1, 2, 2}),
             torch::tensor({0.0f, 1.0f, 1.0f, 255.0f}).view({1, 1, 2, 2}));
  sal.update(torch::zeros({1, 1, 2, 2}), torch::zeros({1, 1, 2, 2}));
  const auto miou = sal.miou_per_threshold();
  CHECK(close(miou[0].item<double>(), 1.0));
  CHECK(close(miou[1].item<double>(), 0.75));
  // Averaged P, R: threshold 0.2 -> 0.5, 0.5 (F 0.5); 0.6 -> 0.5, 0.25 (F 1/3).
  CHECK(close(sal.max_f(), 0.5));
  CHECK(close(sal.max_miou(), 1.0));
  CHECK(mm::SaliencyMetric::default_thresholds().size() == 15);
  CHECK(close(mm::SaliencyMetric::default_thresholds().back(), 0.9));
}

TEST_CASE("the PASCAL losses follow their definitions and ignore what they should") {
  torch::manual_seed(5);
  const auto logits = torch::randn({2, 1, 4, 4}) * 3;
  auto target = torch::rand({2, 1, 4, 4}).gt(0.7).to(torch::kFloat32);
  target[0][0][0][0] = 255;
  const auto valid = target.ne(255);
  const auto pos = target.eq(1);
  const auto neg = target.eq(0);
  const auto bce = torch::nn::functional::binary_cross_entropy_with_logits(
      logits, target.clamp_max(1),
      torch::nn::functional::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  const double n = valid.sum().item<double>();
  const double w = neg.sum().item<double>() / n;
  const double expected = (w * bce.masked_select(pos).sum().item<double>() +
                           (1 - w) * bce.masked_select(neg).sum().item<double>()) /
                          n;
  CHECK(close(ml::balanced_bce_loss(logits, target).item<double>(), expected));

  const auto pred = torch::randn({2, 3, 4, 4});
  auto gt = torch::nn::functional::normalize(torch::randn({2, 3, 4, 4}),
                                             torch::nn::functional::NormalizeFuncOptions().dim(1));
  gt.slice(3, 0, 1).zero_();
  const auto unit =
      torch::nn::functional::normalize(pred, torch::nn::functional::NormalizeFuncOptions().dim(1));
  const auto l1 = (unit - gt).abs().slice(3, 1, 4).mean().item<double>();
  CHECK(close(ml::normal_l1_loss(pred, gt).item<double>(), l1));

  auto labels = torch::randint(0, 5, {2, 4, 4});
  labels[0][0][0] = 255;
  const auto seg_logits = torch::randn({2, 5, 4, 4});
  const auto ce = torch::nn::functional::cross_entropy(
      seg_logits, labels, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(255));
  CHECK(close(ml::segmentation_loss(seg_logits, labels, 255).item<double>(), ce.item<double>()));
}

TEST_CASE("losses on targets without a valid pixel are zero, not NaN, and keep the graph") {
  const auto logits = torch::randn({1, 4, 2, 2}, torch::requires_grad());
  const auto none = torch::full({1, 2, 2}, -1, torch::kInt64);
  const auto seg = ml::segmentation_loss(logits, none);
  CHECK(seg.item<double>() == 0.0);
  seg.backward();
  CHECK(logits.grad().defined());
  CHECK(ml::depth_loss(torch::rand({1, 1, 2, 2}), torch::zeros({1, 1, 2, 2})).item<double>() ==
        0.0);
  CHECK(ml::normal_loss(torch::rand({1, 3, 2, 2}), torch::zeros({1, 3, 2, 2})).item<double>() ==
        0.0);
  CHECK(ml::balanced_bce_loss(torch::rand({1, 1, 2, 2}), torch::full({1, 1, 2, 2}, 255.0))
            .item<double>() == 0.0);
  CHECK_THROWS_AS(ml::depth_loss(torch::rand({1, 2, 2, 2}), torch::rand({1, 2, 2, 2})), c10::Error);
}

TEST_CASE("Delta_b of the paper's rows against HPS gives the published figures") {
  const std::vector<std::string> nyu_tasks = {"semseg",  "semseg",  "depth",   "depth",  "normals",
                                              "normals", "normals", "normals", "normals"};
  const std::vector<std::string> nyu_names = {"mIoU",   "Pix Acc", "Abs Err", "Rel Err", "Mean",
                                              "Median", "11.25",   "22.5",    "30"};
  const std::vector<bool> nyu_up = {true, true, false, false, false, false, true, true, true};
  const auto hps = row(nyu_tasks, nyu_names,
                       {54.48, 75.82, 0.3839, 0.1548, 23.50, 17.06, 35.31, 61.10, 72.14}, nyu_up);
  const auto mtsam = row(nyu_tasks, nyu_names,
                         {65.98, 83.42, 0.2898, 0.1140, 16.34, 11.33, 51.22, 77.20, 85.51}, nyu_up);
  const auto stl = row(nyu_tasks, nyu_names,
                       {53.98, 75.38, 0.3945, 0.1631, 22.25, 15.63, 38.12, 64.38, 74.81}, nyu_up);
  CHECK(rounded_percent(mm::delta_b(mtsam, hps)) == doctest::Approx(23.93).epsilon(1e-9));
  CHECK(rounded_percent(mm::delta_b(stl, hps)) == doctest::Approx(0.45).epsilon(1e-9));
  CHECK(mm::delta_b(hps, hps) == 0.0);

  const std::vector<std::string> cs_tasks = {"semseg", "semseg", "depth", "depth"};
  const std::vector<std::string> cs_names = {"mIoU", "Pix Acc", "Abs Err", "Rel Err"};
  const std::vector<bool> cs_up = {true, true, false, false};
  const auto cs_hps = row(cs_tasks, cs_names, {67.40, 90.92, 0.0142, 45.4262}, cs_up);
  const auto cs_mtsam = row(cs_tasks, cs_names, {87.45, 96.80, 0.0113, 33.0086}, cs_up);
  const auto cs_dense = row(cs_tasks, cs_names, {69.75, 91.45, 0.0152, 52.1401}, cs_up);
  CHECK(rounded_percent(mm::delta_b(cs_mtsam, cs_hps)) == doctest::Approx(20.99).epsilon(1e-9));
  CHECK(rounded_percent(mm::delta_b(cs_dense, cs_hps)) == doctest::Approx(-4.44).epsilon(1e-9));

  const std::vector<std::string> pc_tasks = {"semseg", "parts", "saliency", "normals"};
  const std::vector<std::string> pc_names = {"mIoU", "mIoU", "mIoU", "Mean"};
  const std::vector<bool> pc_up = {true, true, true, false};
  const auto pc_hps = row(pc_tasks, pc_names, {64.77, 57.91, 64.10, 14.21}, pc_up);
  const auto pc_mtsam = row(pc_tasks, pc_names, {74.13, 71.04, 76.28, 17.10}, pc_up);
  const auto pc_lora = row(pc_tasks, pc_names, {48.19, 46.73, 69.50, 20.38}, pc_up);
  CHECK(rounded_percent(mm::delta_b(pc_mtsam, pc_hps)) == doctest::Approx(8.95).epsilon(1e-9));
  CHECK(rounded_percent(mm::delta_b(pc_lora, pc_hps)) == doctest::Approx(-19.97).epsilon(1e-9));

  CHECK_THROWS_AS(mm::delta_b(mtsam, cs_hps), std::invalid_argument);
}

TEST_CASE("task meters report each benchmark's metrics in table order") {
  std::vector<std::string> names;
  for (const auto& spec : md::nyuv2_tasks()) {
    mm::TaskMeter meter(spec);
    const int64_t c = spec.channels;
    if (spec.kind == md::TaskKind::segmentation) {
      meter.update(torch::randn({1, c, 3, 3}), torch::randint(0, c, {1, 3, 3}));
    } else {
      meter.update(torch::rand({1, c, 3, 3}) + 0.1, torch::rand({1, c, 3, 3}) + 0.1);
    }
    for (const auto& v : meter.reported()) {
      names.push_back(v.task + ":" + v.name);
      CHECK(std::isfinite(v.value));
    }
  }
  CHECK(names == std::vector<std::string>{"semseg:mIoU", "semseg:Pix Acc", "depth:Abs Err",
                                          "depth:Rel Err", "normals:Mean", "normals:Median",
                                          "normals:11.25", "normals:22.5", "normals:30"});
  const auto pascal = md::pascal_context_tasks();
  mm::TaskMeter sal(pascal[2]);
  sal.update(torch::randn({2, 1, 4, 4}), torch::rand({2, 1, 4, 4}).gt(0.5).to(torch::kFloat32));
  REQUIRE(sal.reported().size() == 1);
  CHECK(sal.reported()[0].name == "mIoU");
  CHECK(sal.all().size() == 2);
}
