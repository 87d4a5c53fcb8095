// SAM's modules against the reference outputs of the tiny SAM fixture.

#include "test_helpers.hpp"

#include <mtsam/mtsam.hpp>

#include <doctest/doctest.h>

namespace {

using mtsam::test::max_abs_diff;

void check_sam_outputs(mtsam::Sam& sam, const std::filesystem::path& dir, const char* source) {
  const auto io = mtsam::read_pth(dir / "sam_tiny_io.pth");
  sam->eval();
  torch::NoGradGuard no_grad;

  const auto embeddings = sam->encode(io["image"]);
  const auto pe = sam->dense_pe();
  auto prediction = sam->mask_decoder->forward(io["image_embeddings"], io["image_pe"],
                                               io["sparse_prompt"], io["dense_prompt"], true);
  const double e_emb = max_abs_diff(embeddings, io["image_embeddings"]);
  const double e_pe = max_abs_diff(pe, io["image_pe"]);
  const double e_masks = max_abs_diff(prediction.masks, io["masks"]);
  const double e_iou = max_abs_diff(prediction.iou_pred, io["iou_pred"]);
  MESSAGE(std::string(source), ": max abs diff image_embeddings ", e_emb, ", image_pe ", e_pe,
          ", masks ", e_masks, ", iou_pred ", e_iou);
  CHECK(e_emb < 1e-4);
  CHECK(e_pe < 1e-4);
  CHECK(e_masks < 1e-4);
  CHECK(e_iou < 1e-4);

  // The dense prompt of the fixture is the "no mask" embedding: the prompt encoder gives it.
  const auto prompts = sam->prompt_encoder->forward(std::nullopt, std::nullopt, std::nullopt, 1);
  CHECK(max_abs_diff(prompts.dense, io["dense_prompt"]) == 0.0);
}

}  // namespace

TEST_CASE("sam_tiny loaded from the official .pth reproduces the reference outputs" *
          doctest::test_suite("fixtures")) {
  const auto dir = mtsam::test::fixtures_or_skip();
  if (!dir) {
    return;
  }
  const auto shape = mtsam::shape_from_json(mtsam::test::read_json(*dir / "sam_tiny.json"));
  mtsam::Sam sam(shape);
  const auto report = mtsam::load_sam(*sam, *dir / "sam_tiny.pth");
  CHECK(report.missing.empty());
  CHECK(report.unexpected.empty());
  check_sam_outputs(sam, *dir, "sam_tiny.pth");
}

TEST_CASE("sam_tiny loaded from the Hugging Face safetensors reproduces the reference outputs" *
          doctest::test_suite("fixtures")) {
  const auto dir = mtsam::test::fixtures_or_skip();
  if (!dir) {
    return;
  }
  const auto shape = mtsam::shape_from_json(mtsam::test::read_json(*dir / "sam_tiny.json"));
  mtsam::Sam sam(shape);
  const auto report = mtsam::load_sam(*sam, *dir / "sam_tiny_hf.safetensors");
  CHECK(report.unexpected.empty());
  check_sam_outputs(sam, *dir, "sam_tiny_hf.safetensors");
}

TEST_CASE("the Hugging Face names map onto exactly the official names" *
          doctest::test_suite("fixtures")) {
  const auto dir = mtsam::test::fixtures_or_skip();
  if (!dir) {
    return;
  }
  const auto official = mtsam::read_pth(*dir / "sam_tiny.pth");
  const auto renamed = mtsam::read_hf_safetensors(*dir / "sam_tiny_hf.safetensors");
  CHECK(renamed.size() == official.size());
  for (const auto& item : official) {
    const auto* other = renamed.find(item.key());
    REQUIRE_MESSAGE(other != nullptr, "the renamed file lacks ", item.key());
    CHECK_MESSAGE(torch::equal(*other, item.value()), item.key(), " differs");
  }
}

TEST_CASE("projecting the window padding or not gives the same encoder output" *
          doctest::test_suite("fixtures")) {
  const auto dir = mtsam::test::fixtures_or_skip();
  if (!dir) {
    return;
  }
  const auto shape = mtsam::shape_from_json(mtsam::test::read_json(*dir / "sam_tiny.json"));
  REQUIRE(shape.img_size / shape.patch_size % shape.window_size != 0);  // windows are padded
  auto options = mtsam::sam_options(shape);
  options.encoder().project_padding(true);
  mtsam::Sam padded(options);
  mtsam::Sam lean(shape);
  mtsam::load_sam(*padded, *dir / "sam_tiny.pth");
  mtsam::load_sam(*lean, *dir / "sam_tiny.pth");
  torch::NoGradGuard no_grad;
  const auto image = mtsam::read_pth(*dir / "sam_tiny_io.pth")["image"];
  const auto a = padded->encode(image);
  const auto b = lean->encode(image);
  CHECK(max_abs_diff(a, b) < 1e-5);
  CHECK(max_abs_diff(a, mtsam::read_pth(*dir / "sam_tiny_io.pth")["image_embeddings"]) < 1e-4);
}
