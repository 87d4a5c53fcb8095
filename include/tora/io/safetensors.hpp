#pragma once

/// Reading and writing the safetensors format: an 8-byte little-endian header length, a JSON
/// header (`name -> {dtype, shape, data_offsets}` plus an optional `__metadata__` string map),
/// then the raw little-endian tensor bytes. Every size and offset in a file is checked before a
/// byte of tensor data is read, so a cut or corrupt file gives an error, never an overread.

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tora::io {

static_assert(std::endian::native == std::endian::little,
              "tora::io reads and writes safetensors on little-endian hosts only");

/// Named tensors in file order.
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

/// The `__metadata__` map of a safetensors file (string -> string).
using Metadata = std::map<std::string, std::string>;

/// What a safetensors file holds: tensors in header order, plus its metadata.
struct SafetensorsFile {
  NamedTensors tensors;
  Metadata metadata;

  /// The tensor called `name`, or nullptr.
  const torch::Tensor* find(std::string_view name) const {
    for (const auto& [key, tensor] : tensors) {
      if (key == name) {
        return &tensor;
      }
    }
    return nullptr;
  }
};

/// One header entry, as described by the file (nothing is read from the data section).
struct SafetensorsEntry {
  std::string name;
  std::string dtype;  ///< e.g. "F32", "BF16"
  std::vector<int64_t> shape;
  uint64_t begin = 0;  ///< byte offset inside the data section
  uint64_t end = 0;    ///< one past the last byte
};

/// The largest header accepted (the format's own limit is 100 MB).
inline constexpr uint64_t max_safetensors_header_bytes = 100'000'000;

namespace detail {

struct DtypeInfo {
  std::string_view name;
  torch::ScalarType type;
  uint64_t size;
};

inline constexpr DtypeInfo safetensors_dtypes[] = {
    {"F64", torch::kFloat64, 8},   {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},     {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1}};

inline const DtypeInfo* dtype_by_name(std::string_view name) {
  for (const auto& info : safetensors_dtypes) {
    if (info.name == name) {
      return &info;
    }
  }
  return nullptr;
}

inline const DtypeInfo* dtype_by_type(torch::ScalarType type) {
  for (const auto& info : safetensors_dtypes) {
    if (info.type == type) {
      return &info;
    }
  }
  return nullptr;
}

[[noreturn]] inline void fail(const std::filesystem::path& path, const std::string& what) {
  throw std::runtime_error("safetensors file '" + path.string() + "': " + what);
}

inline uint64_t checked_mul(uint64_t a, uint64_t b, const std::filesystem::path& path,
                            const std::string& key) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) {
    fail(path, "the shape of '" + key + "' overflows a 64-bit byte count");
  }
  return a * b;
}

struct ParsedHeader {
  std::vector<SafetensorsEntry> entries;
  Metadata metadata;
  uint64_t data_start = 0;
};

inline ParsedHeader parse_header(std::ifstream& in, const std::filesystem::path& path) {
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) {
    fail(path, "cannot read its size (" + ec.message() + ")");
  }
  if (file_size < 8) {
    fail(path, "expected at least 8 bytes (the header length), got " + std::to_string(file_size));
  }
  unsigned char length_bytes[8];
  in.read(reinterpret_cast<char*>(length_bytes), 8);
  if (!in) {
    fail(path, "cannot read the 8-byte header length");
  }
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) {
    header_size = (header_size << 8) | length_bytes[i];
  }
  if (header_size > max_safetensors_header_bytes || header_size > file_size - 8) {
    fail(path, "header length " + std::to_string(header_size) + " does not fit in a file of " +
                   std::to_string(file_size) + " bytes (the file is cut or not safetensors)");
  }
  std::string text(header_size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_size));
  if (!in) {
    fail(path, "cannot read the " + std::to_string(header_size) + "-byte header");
  }

  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("the header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) {
    fail(path, "expected the header to be a JSON object, got " + std::string(header.type_name()));
  }

  ParsedHeader parsed;
  parsed.data_start = 8 + header_size;
  const uint64_t data_size = file_size - parsed.data_start;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) {
        fail(path, "expected __metadata__ to be an object of strings");
      }
      for (const auto& [meta_key, meta_value] : value.items()) {
        if (!meta_value.is_string()) {
          fail(path, "expected __metadata__['" + meta_key + "'] to be a string, got " +
                         std::string(meta_value.type_name()));
        }
        parsed.metadata[meta_key] = meta_value.get<std::string>();
      }
      continue;
    }
    if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") ||
        !value.contains("data_offsets")) {
      fail(path, "expected entry '" + key + "' to be an object with dtype, shape, data_offsets");
    }
    const auto& dtype = value["dtype"];
    const auto& shape = value["shape"];
    const auto& offsets = value["data_offsets"];
    if (!dtype.is_string()) {
      fail(path, "expected the dtype of '" + key + "' to be a string");
    }
    const DtypeInfo* info = dtype_by_name(dtype.get<std::string>());
    if (info == nullptr) {
      fail(path, "tensor '" + key + "' has dtype '" + dtype.get<std::string>() +
                     "', expected one of F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL");
    }
    if (!shape.is_array() || !offsets.is_array() || offsets.size() != 2) {
      fail(path, "expected '" + key + "' to have a shape array and two data_offsets");
    }
    SafetensorsEntry entry{key, std::string(info->name), {}, 0, 0};
    uint64_t bytes = info->size;
    for (const auto& dim : shape) {
      if (!dim.is_number_unsigned() ||
          dim.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail(path, "expected the shape of '" + key + "' to hold non-negative integers");
      }
      entry.shape.push_back(static_cast<int64_t>(dim.get<uint64_t>()));
      bytes = checked_mul(bytes, dim.get<uint64_t>(), path, key);
    }
    if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
      fail(path, "expected the data_offsets of '" + key + "' to be non-negative integers");
    }
    entry.begin = offsets[0].get<uint64_t>();
    entry.end = offsets[1].get<uint64_t>();
    if (entry.begin > entry.end || entry.end > data_size) {
      fail(path, "tensor '" + key + "' spans bytes [" + std::to_string(entry.begin) + ", " +
                     std::to_string(entry.end) + ") but the data section holds " +
                     std::to_string(data_size) + " bytes (the file is cut or corrupt)");
    }
    if (entry.end - entry.begin != bytes) {
      fail(path, "tensor '" + key + "' (" + entry.dtype + ", " + std::to_string(bytes) +
                     " bytes by its shape) spans " + std::to_string(entry.end - entry.begin) +
                     " bytes");
    }
    parsed.entries.push_back(std::move(entry));
  }

  std::vector<const SafetensorsEntry*> by_offset;
  for (const auto& entry : parsed.entries) {
    by_offset.push_back(&entry);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto* a, const auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end) {
      fail(path, "tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name +
                     "' overlap in the data section");
    }
  }
  return parsed;
}

