// File formats: .npy, PNG/JPEG through stb, MATLAB files through matio, the human parts target.

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <mtsam/data/human_parts.hpp>
#include <mtsam/data/image_io.hpp>
#include <mtsam/data/mat_io.hpp>
#include <mtsam/data/npy.hpp>

#include "data/on_disk.hpp"

namespace md = mtsam::data;
using data_test::TempDir;

namespace {

// The error message of `f`, or "" when it does not throw.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// A version 1.0 .npy file with the given header dict text and payload.
std::string npy_bytes(const std::string& dict, const std::string& payload) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0)
    header.push_back(' ');
  header.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size() & 0xFF));
  out.push_back(static_cast<char>(header.size() >> 8));
  return out + header + payload;
}

}  // namespace

TEST_CASE("npy arrays of every supported dtype survive a write and a read") {
  TempDir dir;
  const auto base = torch::arange(24).reshape({2, 3, 4});
  for (const auto dtype : {torch::kFloat32, torch::kFloat64, torch::kInt8, torch::kInt16,
                           torch::kInt32, torch::kInt64, torch::kUInt8, torch::kFloat16}) {
    const auto path = dir.path() / "a.npy";
    const auto t = base.to(dtype);
    md::write_npy(path, t);
    const auto back = md::read_npy(path);
    CHECK((back.scalar_type() == dtype));
    CHECK(back.sizes() == t.sizes());
    CHECK(back.equal(t));
  }
  const auto mask = base.remainder(3).eq(0);
  md::write_npy(dir.path() / "b.npy", mask);
  CHECK(md::read_npy(dir.path() / "b.npy").equal(mask));
  md::write_npy(dir.path() / "s.npy", torch::tensor(2.5));
  CHECK(md::read_npy(dir.path() / "s.npy").dim() == 0);
  md::write_npy(dir.path() / "v.npy", torch::arange(5));
  CHECK(md::read_npy(dir.path() / "v.npy").sizes() == std::vector<int64_t>{5});
}

TEST_CASE("npy Fortran-order arrays are returned in C order") {
  TempDir dir;
  // The 2x3 matrix [[0, 1, 2], [3, 4, 5]] stored column by column.
  std::string payload;
  for (const int32_t v : {0, 3, 1, 4, 2, 5})
    payload.append(reinterpret_cast<const char*>(&v), 4);
  data_test::write_bytes(
      dir.path() / "f.npy",
      npy_bytes("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }", payload));
  const auto t = md::read_npy(dir.path() / "f.npy");
  CHECK(t.equal(torch::arange(6, torch::kInt32).reshape({2, 3})));
}

TEST_CASE("npy unsigned 16 and 32 bit arrays widen without losing the high bit") {
  TempDir dir;
  const uint16_t a[2] = {65535, 7};
  data_test::write_bytes(dir.path() / "u2.npy",
                         npy_bytes("{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }",
                                   std::string(reinterpret_cast<const char*>(a), 4)));
  const auto t = md::read_npy(dir.path() / "u2.npy");
  CHECK((t.scalar_type() == torch::kInt32));
  CHECK(t[0].item<int32_t>() == 65535);
  CHECK(t[1].item<int32_t>() == 7);
}

TEST_CASE("a broken npy file is an error naming the path, never a crash") {
  TempDir dir;
  const auto p = dir.path() / "broken.npy";
  const std::string f4x4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";

  data_test::write_bytes(p, "PK\x03\x04 not numpy at all");
  CHECK(error_of([&] { md::read_npy(p); }).find("magic") != std::string::npos);
  CHECK(error_of([&] { md::read_npy(p); }).find(p.string()) != std::string::npos);

  data_test::write_bytes(p, npy_bytes(f4x4, std::string(12, '\0')));
  CHECK(error_of([&] { md::read_npy(p); }).find("cut short") != std::string::npos);

  data_test::write_bytes(p, npy_bytes(f4x4, std::string(20, '\0')));
  CHECK(error_of([&] { md::read_npy(p); }).find("trailing") != std::string::npos);

  // A header that claims more bytes than the file holds.
  std::string lying = npy_bytes(f4x4, "");
  lying[8] = '\xFF';
  lying[9] = '\x7F';
  data_test::write_bytes(p, lying);
  CHECK(error_of([&] { md::read_npy(p); }).find("cut after") != std::string::npos);

  data_test::write_bytes(p, npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
                                      std::string(4, '\0')));
  CHECK(error_of([&] { md::read_npy(p); }).find("big-endian") != std::string::npos);

  data_test::write_bytes(
      p, npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "12345678"));
  CHECK(error_of([&] { md::read_npy(p); }).find("unsupported dtype") != std::string::npos);

  data_test::write_bytes(
      p, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, "
                   "99999999999), }",
                   ""));
  CHECK(error_of([&] { md::read_npy(p); }).find("too large") != std::string::npos);

  data_test::write_bytes(p, npy_bytes("{'descr': '<f4', 'shape': (1,), }", "1234"));
  CHECK(error_of([&] { md::read_npy(p); }).find("fortran_order") != std::string::npos);

  data_test::write_bytes(p, std::string("\x93NUMPY\x01", 7));
  CHECK(error_of([&] { md::read_npy(p); }).find("preamble") != std::string::npos);

  const auto missing = dir.path() / "nope" / "0.npy";
  const auto message = error_of([&] { md::read_npy(missing); });
  CHECK(message.find(missing.string()) != std::string::npos);
  CHECK(message.find(".npy") != std::string::npos);
}

