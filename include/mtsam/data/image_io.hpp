#pragma once

/// PNG and JPEG reading and writing through stb (the system's libstb holds the implementation).
///
/// `read_image` returns pixel values; `read_label_png` returns the stored values of a label map,
/// which for palette PNGs are the palette indices (stb alone would return the palette colours).

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <mtsam/data/npy.hpp>  // detail::read_file_bytes

namespace mtsam::data {

namespace detail {

/// What the IHDR and PLTE chunks of a PNG say; `is_png` false for other formats.
struct PngHeader {
  bool is_png = false;
  int bit_depth = 0;
  int color_type = 0;
  std::vector<std::array<uint8_t, 3>> palette;
};

inline uint32_t read_be32(const std::vector<char>& bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) {
    v = (v << 8) | static_cast<uint8_t>(bytes[at + i]);
  }
  return v;
}

/// Walks the PNG chunks up to IDAT, bounds-checked; a malformed chunk list stops the walk and
/// leaves the rest to stb, which reports the error.
inline PngHeader png_header(const std::vector<char>& bytes) {
  static constexpr unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  PngHeader header;
  if (bytes.size() < 8 || std::memcmp(bytes.data(), signature, 8) != 0) {
    return header;
  }
  header.is_png = true;
  size_t at = 8;
  while (at + 8 <= bytes.size()) {
    const uint32_t length = read_be32(bytes, at);
    const std::string type(bytes.data() + at + 4, 4);
    const size_t data = at + 8;
    if (length > bytes.size() - data) {
      break;
    }
    if (type == "IHDR" && length >= 13) {
      header.bit_depth = static_cast<uint8_t>(bytes[data + 8]);
      header.color_type = static_cast<uint8_t>(bytes[data + 9]);
    } else if (type == "PLTE") {
      for (size_t i = 0; i + 3 <= length; i += 3) {
        header.palette.push_back({static_cast<uint8_t>(bytes[data + i]),
                                  static_cast<uint8_t>(bytes[data + i + 1]),
                                  static_cast<uint8_t>(bytes[data + i + 2])});
      }
    } else if (type == "IDAT" || type == "IEND") {
      break;
    }
    at = data + length + 4;
  }
  return header;
}

/// Decodes with stb into `[H, W, C]`, 8 or 16 bits; throws naming the path and stb's reason.
inline torch::Tensor stb_decode(const std::vector<char>& bytes, const std::filesystem::path& path,
                                int channels, bool sixteen_bits) {
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    throw std::runtime_error(path.string() + ": image file too large for the decoder");
  }
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(bytes.size());
  int w = 0;
  int h = 0;
  int stored = 0;
  void* pixels =
      sixteen_bits
          ? static_cast<void*>(stbi_load_16_from_memory(data, len, &w, &h, &stored, channels))
          : static_cast<void*>(stbi_load_from_memory(data, len, &w, &h, &stored, channels));
  if (pixels == nullptr) {
    const char* reason = stbi_failure_reason();
    throw std::runtime_error("cannot decode image " + path.string() + ": " +
                             (reason != nullptr ? reason : "unknown reason") +
                             " (expected a PNG or JPEG file)");
  }
  const std::unique_ptr<void, void (*)(void*)> owned(pixels, stbi_image_free);
  const int c = channels > 0 ? channels : stored;
  torch::Tensor out;
  if (sixteen_bits) {
    out = torch::from_blob(pixels, {h, w, c}, torch::kInt16).to(torch::kInt32).bitwise_and(0xFFFF);
  } else {
    out = torch::from_blob(pixels, {h, w, c}, torch::kUInt8).clone();
  }
  return out;
}

}  // namespace detail

/// Reads a PNG or JPEG as uint8 `[H, W, C]`; `channels` 0 keeps the stored count, 1/3/4 convert.
inline torch::Tensor read_image(const std::filesystem::path& path, int channels = 0) {
  TORCH_CHECK(channels >= 0 && channels <= 4, "read_image: channels must be 0..4, got ", channels);
  const auto bytes = detail::read_file_bytes(path, "an image (PNG or JPEG)");
  return detail::stb_decode(bytes, path, channels, false);
}

