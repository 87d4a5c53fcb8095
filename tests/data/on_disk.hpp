#pragma once

// Tools that make small on-disk data sets for the data tests: a self-removing temporary
// folder, MATLAB files written through matio, and hand-built palette PNGs.

#include <matio.h>
#include <torch/torch.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace data_test {

/// A fresh folder under the system's temporary directory, removed with its content at the end.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("mtsam-data-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// ---- MATLAB files -------------------------------------------------------------------------

inline matvar_t* mat_text(const std::string& text) {
  size_t dims[2] = {1, text.size()};
  return Mat_VarCreate(nullptr, MAT_C_CHAR, MAT_T_UTF8, 2, dims, const_cast<char*>(text.data()), 0);
}

inline matvar_t* mat_scalar(double value) {
  size_t dims[2] = {1, 1};
  return Mat_VarCreate(nullptr, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, &value, 0);
}

inline matvar_t* mat_empty() {
  size_t dims[2] = {0, 0};
  return Mat_VarCreate(nullptr, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, nullptr, 0);
}

/// A uint8 or uint16 `[H, W]` tensor as a MATLAB matrix (stored column-major).
inline matvar_t* mat_matrix(const torch::Tensor& hw, const char* name = nullptr) {
  const torch::Tensor col = hw.t().contiguous();
  size_t dims[2] = {static_cast<size_t>(hw.size(0)), static_cast<size_t>(hw.size(1))};
  if (hw.scalar_type() == torch::kUInt8) {
    return Mat_VarCreate(name, MAT_C_UINT8, MAT_T_UINT8, 2, dims, col.data_ptr(), 0);
  }
  const torch::Tensor d = col.to(torch::kFloat64).contiguous();
  return Mat_VarCreate(name, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, d.data_ptr(), 0);
}

/// One object of a PASCAL-Part annotation: class index, mask and named part masks.
struct PartObject {
  std::string class_name;
  double class_index;
  torch::Tensor mask;  // uint8 [H, W]
  std::vector<std::pair<std::string, torch::Tensor>> parts;
};

/// Writes `anno` with `imname` and `objects` (1xN struct of class, class_ind, mask, parts).
inline void write_parts_mat(const std::filesystem::path& path,
                            const std::vector<PartObject>& objects) {
  std::filesystem::create_directories(path.parent_path());
  mat_t* mat = Mat_CreateVer(path.string().c_str(), nullptr, MAT_FT_MAT5);
  const char* object_fields[] = {"class", "class_ind", "mask", "parts", nullptr};
  size_t object_dims[2] = {1, objects.size()};
  matvar_t* objs = Mat_VarCreateStruct2(nullptr, 2, object_dims, object_fields);
  for (size_t i = 0; i < objects.size(); ++i) {
    const auto& o = objects[i];
    Mat_VarSetStructFieldByName(objs, "class", i, mat_text(o.class_name));
    Mat_VarSetStructFieldByName(objs, "class_ind", i, mat_scalar(o.class_index));
    Mat_VarSetStructFieldByName(objs, "mask", i, mat_matrix(o.mask));
    if (o.parts.empty()) {
      Mat_VarSetStructFieldByName(objs, "parts", i, mat_empty());
      continue;
    }
    const char* part_fields[] = {"part_name", "mask", nullptr};
    size_t part_dims[2] = {1, o.parts.size()};
    matvar_t* parts = Mat_VarCreateStruct2(nullptr, 2, part_dims, part_fields);
    for (size_t p = 0; p < o.parts.size(); ++p) {
      Mat_VarSetStructFieldByName(parts, "part_name", p, mat_text(o.parts[p].first));
      Mat_VarSetStructFieldByName(parts, "mask", p, mat_matrix(o.parts[p].second));
    }
    Mat_VarSetStructFieldByName(objs, "parts", i, parts);
  }
  const char* anno_fields[] = {"imname", "objects", nullptr};
  size_t one[2] = {1, 1};
  matvar_t* anno = Mat_VarCreateStruct2("anno", 2, one, anno_fields);
  Mat_VarSetStructFieldByName(anno, "imname", 0, mat_text("2008_000001.jpg"));
  Mat_VarSetStructFieldByName(anno, "objects", 0, objs);
  Mat_VarWrite(mat, anno, MAT_COMPRESSION_ZLIB);
  Mat_VarFree(anno);
  Mat_Close(mat);
}

/// Writes a numeric `[H, W]` variable `name` (a Context `LabelMap`, say).
inline void write_matrix_mat(const std::filesystem::path& path, const std::string& name,
                             const torch::Tensor& hw) {
  std::filesystem::create_directories(path.parent_path());
  mat_t* mat = Mat_CreateVer(path.string().c_str(), nullptr, MAT_FT_MAT5);
  matvar_t* var = mat_matrix(hw, name.c_str());
  Mat_VarWrite(mat, var, MAT_COMPRESSION_NONE);
  Mat_VarFree(var);
  Mat_Close(mat);
}

// ---- palette PNGs -------------------------------------------------------------------------

inline uint32_t crc32(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (const char ch : bytes) {
    crc ^= static_cast<uint8_t>(ch);
    for (int k = 0; k < 8; ++k)
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

inline std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

inline std::string png_chunk(const std::string& type, const std::string& data) {
  return be32(static_cast<uint32_t>(data.size())) + type + data + be32(crc32(type + data));
}

/// An 8-bit palette PNG of `indices` (uint8 `[H, W]`), deflate "stored" blocks, no compression.
inline std::string palette_png(const torch::Tensor& indices,
                               const std::vector<std::array<uint8_t, 3>>& palette) {
  const auto h = static_cast<uint32_t>(indices.size(0));
  const auto w = static_cast<uint32_t>(indices.size(1));
  std::string raw;
  const torch::Tensor idx = indices.contiguous();
  for (uint32_t y = 0; y < h; ++y) {
    raw.push_back('\0');  // filter: none
    for (uint32_t x = 0; x < w; ++x)
      raw.push_back(static_cast<char>(idx[y][x].item<uint8_t>()));
  }
  std::string z = {'\x78', '\x01', '\x01'};  // zlib header, one final stored block
  const auto len = static_cast<uint16_t>(raw.size());
  z += {static_cast<char>(len & 0xFF), static_cast<char>(len >> 8), static_cast<char>(~len & 0xFF),
        static_cast<char>((~len >> 8) & 0xFF)};
  z += raw;
  uint32_t a = 1;
  uint32_t b = 0;
  for (const char ch : raw) {
    a = (a + static_cast<uint8_t>(ch)) % 65521u;
    b = (b + a) % 65521u;
  }
  z += be32((b << 16) | a);
  std::string ihdr = be32(w) + be32(h);
  ihdr += {'\x08', '\x03', '\0', '\0', '\0'};
  std::string plte;
  for (const auto& c : palette) {
    plte += {static_cast<char>(c[0]), static_cast<char>(c[1]), static_cast<char>(c[2])};
  }
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("PLTE", plte) +
         png_chunk("IDAT", z) + png_chunk("IEND", "");
}

}  // namespace data_test