TEST_CASE("PNG and JPEG images written with stb read back") {
  TempDir dir;
  const auto rgb = torch::randint(0, 256, {5, 7, 3}, torch::kUInt8);
  md::write_png(dir.path() / "a.png", rgb);
  CHECK(md::read_image(dir.path() / "a.png").equal(rgb));
  CHECK(md::read_image(dir.path() / "a.png", 1).sizes() == std::vector<int64_t>{5, 7, 1});

  const auto flat = torch::full({16, 16, 3}, 200, torch::kUInt8);
  md::write_jpeg(dir.path() / "a.jpg", flat, 100);
  const auto back = md::read_image(dir.path() / "a.jpg", 3);
  CHECK(back.sizes() == flat.sizes());
  CHECK((back.to(torch::kInt32) - 200).abs().max().item<int32_t>() <= 2);

  const auto grey = torch::arange(12, torch::kUInt8).reshape({3, 4});
  md::write_png(dir.path() / "l.png", grey);
  const auto labels = md::read_label_png(dir.path() / "l.png");
  CHECK((labels.scalar_type() == torch::kInt64));
  CHECK(labels.equal(grey.to(torch::kInt64)));
}

TEST_CASE("a palette label PNG reads as palette indices, not colours") {
  TempDir dir;
  const auto idx = torch::tensor({0, 1, 2, 255, 1, 0}, torch::kUInt8).reshape({2, 3});
  std::vector<std::array<uint8_t, 3>> palette(256, {9, 9, 9});
  palette[0] = {0, 0, 0};
  palette[1] = {128, 0, 0};
  palette[2] = {0, 128, 0};
  palette[255] = {224, 224, 192};
  data_test::write_bytes(dir.path() / "p.png", data_test::palette_png(idx, palette));
  CHECK(md::read_image(dir.path() / "p.png", 3)[0][1][0].item<uint8_t>() == 128);
  CHECK(md::read_label_png(dir.path() / "p.png").equal(idx.to(torch::kInt64)));
}

TEST_CASE("unreadable images are errors naming the path") {
  TempDir dir;
  const auto p = dir.path() / "bad.png";
  data_test::write_bytes(p, "\x89PNG\r\n\x1a\n garbage");
  CHECK(error_of([&] { md::read_image(p); }).find(p.string()) != std::string::npos);
  CHECK(error_of([&] { md::read_label_png(p); }).find(p.string()) != std::string::npos);
  const auto missing = dir.path() / "none.jpg";
  CHECK(error_of([&] { md::read_image(missing); }).find(missing.string()) != std::string::npos);
  md::write_jpeg(dir.path() / "x.jpg", torch::zeros({4, 4, 3}, torch::kUInt8));
  CHECK(error_of([&] { md::read_label_png(dir.path() / "x.jpg"); }).find("PNG") !=
        std::string::npos);
  md::write_png(dir.path() / "rgb.png", torch::zeros({4, 4, 3}, torch::kUInt8));
  CHECK(error_of([&] { md::read_label_png(dir.path() / "rgb.png"); }).find("RGB") !=
        std::string::npos);
}

TEST_CASE("MATLAB matrices come back in row-major order") {
  TempDir dir;
  const auto ids = torch::arange(12, torch::kFloat64).reshape({3, 4}) * 37;
  data_test::write_matrix_mat(dir.path() / "m.mat", "LabelMap", ids);
  const auto back = md::read_mat_array(dir.path() / "m.mat", "LabelMap");
  CHECK(back.sizes() == std::vector<int64_t>{3, 4});
  CHECK(back.equal(ids));
  CHECK(error_of([&] { md::read_mat_array(dir.path() / "m.mat", "Other"); }).find("'Other'") !=
        std::string::npos);
  data_test::write_bytes(dir.path() / "bad.mat", "MATLAB 5.0 MAT-file, truncated");
  CHECK(error_of([&] { md::read_mat_array(dir.path() / "bad.mat", "LabelMap"); }).find("bad.mat") !=
        std::string::npos);
}

TEST_CASE("human parts are painted by group in file order, persons only") {
  TempDir dir;
  const int64_t h = 4;
  const int64_t w = 5;
  const auto region = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    auto m = torch::zeros({h, w}, torch::kUInt8);
    m.slice(0, r0, r1).slice(1, c0, c1).fill_(1);
    return m;
  };
  const auto person_mask = region(0, 4, 0, 3);
  std::vector<data_test::PartObject> objects = {
      {"dog", 12, region(0, 4, 3, 5), {}},
      {"person",
       15,
       person_mask,
       {{"head", region(0, 1, 0, 3)},
        {"torso", region(1, 3, 0, 3)},
        {"luarm", region(1, 2, 0, 1)},
        {"rlarm", region(2, 3, 2, 3)},
        {"ruleg", region(3, 4, 0, 1)},
        {"lfoot", region(3, 4, 2, 3)}}},
      // A person without parts paints nothing.
      {"person", 15, region(0, 1, 4, 5), {}},
  };
  data_test::write_parts_mat(dir.path() / "p.mat", objects);
  const auto t = md::read_human_parts(dir.path() / "p.mat", h, w);
  const auto expected = torch::tensor({1, 1, 1, 0, 0,  //
                                       3, 2, 2, 0, 0,  //
                                       2, 2, 4, 0, 0,  //
                                       5, 0, 6, 0, 0},
                                      torch::kInt64)
                            .reshape({h, w});
  CHECK(t.equal(expected));

  data_test::write_parts_mat(dir.path() / "none.mat", {{"person", 15, person_mask, {}}});
  CHECK(md::read_human_parts(dir.path() / "none.mat", h, w).eq(255).all().item<bool>());

  CHECK(error_of([&] { md::read_human_parts(dir.path() / "p.mat", h + 1, w); }).find("mask") !=
        std::string::npos);
  CHECK(md::human_part_group("rebrow") == 1);
  CHECK(md::human_part_group("rfoot") == 6);
  CHECK_THROWS_AS(md::human_part_group("tail"), std::invalid_argument);
}
