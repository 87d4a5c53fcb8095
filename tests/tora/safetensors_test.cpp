#include <doctest/doctest.h>

#include <tora/io/safetensors.hpp>

#include <common/fixtures.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;

fs::path scratch_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("tora_safetensors_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// A file made of a hand-written header and `data_bytes` zero bytes of data.
std::string handmade(const std::string& header, size_t data_bytes) {
  std::string bytes(8, '\0');
  uint64_t length = header.size();
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  }
  return bytes + header + std::string(data_bytes, '\0');
}

void check_read_fails(const fs::path& path, const std::string& expected_fragment) {
  try {
    (void)tora::io::read_safetensors(path);
    FAIL("expected an error mentioning '" << expected_fragment << "'");
  } catch (const std::runtime_error& e) {
    CHECK_MESSAGE(std::string(e.what()).find(expected_fragment) != std::string::npos, e.what());
  }
}

}  // namespace

TEST_CASE("writing then reading safetensors returns every dtype, shape and value") {
  auto dir = scratch_dir("roundtrip");
  torch::manual_seed(0);
  tora::io::NamedTensors tensors = {
      {"f32", torch::randn({2, 3})},
      {"f64", torch::randn({4}, torch::kFloat64)},
      {"f16", torch::randn({3, 1}).to(torch::kFloat16)},
      {"bf16", torch::randn({5}).to(torch::kBFloat16)},
      {"i64", torch::arange(6, torch::kInt64).view({2, 3})},
      {"i32", torch::arange(-3, 3, torch::kInt32)},
      {"i16", torch::arange(4, torch::kInt16)},
      {"i8", torch::arange(-2, 2, torch::kInt8)},
      {"u8", torch::arange(250, 256, torch::kInt32).to(torch::kUInt8)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(3.5)},
      {"empty", torch::zeros({0, 4})},
      {"strided", torch::randn({4, 3}).t()},
  };
  tora::io::Metadata metadata = {{"format", "pt"}, {"note", "tiny"}};
  tora::io::write_safetensors(dir / "t.safetensors", tensors, metadata);

  auto file = tora::io::read_safetensors(dir / "t.safetensors");
  CHECK(file.metadata == metadata);
  REQUIRE(file.tensors.size() == tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    CAPTURE(tensors[i].first);
    CHECK(file.tensors[i].first == tensors[i].first);
    CHECK((file.tensors[i].second.scalar_type() == tensors[i].second.scalar_type()));
    CHECK((file.tensors[i].second.sizes() == tensors[i].second.sizes()));
    CHECK(torch::equal(file.tensors[i].second, tensors[i].second));
  }
  CHECK(file.find("bf16") != nullptr);
  CHECK(file.find("missing") == nullptr);

  // Only the finished file is left behind.
  int files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) {
    ++files;
  }
  CHECK(files == 1);
}

TEST_CASE("the data section of a written file is aligned to 8 bytes") {
  auto dir = scratch_dir("align");
  tora::io::write_safetensors(dir / "a.safetensors", {{"x", torch::ones({3})}});
  auto bytes = read_bytes(dir / "a.safetensors");
  uint64_t length = 0;
  std::memcpy(&length, bytes.data(), 8);
  CHECK(length % 8 == 0);
  CHECK(bytes.size() == 8 + length + 12);
}

TEST_CASE("writing refuses duplicate names and a missing folder, and keeps the old file") {
  auto dir = scratch_dir("refuse");
  CHECK_THROWS_AS(tora::io::write_safetensors(dir / "d.safetensors",
                                              {{"a", torch::ones({1})}, {"a", torch::ones({1})}}),
                  std::runtime_error);
  CHECK_THROWS_AS(
      tora::io::write_safetensors(dir / "no" / "such" / "x.safetensors", {{"a", torch::ones({1})}}),
      std::runtime_error);
  CHECK_THROWS_AS(tora::io::write_safetensors(dir / "c.safetensors",
                                              {{"c", torch::ones({1}, torch::kComplexFloat)}}),
                  std::runtime_error);
  CHECK_FALSE(fs::exists(dir / "c.safetensors"));
}

TEST_CASE("every cut of a valid file is reported as an error") {
  auto dir = scratch_dir("cut");
  tora::io::write_safetensors(dir / "full.safetensors",
                              {{"w", torch::randn({4, 4})}, {"b", torch::randn({4})}});
  auto bytes = read_bytes(dir / "full.safetensors");
  for (size_t keep = 0; keep < bytes.size(); keep += 3) {
    CAPTURE(keep);
    write_bytes(dir / "cut.safetensors", bytes.substr(0, keep));
    CHECK_THROWS_AS(tora::io::read_safetensors(dir / "cut.safetensors"), std::runtime_error);
  }
}

TEST_CASE("garbled files are reported with what was wrong") {
  auto dir = scratch_dir("garbled");
  auto path = dir / "g.safetensors";

  write_bytes(path, handmade("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], ", 8));
  check_read_fails(path, "not valid JSON");

  write_bytes(path, handmade("[1, 2, 3]", 0));
  check_read_fails(path, "JSON object");

  write_bytes(path,
              handmade(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 4));
  check_read_fails(path, "data section holds 4 bytes");

  write_bytes(path,
              handmade(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8));
  check_read_fails(path, "12 bytes by its shape");

  write_bytes(path, handmade(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                             R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                             12));
  check_read_fails(path, "overlap");

  write_bytes(path, handmade(R"({"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 2]}})", 2));
  check_read_fails(path, "dtype 'Q4'");

  write_bytes(path,
              handmade(R"({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", 8));
  check_read_fails(path, "non-negative");

  write_bytes(path, handmade(R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 16],)"
                             R"( "data_offsets": [0, 8]}})",
                             8));
  check_read_fails(path, "overflows");

  write_bytes(path,
              handmade(R"({"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}})", 0) +
                  std::string("\x01\x07", 2));
  check_read_fails(path, "other than 0 and 1");

  write_bytes(path, handmade(R"({"__metadata__": {"k": 3}})", 0));
  check_read_fails(path, "to be a string");

  std::string huge(8, '\xff');
  write_bytes(path, huge + "{}");
  check_read_fails(path, "header length");

  check_read_fails(dir / "absent.safetensors", "cannot open");
}

TEST_CASE("the Hugging Face SAM fixture reads with its float32 tensors" *
          doctest::test_suite("fixtures")) {
  auto dir = tora::test::fixtures_or_skip();
  if (!dir) {
    return;
  }
  auto path = *dir / "sam_tiny_hf.safetensors";
  auto entries = tora::io::inspect_safetensors(path);
  auto file = tora::io::read_safetensors(path);
  REQUIRE(entries.size() == file.tensors.size());
  CHECK(file.tensors.size() > 100);
  for (size_t i = 0; i < entries.size(); ++i) {
    CHECK(entries[i].name == file.tensors[i].first);
    CHECK((file.tensors[i].second.scalar_type() == torch::kFloat32));
    CHECK((file.tensors[i].second.sizes().vec() == entries[i].shape));
  }
  const auto* qkv = file.find("vision_encoder.layers.0.attn.qkv.weight");
  REQUIRE(qkv != nullptr);
  CHECK((qkv->sizes() == torch::IntArrayRef({192, 64})));
  CHECK(qkv->isfinite().all().item<bool>());
}
