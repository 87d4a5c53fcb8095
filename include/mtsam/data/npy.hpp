#pragma once

/// Strict reading and writing of NumPy `.npy` files.
///
/// Read: versions 1.0, 2.0 and 3.0; little-endian (`<`), byte-order-free (`|`) or native (`=`)
/// types f2, f4, f8, i1, i2, i4, i8, u1, u2, u4 and b1; C or Fortran order (Fortran arrays come
/// back in C order). u2 and u4 widen to int32 and int64. A bad magic, a header that does not
/// parse, a big-endian type, or a payload whose size differs from what the header promises is an
/// error naming the path; nothing is read past the end of the file.

#include <torch/torch.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mtsam::data {

static_assert(std::endian::native == std::endian::little,
              "the .npy reader copies little-endian payloads as they are");

namespace detail {

/// Reads a whole file; throws naming `what` (what the file should be) when it cannot be opened.
inline std::vector<char> read_file_bytes(const std::filesystem::path& path, std::string_view what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw std::runtime_error("expected " + std::string(what) + " at " + path.string() +
                             ", but there is no such file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot open " + std::string(what) + " " + path.string());
  }
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::streamoff>(in.tellg());
  in.seekg(0, std::ios::beg);
  if (size < 0) {
    throw std::runtime_error("cannot tell the size of " + std::string(what) + " " + path.string());
  }
  std::vector<char> bytes(static_cast<size_t>(size));
  if (size > 0 && !in.read(bytes.data(), size)) {
    throw std::runtime_error("cannot read " + std::string(what) + " " + path.string());
  }
  return bytes;
}

/// One `.npy` element type: the torch dtype it is read as and its size on disk.
struct NpyType {
  torch::Dtype stored;  // dtype the bytes are copied into (unsigned 16/32 as their signed twin)
  int64_t itemsize;
  bool widen_unsigned = false;  // u2 and u4: reinterpret as unsigned into the next wider type
};

inline NpyType npy_type(const std::string& descr, const std::string& where) {
  if (descr.size() != 3) {
    throw std::runtime_error(where + ": unsupported dtype '" + descr +
                             "' (expected e.g. '<f4', '<i8', '|u1', '|b1')");
  }
  const char order = descr[0];
  if (order == '>') {
    throw std::runtime_error(where + ": big-endian dtype '" + descr +
                             "' is not supported; save the array as little-endian "
                             "(numpy: a.astype(a.dtype.newbyteorder('<')))");
  }
  if (order != '<' && order != '|' && order != '=') {
    throw std::runtime_error(where + ": unknown byte order in dtype '" + descr + "'");
  }
  const std::string code = descr.substr(1);
  if (code == "f2")
    return {torch::kHalf, 2};
  if (code == "f4")
    return {torch::kFloat32, 4};
  if (code == "f8")
    return {torch::kFloat64, 8};
  if (code == "i1")
    return {torch::kInt8, 1};
  if (code == "i2")
    return {torch::kInt16, 2};
  if (code == "i4")
    return {torch::kInt32, 4};
  if (code == "i8")
    return {torch::kInt64, 8};
  if (code == "u1")
    return {torch::kUInt8, 1};
  if (code == "u2")
    return {torch::kInt16, 2, true};
  if (code == "u4")
    return {torch::kInt32, 4, true};
  if (code == "b1")
    return {torch::kUInt8, 1};
  throw std::runtime_error(where + ": unsupported dtype '" + descr +
                           "' (supported: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 b1)");
}