/// Reads a single-channel label PNG as int64 `[H, W]`: grey values (8 or 16 bits) as stored, and
/// for palette PNGs the palette index of every pixel. An RGB label PNG is refused.
inline torch::Tensor read_label_png(const std::filesystem::path& path) {
  const auto bytes = detail::read_file_bytes(path, "a label map (PNG)");
  const auto header = detail::png_header(bytes);
  if (!header.is_png) {
    throw std::runtime_error(path.string() +
                             ": a label map must be a PNG (lossless), but the "
                             "file does not start with the PNG signature");
  }
  if (header.color_type == 3) {
    const torch::Tensor rgb = detail::stb_decode(bytes, path, 3, false).to(torch::kInt64);
    std::map<int64_t, int64_t> index_of;
    for (size_t i = header.palette.size(); i-- > 0;) {
      const auto& p = header.palette[i];
      index_of[(int64_t{p[0]} << 16) | (int64_t{p[1]} << 8) | p[2]] = static_cast<int64_t>(i);
    }
    const torch::Tensor keys =
        (rgb.select(2, 0) * 65536 + rgb.select(2, 1) * 256 + rgb.select(2, 2)).contiguous();
    torch::Tensor out = torch::empty_like(keys);
    const int64_t* k = keys.data_ptr<int64_t>();
    int64_t* o = out.data_ptr<int64_t>();
    for (int64_t i = 0; i < keys.numel(); ++i) {
      const auto it = index_of.find(k[i]);
      if (it == index_of.end()) {
        throw std::runtime_error(path.string() + ": a pixel colour is not in the PNG palette");
      }
      o[i] = it->second;
    }
    return out;
  }
  if (header.color_type != 0 && header.color_type != 4) {
    throw std::runtime_error(path.string() +
                             ": expected a grey or palette label PNG, got PNG "
                             "colour type " +
                             std::to_string(header.color_type) +
                             " (RGB); convert it to one channel of class indices");
  }
  const bool sixteen = header.bit_depth == 16;
  return detail::stb_decode(bytes, path, 1, sixteen).squeeze(2).to(torch::kInt64);
}

namespace detail {

inline torch::Tensor image_for_writing(const torch::Tensor& image, const char* who,
                                       const std::filesystem::path& path) {
  TORCH_CHECK(image.scalar_type() == torch::kUInt8, who, "(", path.string(),
              "): expected a uint8 image, got ", image.scalar_type());
  TORCH_CHECK(image.dim() == 2 || (image.dim() == 3 && image.size(2) >= 1 && image.size(2) <= 4),
              who, "(", path.string(), "): expected [H, W] or [H, W, C] with C in 1..4, got ",
              image.sizes());
  return image.dim() == 2 ? image.unsqueeze(2).contiguous().cpu() : image.contiguous().cpu();
}

}  // namespace detail

/// Writes uint8 `[H, W]` or `[H, W, C]` (C 1..4) as PNG.
inline void write_png(const std::filesystem::path& path, const torch::Tensor& image) {
  const torch::Tensor t = detail::image_for_writing(image, "write_png", path);
  const int h = static_cast<int>(t.size(0));
  const int w = static_cast<int>(t.size(1));
  const int c = static_cast<int>(t.size(2));
  if (stbi_write_png(path.string().c_str(), w, h, c, t.data_ptr<uint8_t>(), w * c) == 0) {
    throw std::runtime_error("write_png: cannot write " + path.string());
  }
}

/// Writes uint8 `[H, W]` or `[H, W, C]` (C 1..3) as JPEG with `quality` 1..100.
inline void write_jpeg(const std::filesystem::path& path, const torch::Tensor& image,
                       int quality = 95) {
  const torch::Tensor t = detail::image_for_writing(image, "write_jpeg", path);
  TORCH_CHECK(quality >= 1 && quality <= 100, "write_jpeg: quality must be 1..100, got ", quality);
  const int h = static_cast<int>(t.size(0));
  const int w = static_cast<int>(t.size(1));
  const int c = static_cast<int>(t.size(2));
  if (stbi_write_jpg(path.string().c_str(), w, h, c, t.data_ptr<uint8_t>(), quality) == 0) {
    throw std::runtime_error("write_jpeg: cannot write " + path.string());
  }
}

}  // namespace mtsam::data