inline std::ifstream open_for_reading(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fail(path, "cannot open it for reading (does it exist?)");
  }
  return in;
}

}  // namespace detail

/// The header entries of a safetensors file, without reading any tensor data.
inline std::vector<SafetensorsEntry> inspect_safetensors(const std::filesystem::path& path) {
  auto in = detail::open_for_reading(path);
  return detail::parse_header(in, path).entries;
}

/// Reads every tensor of a safetensors file onto the CPU, in header order.
/// Throws std::runtime_error naming the path and the problem for a missing, cut or corrupt file.
inline SafetensorsFile read_safetensors(const std::filesystem::path& path) {
  auto in = detail::open_for_reading(path);
  auto header = detail::parse_header(in, path);

  SafetensorsFile file;
  file.metadata = std::move(header.metadata);
  file.tensors.reserve(header.entries.size());
  for (const auto& entry : header.entries) {
    const auto* info = detail::dtype_by_name(entry.dtype);
    auto tensor = torch::empty(entry.shape, torch::TensorOptions().dtype(info->type));
    const uint64_t bytes = entry.end - entry.begin;
    if (bytes > 0) {
      // Bool tensors go through a byte buffer first so that only 0/1 values become bools.
      auto target = info->type == torch::kBool ? torch::empty(entry.shape, torch::kUInt8) : tensor;
      in.seekg(static_cast<std::streamoff>(header.data_start + entry.begin));
      in.read(static_cast<char*>(target.data_ptr()), static_cast<std::streamsize>(bytes));
      if (!in) {
        detail::fail(path, "cannot read the bytes of '" + entry.name + "'");
      }
      if (info->type == torch::kBool) {
        if (target.gt(1).any().item<bool>()) {
          detail::fail(path, "BOOL tensor '" + entry.name + "' holds bytes other than 0 and 1");
        }
        tensor = target.to(torch::kBool);
      }
    }
    file.tensors.emplace_back(entry.name, std::move(tensor));
  }
  return file;
}

/// Writes `tensors` (any device; saved as they are, contiguous, in the given order) and
/// `metadata` to `path` atomically: the bytes go to a temporary file beside it, renamed over
/// `path` only once complete. Names must be unique, non-empty and not `__metadata__`.
inline void write_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                              const Metadata& metadata = {}) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    header["__metadata__"] = metadata;
  }
  std::set<std::string> seen;
  std::vector<torch::Tensor> host;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == "__metadata__" || !seen.insert(name).second) {
      detail::fail(path, "cannot write tensor name '" + name +
                             "': names must be unique, non-empty and not __metadata__");
    }
    TORCH_CHECK(tensor.defined(), "safetensors file '", path.string(), "': tensor '", name,
                "' is undefined");
    const auto* info = detail::dtype_by_type(tensor.scalar_type());
    if (info == nullptr) {
      detail::fail(path, "tensor '" + name + "' has dtype " +
                             std::string(c10::toString(tensor.scalar_type())) +
                             ", which safetensors files here do not hold; convert it first");
    }
    auto cpu = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(cpu.numel()) * info->size;
    header[name] = {{"dtype", std::string(info->name)},
                    {"shape", cpu.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    host.push_back(std::move(cpu));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  std::random_device device;
  auto temp = path;
  temp += ".tmp" + std::to_string(device());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) {
      detail::fail(path, "cannot create the temporary file '" + temp.string() +
                             "' (does the folder exist and is it writable?)");
    }
    unsigned char length_bytes[8];
    uint64_t length = text.size();
    for (auto& byte : length_bytes) {
      byte = static_cast<unsigned char>(length & 0xff);
      length >>= 8;
    }
    out.write(reinterpret_cast<const char*>(length_bytes), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& tensor : host) {
      out.write(static_cast<const char*>(tensor.data_ptr()),
                static_cast<std::streamsize>(tensor.numel() * tensor.element_size()));
    }
    out.flush();
    if (!out) {
      out.close();
      std::error_code ignored;
      std::filesystem::remove(temp, ignored);
      detail::fail(path, "writing the temporary file failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    detail::fail(path, "cannot move the finished temporary file into place (" + ec.message() + ")");
  }
}

}  // namespace tora::io
