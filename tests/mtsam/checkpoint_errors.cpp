// Reading checkpoints that are cut, corrupt or do not fit the model: errors that name the
// problem, never a crash.

#include "test_helpers.hpp"

#include <mtsam/mtsam.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

std::vector<char> file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::filesystem::path write_bytes(const std::filesystem::path& path,
                                  const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

/// The message of the CheckpointError `read` throws; fails the test when it throws nothing.
template <class F>
std::string checkpoint_error(F&& read) {
  try {
    read();
  } catch (const mtsam::CheckpointError& error) {
    return error.what();
  }
  FAIL("expected a CheckpointError");
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("cut and garbage copies of a checkpoint give errors that name the file" *
          doctest::test_suite("fixtures")) {
  const auto dir = mtsam::test::fixtures_or_skip();
  if (!dir) {
    return;
  }
  mtsam::test::TempDir temp("mtsam_cut");
  const auto pth = file_bytes(*dir / "sam_tiny.pth");
  const auto hf = file_bytes(*dir / "sam_tiny_hf.safetensors");
  REQUIRE(pth.size() > 1000);

  for (size_t keep : {size_t{0}, size_t{3}, size_t{100}, pth.size() / 2, pth.size() - 30}) {
    const auto path = write_bytes(temp.path() / ("cut_" + std::to_string(keep) + ".pth"),
                                  {pth.begin(), pth.begin() + static_cast<long>(keep)});
    const auto message = checkpoint_error([&] { mtsam::read_pth(path); });
    CHECK_MESSAGE(contains(message, path.string()), message);
    checkpoint_error([&] { mtsam::read_checkpoint(path); });
  }
  for (size_t keep : {size_t{4}, size_t{9}, hf.size() / 2, hf.size() - 1}) {
    const auto path = write_bytes(temp.path() / ("cut_" + std::to_string(keep) + ".safetensors"),
                                  {hf.begin(), hf.begin() + static_cast<long>(keep)});
    const auto message = checkpoint_error([&] { mtsam::read_hf_safetensors(path); });
    CHECK_MESSAGE(contains(message, path.string()), message);
  }

  std::vector<char> garbage(4096);
  for (size_t i = 0; i < garbage.size(); ++i) {
    garbage[i] = static_cast<char>((i * 7919 + 13) % 251);
  }
  const auto noise = write_bytes(temp.path() / "noise.pth", garbage);
  CHECK(contains(checkpoint_error([&] { mtsam::read_pth(noise); }), "not a torch.save zip"));
  checkpoint_error([&] { mtsam::read_checkpoint(noise); });

  garbage[0] = 'P';
  garbage[1] = 'K';
  garbage[2] = 3;
  garbage[3] = 4;
  const auto fake_zip = write_bytes(temp.path() / "fake_zip.pth", garbage);
  checkpoint_error([&] { mtsam::read_pth(fake_zip); });

  garbage[0] = static_cast<char>(0x80);
  garbage[1] = 2;
  const auto legacy = write_bytes(temp.path() / "legacy.pth", garbage);
  CHECK(contains(checkpoint_error([&] { mtsam::read_pth(legacy); }), "legacy"));
  // Read as a checkpoint of any kind, it is still named as the legacy format, not as a broken
  // safetensors file.
  CHECK(contains(checkpoint_error([&] { mtsam::read_checkpoint(legacy); }), "legacy"));

  CHECK(contains(checkpoint_error([&] { mtsam::read_pth(temp.path() / "absent.pth"); }),
                 "absent.pth"));
}

TEST_CASE("a checkpoint whose pickle program is damaged is refused" *
          doctest::test_suite("fixtures")) {
  const auto dir = mtsam::test::fixtures_or_skip();
  if (!dir) {
    return;
  }
  mtsam::test::TempDir temp("mtsam_damaged");
  auto bytes = file_bytes(*dir / "sam_tiny.pth");
  const std::string marker = "image_encoder.pos_embed";
  const auto at = std::search(bytes.begin(), bytes.end(), marker.begin(), marker.end());
  REQUIRE(at != bytes.end());
  // Overwrite the opcodes just before the first key (inside data.pkl, stored uncompressed).
  std::fill(at - 6, at + 4, static_cast<char>(0xff));
  const auto path = write_bytes(temp.path() / "damaged.pth", bytes);
  checkpoint_error([&] { mtsam::read_pth(path); });
}

TEST_CASE("missing, unexpected and mis-shaped keys are all listed, and nothing is copied" *
          doctest::test_suite("fixtures")) {
  const auto dir = mtsam::test::fixtures_or_skip();
  if (!dir) {
    return;
  }
  const auto shape = mtsam::shape_from_json(mtsam::test::read_json(*dir / "sam_tiny.json"));
  const auto good = mtsam::read_pth(*dir / "sam_tiny.pth");
  mtsam::Sam sam(shape);
  const auto before = sam->image_encoder->pos_embed.clone();

  mtsam::StateDict broken;
  for (const auto& item : good) {
    if (item.key() == "mask_decoder.iou_token.weight" ||
        item.key() == "image_encoder.blocks.1.attn.rel_pos_h") {
      continue;
    }
    if (item.key() == "image_encoder.neck.0.weight") {
      broken.insert(item.key(), torch::zeros({32, 60, 1, 1}));
      continue;
    }
    broken.insert(item.key(), item.value());
  }
  broken.insert("image_encoder.extra.weight", torch::zeros({2}));

  try {
    mtsam::load_state_dict(*sam, broken);
    FAIL("expected a CheckpointError");
  } catch (const mtsam::CheckpointError& error) {
    const std::string message = error.what();
    CHECK(error.missing == std::vector<std::string>{"image_encoder.blocks.1.attn.rel_pos_h",
                                                    "mask_decoder.iou_token.weight"});
    CHECK(error.unexpected == std::vector<std::string>{"image_encoder.extra.weight"});
    REQUIRE(error.mismatched.size() == 1);
    CHECK(contains(message,
                   "image_encoder.neck.0.weight: checkpoint [32, 60, 1, 1], model [32, "
                   "64, 1, 1]"));
    CHECK(contains(message, "mask_decoder.iou_token.weight"));
    CHECK(contains(message, "image_encoder.extra.weight"));
  }
  CHECK(torch::equal(sam->image_encoder->pos_embed, before));

  broken.erase("image_encoder.neck.0.weight");
  mtsam::LoadOptions lenient;
  lenient.strict = false;
  const auto report = mtsam::load_state_dict(*sam, broken, lenient);
  CHECK(report.missing.size() == 3);
  CHECK(report.unexpected.size() == 1);
  CHECK(torch::equal(sam->image_encoder->pos_embed, good["image_encoder.pos_embed"]));
}

TEST_CASE("a reference state dict with other ToRA ranks is refused with the rank mapping" *
          doctest::test_suite("fixtures")) {
  const auto dir = mtsam::test::fixtures_or_skip();
  if (!dir) {
    return;
  }
  auto options =
      mtsam::test::mtsam_options_from_fixture(mtsam::test::read_json(*dir / "mtsam_tiny.json"));
  auto adapter = options.adapter();
  std::swap(adapter.p, adapter.q);  // the natural mistake: R1 taken as p
  mtsam::MTSAM model(mtsam::MTSAMOptions(options).adapter(adapter));
  const auto message = checkpoint_error(
      [&] { mtsam::load_reference_state_dict(*model, mtsam::read_pth(*dir / "mtsam_tiny.pth")); });
  CHECK(contains(message, "qkv.adapter.U1"));
  CHECK(contains(message, "R2, R1, R3"));

  // A key missing from the reference dict is named, and nothing is copied.
  auto reference = mtsam::read_pth(*dir / "mtsam_tiny.pth");
  reference.erase("mask_decoder.1.iou_token.weight");
  mtsam::MTSAM fitting(options);
  const auto before = fitting->named_parameters()["decoders.0.iou_token.weight"].clone();
  try {
    mtsam::load_reference_state_dict(*fitting, reference);
    FAIL("expected a CheckpointError");
  } catch (const mtsam::CheckpointError& error) {
    CHECK(error.missing == std::vector<std::string>{"decoders.1.iou_token.weight"});
  }
  CHECK(torch::equal(fitting->named_parameters()["decoders.0.iou_token.weight"], before));

  adapter.method = tora::Method::lora_stl;
  mtsam::MTSAM lora(mtsam::MTSAMOptions(options).adapter(adapter));
  CHECK(contains(checkpoint_error([&] {
                   mtsam::load_reference_state_dict(*lora,
                                                    mtsam::read_pth(*dir / "mtsam_tiny.pth"));
                 }),
                 "lora-stl"));
}

TEST_CASE("any cut or flipped byte of a checkpoint gives a checkpoint or a CheckpointError" *
          doctest::test_suite("fixtures")) {
  const auto dir = mtsam::test::fixtures_or_skip();
  if (!dir) {
    return;
  }
  mtsam::test::TempDir temp("mtsam_fuzz");
  const auto bytes = file_bytes(*dir / "mtsam_tiny_io.pth");
  const size_t step = bytes.size() / 97 + 1;
  int refused = 0;
  int read = 0;
  for (size_t at = 0; at < bytes.size(); at += step) {
    for (bool flip : {false, true}) {
      auto copy = bytes;
      if (flip) {
        copy[at] = static_cast<char>(copy[at] ^ 0x5a);
      } else {
        copy.resize(at);
      }
      const auto path = write_bytes(temp.path() / "fuzz.pth", copy);
      try {
        mtsam::read_pth(path);
        ++read;
      } catch (const mtsam::CheckpointError&) {
        ++refused;
      }
    }
  }
  MESSAGE(read, " damaged copies still read, ", refused, " refused");
  CHECK(refused >= 97);  // every cut copy
}
