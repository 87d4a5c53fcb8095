// MTSAM's construction: presets, the trainable set, every tora method in place of ToRA,
// building from a SAM checkpoint, an encoder smaller than the checkpoint, pre/post-processing.

#include "test_helpers.hpp"

#include <mtsam/mtsam.hpp>

#include <doctest/doctest.h>

namespace {

using mtsam::test::max_abs_diff;

int64_t count(const std::vector<torch::Tensor>& tensors) {
  int64_t total = 0;
  for (const auto& tensor : tensors) {
    total += tensor.numel();
  }
  return total;
}

/// A very small MTSAM with random weights.
mtsam::MTSAMOptions tiny_options(tora::Method method) {
  mtsam::SamShape shape;
  shape.img_size = 64;
  shape.embed_dim = 32;
  shape.depth = 2;
  shape.num_heads = 2;
  shape.global_attn_indexes = {1};
  shape.window_size = 3;
  shape.prompt_dim = 16;
  shape.mlp_dim = 32;
  shape.dec_heads = 2;
  auto adapter = mtsam::default_adapter_config();
  adapter.method = method;
  adapter.p = 4;
  adapter.q = 3;
  adapter.v = 2;
  adapter.rank = 2;
  return mtsam::MTSAMOptions(shape, {{"seg", 3, mtsam::TaskKind::classes},
                                     {"depth", 1, mtsam::TaskKind::regression}})
      .adapter(adapter);
}

}  // namespace

TEST_CASE("the ViT-B preset has the released encoder's parameter count") {
  mtsam::ImageEncoder encoder(mtsam::sam_options(mtsam::Preset::vit_b).encoder());
  CHECK(count(encoder->parameters()) == 89670912);
  mtsam::MaskDecoder decoder(mtsam::sam_options(mtsam::Preset::vit_b).decoder());
  CHECK(count(decoder->parameters()) == 4058340);
  const auto h = mtsam::sam_options(mtsam::Preset::vit_h, 512).encoder();
  CHECK(h.embed_dim() == 1280);
  CHECK(h.depth() == 32);
  CHECK(h.grid_size() == 32);
  CHECK(h.global_attn_indexes() == std::vector<int64_t>{7, 15, 23, 31});
  CHECK(mtsam::preset_from_string("ViT-L") == mtsam::Preset::vit_l);
  CHECK_THROWS_AS(mtsam::preset_from_string("vit_x"), std::invalid_argument);
}

TEST_CASE("the trainable set is the adapters, the norms, the task embeddings and the decoders") {
  mtsam::MTSAM model(tiny_options(tora::Method::tora));
  for (const auto& item : model->named_parameters()) {
    const auto& name = item.key();
    const bool expected = name.find(".adapter.") != std::string::npos ||
                          name.find("norm") != std::string::npos ||
                          name.starts_with("task_embeddings.") || name.starts_with("decoders.");
    CHECK_MESSAGE(item.value().requires_grad() == expected, name);
  }
  const auto params = model->named_parameters();
  CHECK_FALSE(params["image_encoder.blocks.0.attn.qkv.weight"].requires_grad());
  CHECK_FALSE(params["image_encoder.neck.1.weight"].requires_grad());
  CHECK(params["image_encoder.blocks.0.norm1.weight"].requires_grad());
  CHECK(params["image_encoder.blocks.1.attn.qkv.adapter.G"].requires_grad());
  CHECK(params["task_embeddings.0"].sizes() == torch::IntArrayRef({3, 16}));

  mtsam::MTSAM full(tiny_options(tora::Method::full));
  for (const auto& item : full->named_parameters()) {
    CHECK_MESSAGE(item.value().requires_grad(), item.key());
  }
}

