// MTSAM against the reference MTSAM outputs, and the equalities its inference paths promise.

#include "test_helpers.hpp"

#include <mtsam/mtsam.hpp>

#include <doctest/doctest.h>

namespace {

using mtsam::test::max_abs_diff;

struct Fixture {
  nlohmann::json config;
  mtsam::MTSAM model{nullptr};
  mtsam::StateDict io;
};

std::optional<Fixture> load_fixture() {
  const auto dir = mtsam::test::fixtures_or_skip();
  if (!dir) {
    return std::nullopt;
  }
  Fixture fixture;
  fixture.config = mtsam::test::read_json(*dir / "mtsam_tiny.json");
  fixture.model = mtsam::MTSAM(mtsam::test::mtsam_options_from_fixture(fixture.config));
  mtsam::load_reference_state_dict(*fixture.model, mtsam::read_pth(*dir / "mtsam_tiny.pth"));
  fixture.model->eval();
  fixture.io = mtsam::read_pth(*dir / "mtsam_tiny_io.pth");
  return fixture;
}

}  // namespace

TEST_CASE("mtsam_tiny loaded from the reference state dict reproduces every task's outputs" *
          doctest::test_suite("fixtures")) {
  auto fixture = load_fixture();
  if (!fixture) {
    return;
  }
  torch::NoGradGuard no_grad;
  auto& model = fixture->model;
  const int64_t size = model->options.shape().img_size;
  const auto prepared = mtsam::preprocess(fixture->io["image"], {.size = size});
  const auto original = fixture->config.at("original_hw").get<std::vector<int64_t>>();

  const auto embeddings = model->encode_all(prepared.images);  // [T, 1, C, h, w]
  const auto expected = fixture->io["task_image_embeddings"];
  const auto outputs = model->forward(prepared.images);
  REQUIRE(static_cast<int64_t>(outputs.size()) == model->num_tasks());
  for (int64_t t = 0; t < model->num_tasks(); ++t) {
    const double e_emb = max_abs_diff(embeddings[t][0], expected[t]);
    const auto mapped =
        mtsam::postprocess(outputs[t], size, prepared.input_size, {original[0], original[1]});
    const double e_out = max_abs_diff(mapped, fixture->io["task" + std::to_string(t) + "_output"]);
    MESSAGE("task ", t, ": max abs diff encoder output ", e_emb, ", post-processed output ", e_out);
    CHECK(e_emb < 1e-4);
    CHECK(e_out < 1e-4);
  }
}

TEST_CASE("all tasks in one stacked call equal the tasks run one by one, for a batch of two" *
          doctest::test_suite("fixtures")) {
  auto fixture = load_fixture();
  if (!fixture) {
    return;
  }
  torch::NoGradGuard no_grad;
  auto& model = fixture->model;
  const int64_t size = model->options.shape().img_size;
  torch::manual_seed(3);
  const auto first = mtsam::preprocess(fixture->io["image"], {.size = size}).images;
  const auto batch = torch::cat({first, torch::randn_like(first)}, 0);  // two different images

  const auto stacked = model->forward(batch);
  for (int64_t t = 0; t < model->num_tasks(); ++t) {
    const auto alone = model->forward_task(batch, t);
    CHECK(max_abs_diff(stacked[t], alone) < 1e-5);
    for (int64_t b = 0; b < 2; ++b) {
      // Image b's channels come from image b only.
      const auto single = model->forward_task(batch.narrow(0, b, 1), t);
      CHECK(max_abs_diff(stacked[t].narrow(0, b, 1), single) < 1e-5);
    }
  }
  CHECK(max_abs_diff(stacked[0][0], stacked[0][1]) > 1e-3);

  // A task per image: image 0 for task 2, image 1 for task 0.
  const auto mixed = model->encode_per_image(batch, torch::tensor({2, 0}, torch::kLong));
  const auto all = model->encode_all(batch);
  CHECK(max_abs_diff(mixed[0], all[2][0]) < 1e-5);
  CHECK(max_abs_diff(mixed[1], all[0][1]) < 1e-5);
}

TEST_CASE("inference with merged per-task weights equals the unmerged model" *
          doctest::test_suite("fixtures")) {
  auto fixture = load_fixture();
  if (!fixture) {
    return;
  }
  torch::NoGradGuard no_grad;
  auto& model = fixture->model;
  const int64_t size = model->options.shape().img_size;
  const auto images = mtsam::preprocess(fixture->io["image"], {.size = size}).images;
  const auto unmerged = model->forward(images);
  const auto base = model->image_encoder->qkv(0)->weight.clone();
  for (int64_t t = 0; t < model->num_tasks(); ++t) {
    model->merge(t);
    CHECK_FALSE(torch::equal(model->image_encoder->qkv(0)->weight, base));
    const auto merged = model->forward_task(images, t);
    const double error = max_abs_diff(merged, unmerged[t]);
    MESSAGE("task ", t, ": merged vs unmerged max abs diff ", error);
    CHECK(error < 1e-5);
  }
  model->unmerge();
  CHECK(torch::equal(model->image_encoder->qkv(0)->weight, base));
}

TEST_CASE("the reference form of the regulariser equals the reference's formula on its tensors" *
          doctest::test_suite("fixtures")) {
  auto fixture = load_fixture();
  if (!fixture) {
    return;
  }
  // Written out on the reference state dict as the reference code names it: td_U1 [in, R1],
  // td_U2 [rows, R2], td_G [R1, R2, R3]; the mean of ||M'M - I||_F over U1, U2 and every G_l.
  const auto dir = mtsam::test::fixtures_or_skip();
  const auto state = mtsam::read_pth(*dir / "mtsam_tiny.pth");
  const auto gram_residual = [](const torch::Tensor& m) {
    const auto d = m.to(torch::kDouble);
    return (d.t().mm(d) - torch::eye(d.size(1), d.options())).norm().item<double>();
  };
  double sum = 0.0;
  int64_t terms = 0;
  for (const auto& item : state) {
    const auto& key = item.key();
    const auto& tensor = item.value();
    if (!key.ends_with(".td_G")) {
      continue;
    }
    const auto prefix = key.substr(0, key.size() - 4);
    sum += gram_residual(state[prefix + "td_U1"]) + gram_residual(state[prefix + "td_U2"]);
    for (int64_t l = 0; l < tensor.size(2); ++l) {
      sum += gram_residual(tensor.select(2, l));
    }
    terms += 2 + tensor.size(2);
  }
  REQUIRE(terms > 0);
  const auto value =
      tora::orthogonal_regularizer(*fixture->model, tora::RegularizerForm::reference);
  MESSAGE("reference regulariser ", value.item<double>(), " expected ", sum / terms);
  CHECK(value.item<double>() == doctest::Approx(sum / terms).epsilon(1e-5));
}