/// The value of `'key':` in the header dict, as raw text up to the next top-level comma or brace.
inline std::string npy_header_value(const std::string& header, const std::string& key,
                                    const std::string& where) {
  size_t pos = header.find("'" + key + "'");
  if (pos == std::string::npos) {
    pos = header.find("\"" + key + "\"");
  }
  if (pos == std::string::npos) {
    throw std::runtime_error(where + ": header has no '" + key + "' entry: " + header);
  }
  pos = header.find(':', pos + key.size() + 2);
  if (pos == std::string::npos) {
    throw std::runtime_error(where + ": header entry '" + key + "' has no value: " + header);
  }
  ++pos;
  while (pos < header.size() && header[pos] == ' ') {
    ++pos;
  }
  size_t end = pos;
  int depth = 0;
  while (end < header.size()) {
    const char c = header[end];
    if (c == '(')
      ++depth;
    if (c == ')')
      --depth;
    if (depth == 0 && (c == ',' || c == '}'))
      break;
    ++end;
  }
  if (end >= header.size() || depth != 0) {
    throw std::runtime_error(where + ": header entry '" + key + "' does not end: " + header);
  }
  std::string value = header.substr(pos, end - pos);
  while (!value.empty() && value.back() == ' ') {
    value.pop_back();
  }
  return value;
}

inline std::vector<int64_t> npy_parse_shape(const std::string& text, const std::string& where) {
  if (text.size() < 2 || text.front() != '(' || text.back() != ')') {
    throw std::runtime_error(where + ": shape is not a tuple: " + text);
  }
  std::vector<int64_t> shape;
  std::string token;
  const auto flush = [&] {
    if (token.empty())
      return;
    if (token.size() > 18 || token.find_first_not_of("0123456789") != std::string::npos) {
      throw std::runtime_error(where + ": bad dimension '" + token + "' in shape " + text);
    }
    shape.push_back(std::stoll(token));
    token.clear();
  };
  for (size_t i = 1; i + 1 < text.size(); ++i) {
    const char c = text[i];
    if (c == ',') {
      flush();
    } else if (c != ' ' && c != 'L') {
      token.push_back(c);
    }
  }
  flush();
  return shape;
}

}  // namespace detail

/// Parses `.npy` bytes; `where` names the source in errors. See the header comment for formats.
inline torch::Tensor parse_npy(const std::vector<char>& bytes, const std::string& where) {
  static constexpr char magic[] = "\x93NUMPY";
  if (bytes.size() >= 6 && std::memcmp(bytes.data(), magic, 6) == 0 && bytes.size() < 10) {
    throw std::runtime_error(where + ": .npy file cut inside its preamble (" +
                             std::to_string(bytes.size()) + " bytes)");
  }
  if (bytes.size() < 10 || std::memcmp(bytes.data(), magic, 6) != 0) {
    throw std::runtime_error(where + ": not a .npy file (the magic string \\x93NUMPY is missing)");
  }
  const auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])); };
  const uint32_t major = byte(6);
  size_t header_len = 0;
  size_t header_start = 0;
  if (major == 1) {
    header_len = byte(8) | (byte(9) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) {
      throw std::runtime_error(where + ": .npy file cut inside its preamble");
    }
    header_len = byte(8) | (byte(9) << 8) | (byte(10) << 16) | (byte(11) << 24);
    header_start = 12;
  } else {
    throw std::runtime_error(where + ": unsupported .npy version " + std::to_string(major) +
                             " (expected 1, 2 or 3)");
  }
  if (header_len > bytes.size() - header_start) {
    throw std::runtime_error(where + ": .npy header claims " + std::to_string(header_len) +
                             " bytes but the file is cut after " +
                             std::to_string(bytes.size() - header_start));
  }
  const std::string header(bytes.data() + header_start, header_len);

  const std::string descr_text = detail::npy_header_value(header, "descr", where);
  if (descr_text.size() < 2 || (descr_text.front() != '\'' && descr_text.front() != '"') ||
      descr_text.back() != descr_text.front()) {
    throw std::runtime_error(where + ": 'descr' is not a simple type string: " + descr_text +
                             " (structured arrays are not supported)");
  }
  const std::string descr = descr_text.substr(1, descr_text.size() - 2);
  const auto type = detail::npy_type(descr, where);
  const bool is_bool = descr.size() == 3 && descr.substr(1) == "b1";
  const std::string fortran_text = detail::npy_header_value(header, "fortran_order", where);
  if (fortran_text != "False" && fortran_text != "True") {
    throw std::runtime_error(where + ": 'fortran_order' must be True or False, got " +
                             fortran_text);
  }
  const bool fortran = fortran_text == "True";
  std::vector<int64_t> shape =
      detail::npy_parse_shape(detail::npy_header_value(header, "shape", where), where);

  int64_t count = 1;
  for (const int64_t d : shape) {
    if (d != 0 && count > std::numeric_limits<int64_t>::max() / type.itemsize / d) {
      throw std::runtime_error(where + ": shape in the header is too large to be real");
    }
    count *= d;
  }
  const size_t data_start = header_start + header_len;
  const size_t expected = static_cast<size_t>(count * type.itemsize);
  const size_t available = bytes.size() - data_start;
  if (available != expected) {
    throw std::runtime_error(where + ": the header promises " + std::to_string(expected) +
                             " data bytes but the file holds " + std::to_string(available) +
                             (available < expected ? " (file cut short)" : " (trailing bytes)"));
  }

  std::vector<int64_t> stored_shape = shape;
  if (fortran) {
    std::reverse(stored_shape.begin(), stored_shape.end());
  }
  torch::Tensor out = torch::empty(stored_shape, torch::TensorOptions().dtype(type.stored));
  if (expected > 0) {
    std::memcpy(out.data_ptr(), bytes.data() + data_start, expected);
  }
  if (is_bool) {
    out = out.ne(0);
  } else if (type.widen_unsigned && type.stored == torch::kInt16) {
    out = out.to(torch::kInt32).bitwise_and(0xFFFF);
  } else if (type.widen_unsigned) {
    out = out.to(torch::kInt64).bitwise_and(0xFFFFFFFFLL);
  }
  if (fortran && shape.size() > 1) {
    std::vector<int64_t> reversed(shape.size());
    for (size_t i = 0; i < shape.size(); ++i) {
      reversed[i] = static_cast<int64_t>(shape.size() - 1 - i);
    }
    out = out.permute(reversed).contiguous();
  }
  return out;
}