TEST_CASE("a task per image agrees with every task at once, with SAM's window padding too") {
  for (const bool project_padding : {false, true}) {
    CAPTURE(project_padding);
    torch::manual_seed(8);
    mtsam::MTSAM model(tiny_options(tora::Method::tora).project_padding(project_padding));
    torch::NoGradGuard no_grad;
    for (auto& item : model->named_parameters()) {
      if (item.key().find(".adapter.") != std::string::npos) {
        item.value().normal_(0.0, 0.2);
      }
    }
    model->eval();
    const auto images = torch::randn({3, 3, 64, 64});
    const auto all = model->encode_all(images);  // [T, B, C, h, w]
    const auto mixed = model->encode_per_image(images, torch::tensor({1, 0, 1}, torch::kLong));
    CHECK(max_abs_diff(mixed[0], all[1][0]) < 1e-5);
    CHECK(max_abs_diff(mixed[1], all[0][1]) < 1e-5);
    CHECK(max_abs_diff(mixed[2], all[1][2]) < 1e-5);
    CHECK(max_abs_diff(all[0], all[1]) > 1e-3);
  }
}

TEST_CASE("every tora method trains in place of ToRA and stacked tasks match tasks one by one") {
  for (const auto method : tora::all_methods) {
    CAPTURE(tora::to_string(method));
    torch::manual_seed(7);
    mtsam::MTSAM model(tiny_options(method));
    {
      // Give every adapter a non-zero update so the tasks differ.
      torch::NoGradGuard no_grad;
      for (auto& item : model->named_parameters()) {
        if (item.key().find(".adapter.") != std::string::npos) {
          item.value().normal_(0.0, 0.2);
        }
      }
    }
    const auto images = torch::randn({2, 3, 64, 64});
    model->train();
    const auto outputs = model->forward(images);
    REQUIRE(outputs.size() == 2);
    CHECK(outputs[0].sizes() == torch::IntArrayRef({2, 3, 16, 16}));
    CHECK(outputs[1].sizes() == torch::IntArrayRef({2, 1, 16, 16}));
    (outputs[0].square().mean() + outputs[1].square().mean()).backward();
    for (const auto& item : model->named_parameters()) {
      const auto& name = item.key();
      const bool used = name.find(".adapter.") != std::string::npos ||
                        name.find("norm") != std::string::npos ||
                        name.starts_with("decoders.0.transformer.");
      if (!item.value().requires_grad()) {
        CHECK_MESSAGE(!item.value().grad().defined(), name);
      } else if (used) {
        CHECK_MESSAGE(item.value().grad().defined(), name);
      }
    }

    model->eval();
    torch::NoGradGuard no_grad;
    const auto stacked = model->forward(images);
    for (int64_t t = 0; t < 2; ++t) {
      CHECK(max_abs_diff(stacked[t], model->forward_task(images, t)) < 1e-5);
    }
    if (tora::is_mergeable(method)) {
      for (int64_t t = 0; t < 2; ++t) {
        model->merge(t);
        CHECK(max_abs_diff(model->forward_task(images, t), stacked[t]) < 1e-5);
      }
      model->unmerge();
    }
  }
}

TEST_CASE("MTSAM built from a SAM checkpoint copies the decoder and no_mask_embed per task" *
          doctest::test_suite("fixtures")) {
  const auto dir = mtsam::test::fixtures_or_skip();
  if (!dir) {
    return;
  }
  const auto shape = mtsam::shape_from_json(mtsam::test::read_json(*dir / "sam_tiny.json"));
  const auto sam = mtsam::read_pth(*dir / "sam_tiny.pth");
  auto model = mtsam::mtsam_from_sam_checkpoint(*dir / "sam_tiny.pth",
                                                mtsam::MTSAMOptions(shape, mtsam::nyuv2_tasks()));
  const auto params = model->named_parameters();
  for (int64_t t = 0; t < 3; ++t) {
    const auto prefix = "decoders." + std::to_string(t) + ".";
    CHECK(torch::equal(params[prefix + "iou_token.weight"], sam["mask_decoder.iou_token.weight"]));
    CHECK(torch::equal(params[prefix + "transformer.layers.1.mlp.lin2.weight"],
                       sam["mask_decoder.transformer.layers.1.mlp.lin2.weight"]));
    const auto rows = params["task_embeddings." + std::to_string(t)];
    CHECK(rows.size(0) == mtsam::nyuv2_tasks()[t].channels);
    CHECK(torch::equal(rows, sam["prompt_encoder.no_mask_embed.weight"].expand_as(rows)));
  }
  // The ToRA core starts at zero: every task's encoder is SAM's encoder.
  model->eval();
  torch::NoGradGuard no_grad;
  const auto io = mtsam::read_pth(*dir / "sam_tiny_io.pth");
  const auto all = model->encode_all(io["image"]);
  for (int64_t t = 0; t < 3; ++t) {
    CHECK(max_abs_diff(all[t], io["image_embeddings"]) < 1e-4);
  }
  CHECK(max_abs_diff(model->dense_pe(), io["image_pe"]) < 1e-6);
}

TEST_CASE("an encoder smaller than the checkpoint gets resized position tables" *
          doctest::test_suite("fixtures")) {
  const auto dir = mtsam::test::fixtures_or_skip();
  if (!dir) {
    return;
  }
  auto shape = mtsam::shape_from_json(mtsam::test::read_json(*dir / "sam_tiny.json"));
  const auto sam = mtsam::read_pth(*dir / "sam_tiny.pth");
  shape.img_size = 96;  // a 6x6 grid instead of 10x10
  mtsam::Sam small(shape);
  CHECK_THROWS_AS(mtsam::load_state_dict(*small, sam), mtsam::CheckpointError);
  mtsam::LoadOptions resize;
  resize.resize_positions = true;
  mtsam::load_state_dict(*small, sam, resize);

  const auto params = small->named_parameters();
  const auto pos = params["image_encoder.pos_embed"];
  CHECK(pos.sizes() == torch::IntArrayRef({1, 6, 6, 64}));
  // Bilinear with half-pixel centres: output cell i samples source (i + 0.5) * 10/6 - 0.5.
  const auto source = sam["image_encoder.pos_embed"];
  const double y = 2.5 * 10.0 / 6.0 - 0.5;  // cell 2 -> 3.6667
  const double x = 0.5 * 10.0 / 6.0 - 0.5;  // cell 0 -> 0.3333
  const auto at = [&](int64_t r, int64_t c) { return source[0][r][c]; };
  const auto expected = (at(3, 0) * (1 - (x - 0)) + at(3, 1) * (x - 0)) * (1 - (y - 3)) +
                        (at(4, 0) * (1 - (x - 0)) + at(4, 1) * (x - 0)) * (y - 3);
  CHECK(max_abs_diff(pos[0][2][0], expected) < 1e-5);
  // Global blocks' tables follow the grid (2*6-1 rows); windowed blocks keep theirs.
  CHECK(params["image_encoder.blocks.1.attn.rel_pos_h"].size(0) == 11);
  CHECK(torch::equal(params["image_encoder.blocks.0.attn.rel_pos_w"],
                     sam["image_encoder.blocks.0.attn.rel_pos_w"]));
  const auto ramp = torch::arange(19, torch::kFloat32).unsqueeze(1);
  const auto resized = mtsam::resize_rel_pos(ramp, 11);
  CHECK(std::abs(resized[5][0].item<double>() - ((5 + 0.5) * 19.0 / 11.0 - 0.5)) < 1e-5);

  torch::NoGradGuard no_grad;
  const auto embeddings = small->encode(torch::randn({1, 3, 96, 96}));
  CHECK(embeddings.sizes() == torch::IntArrayRef({1, 32, 6, 6}));
  CHECK(embeddings.isfinite().all().item<bool>());
  CHECK_THROWS(small->encode(torch::randn({1, 3, 160, 160})));
}

TEST_CASE("preprocessing resizes the long side and pads; postprocessing maps back") {
  const auto image = torch::full({3, 90, 120}, 0.25);
  const auto prepared = mtsam::preprocess(image, {.size = 160});
  CHECK(prepared.images.sizes() == torch::IntArrayRef({1, 3, 160, 160}));
  CHECK(prepared.input_size == mtsam::ImageSize{120, 160});
  CHECK(prepared.original_size == mtsam::ImageSize{90, 120});
  CHECK(max_abs_diff(prepared.images.narrow(2, 0, 120), torch::full({1, 3, 120, 160}, 0.25)) <
        1e-6);
  CHECK(prepared.images.narrow(2, 120, 40).abs().max().item<double>() == 0.0);
  CHECK(mtsam::resized_size({480, 640}, 512) == mtsam::ImageSize{384, 512});

  const auto outputs = torch::full({1, 2, 40, 40}, -1.5);
  const auto mapped = mtsam::postprocess(outputs, 160, prepared);
  CHECK(mapped.sizes() == torch::IntArrayRef({1, 2, 90, 120}));
  CHECK(max_abs_diff(mapped, torch::full({1, 2, 90, 120}, -1.5)) < 1e-6);

  const auto normalised = mtsam::preprocess(
      image, {.size = 120, .mean = {{0.25, 0.25, 0.25}}, .std = {{2.0, 2.0, 2.0}}});
  CHECK(normalised.images.abs().max().item<double>() == 0.0);
}