/// Reads a `.npy` file into a CPU tensor of the file's dtype (u2 -> int32, u4 -> int64).
inline torch::Tensor read_npy(const std::filesystem::path& path) {
  return parse_npy(detail::read_file_bytes(path, "a .npy array"), path.string());
}

/// Writes a CPU or GPU tensor as a version 1.0, C-order, little-endian `.npy` file.
/// Supported dtypes: float16/32/64, int8/16/32/64, uint8 and bool.
inline void write_npy(const std::filesystem::path& path, const torch::Tensor& tensor) {
  const torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
  std::string descr;
  switch (t.scalar_type()) {
    case torch::kHalf:
      descr = "<f2";
      break;
    case torch::kFloat32:
      descr = "<f4";
      break;
    case torch::kFloat64:
      descr = "<f8";
      break;
    case torch::kInt8:
      descr = "|i1";
      break;
    case torch::kInt16:
      descr = "<i2";
      break;
    case torch::kInt32:
      descr = "<i4";
      break;
    case torch::kInt64:
      descr = "<i8";
      break;
    case torch::kUInt8:
      descr = "|u1";
      break;
    case torch::kBool:
      descr = "|b1";
      break;
    default:
      throw std::invalid_argument("write_npy(" + path.string() + "): unsupported dtype " +
                                  std::string(c10::toString(t.scalar_type())));
  }
  std::string shape = "(";
  for (int64_t d = 0; d < t.dim(); ++d) {
    shape += std::to_string(t.size(d)) + (t.dim() == 1 ? "," : (d + 1 < t.dim() ? ", " : ""));
  }
  shape += ")";
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  TORCH_CHECK(header.size() <= 65535, "write_npy(", path.string(), "): shape too long");

  std::ofstream out(path, std::ios::binary);
  if (!out) {
    throw std::runtime_error("write_npy: cannot create " + path.string());
  }
  const char preamble[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', '\x01', '\x00'};
  out.write(preamble, 8);
  const auto len = static_cast<uint16_t>(header.size());
  const char len_bytes[2] = {static_cast<char>(len & 0xFF), static_cast<char>(len >> 8)};
  out.write(len_bytes, 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  if (!out) {
    throw std::runtime_error("write_npy: failed while writing " + path.string());
  }
}

}  // namespace mtsam::data