TEST_CASE("pre- and post-processing equal the reference's PyTorch operations") {
  // tests/mtsam/make_processing_reference.py wrote the expected tensors.
  const auto file = tora::io::read_safetensors(std::filesystem::path(TORA_SOURCE_DIR) /
                                               "tests/mtsam/data/processing_reference.safetensors");
  const auto tensor = [&](const char* name) {
    const auto* found = file.find(name);
    REQUIRE_MESSAGE(found != nullptr, name);
    return *found;
  };
  const auto prepared = mtsam::preprocess(tensor("image"), {.size = 64});
  CHECK(prepared.input_size == mtsam::ImageSize{48, 64});
  CHECK(max_abs_diff(prepared.images, tensor("prepared")) < 1e-5);
  CHECK(max_abs_diff(mtsam::postprocess(tensor("masks"), 64, prepared), tensor("mapped")) < 1e-5);
  // Antialiasing matters at this scale: a plain bilinear resize is visibly off.
  namespace F = torch::nn::functional;
  const auto plain = F::interpolate(tensor("image"), F::InterpolateFuncOptions()
                                                         .size(std::vector<int64_t>{48, 64})
                                                         .mode(torch::kBilinear)
                                                         .align_corners(false));
  CHECK(max_abs_diff(plain, tensor("prepared").narrow(2, 0, 48)) > 1e-2);
}

TEST_CASE("the trained parts are saved without the frozen weights and load back exactly") {
  torch::manual_seed(11);
  mtsam::MTSAM trained(tiny_options(tora::Method::tora));
  {
    torch::NoGradGuard no_grad;
    for (auto& parameter : trained->parameters()) {
      if (parameter.requires_grad()) {
        parameter.add_(0.3);
      }
    }
  }
  mtsam::test::TempDir dir("mtsam_trainable");
  mtsam::save_trained_parts(*trained, dir.path());
  CHECK(mtsam::read_trained_parts_options(dir.path()).tasks() == trained->options.tasks());

  // Same frozen weights (same seed), fresh trainable parts.
  torch::manual_seed(11);
  mtsam::MTSAM fresh(mtsam::read_trained_parts_options(dir.path()));
  const auto before = fresh->named_parameters();
  mtsam::load_trained_parts(*fresh, dir.path());
  const auto loaded = fresh->named_parameters();
  for (const auto& item : trained->named_parameters()) {
    CHECK_MESSAGE(torch::equal(loaded[item.key()], item.value()), item.key());
  }

  // Tensors of another model are refused before anything changes.
  auto other_options = tiny_options(tora::Method::tora);
  other_options.tasks(
      {{"seg", 4, mtsam::TaskKind::classes}, {"depth", 1, mtsam::TaskKind::regression}});
  mtsam::MTSAM other(other_options);
  CHECK_THROWS_AS(mtsam::load_trained_parts(*other, dir.path()), mtsam::CheckpointError);
}

TEST_CASE("the orthogonal regulariser sees every ToRA adapter of the encoder") {
  mtsam::MTSAM model(tiny_options(tora::Method::tora));
  const auto paper = tora::orthogonal_regularizer(*model, tora::RegularizerForm::paper);
  double expected = 0.0;
  for (const auto& layer : model->adapted_layers()) {
    for (const auto& residual : layer->adapter_as<tora::ToraImpl>()->orthogonality_residuals()) {
      expected += residual.square().sum().item<double>();
    }
  }
  CHECK(model->adapted_layers().size() == 2);
  CHECK(paper.item<double>() == doctest::Approx(expected).epsilon(1e-5));
}
