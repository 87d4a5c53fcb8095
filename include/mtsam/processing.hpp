#pragma once

/// Pre- and post-processing around the model, as the reference does it: resize the long side
/// to the encoder size (bilinear, antialiased), zero-pad bottom and right to a square, and map
/// the low-resolution outputs back to the original image size.

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace mtsam {

/// Height and width of an image.
struct ImageSize {
  int64_t height = 0;
  int64_t width = 0;
  bool operator==(const ImageSize&) const = default;
};

/// The size an `original` image takes once its long side is `long_side` (rounded to nearest).
inline ImageSize resized_size(ImageSize original, int64_t long_side) {
  TORCH_CHECK(original.height > 0 && original.width > 0 && long_side > 0,
              "sizes must be positive, got ", original.height, "x", original.width,
              " and long side ", long_side);
  const double scale = static_cast<double>(long_side) /
                       static_cast<double>(std::max(original.height, original.width));
  return {static_cast<int64_t>(static_cast<double>(original.height) * scale + 0.5),
          static_cast<int64_t>(static_cast<double>(original.width) * scale + 0.5)};
}

namespace detail {

inline torch::Tensor bilinear(const torch::Tensor& x, ImageSize size, bool antialias) {
  namespace F = torch::nn::functional;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{size.height, size.width})
                               .mode(torch::kBilinear)
                               .align_corners(false)
                               .antialias(antialias));
}

inline torch::Tensor as_batch(const torch::Tensor& x, const char* what) {
  TORCH_CHECK(x.dim() == 3 || x.dim() == 4, what, " must be [C, H, W] or [B, C, H, W], got ",
              x.sizes());
  return x.dim() == 3 ? x.unsqueeze(0) : x;
}

}  // namespace detail

/// How images are prepared for the encoder.
struct PreprocessOptions {
  /// The encoder's square input side.
  int64_t size = 1024;
  /// Per-channel mean subtracted before padding (the reference MTSAM uses none; official SAM
  /// uses {123.675, 116.28, 103.53} on 0..255 images).
  std::optional<std::array<double, 3>> mean = std::nullopt;
  /// Per-channel standard deviation (official SAM: {58.395, 57.12, 57.375}).
  std::optional<std::array<double, 3>> std = std::nullopt;
};

/// Images ready for the encoder, and the size they had after resizing (before padding).
struct Preprocessed {
  torch::Tensor images;  ///< `[B, C, size, size]`
  ImageSize input_size;  ///< the resized image inside the padded square
  ImageSize original_size;
};

/// Resizes `[B, C, H, W]` (or `[C, H, W]`) so that the long side is `options.size` (bilinear,
/// antialiased; skipped when already so), normalises if asked, and zero-pads bottom and right.
inline Preprocessed preprocess(const torch::Tensor& images, const PreprocessOptions& options = {}) {
  auto x = detail::as_batch(images, "images").to(torch::kFloat32);
  const ImageSize original{x.size(2), x.size(3)};
  const ImageSize input = resized_size(original, options.size);
  if (!(input == original)) {
    x = detail::bilinear(x, input, true);
  }
  if (options.mean || options.std) {
    TORCH_CHECK(x.size(1) == 3, "normalisation needs 3 channels, got ", x.size(1));
    const auto mean = options.mean.value_or(std::array<double, 3>{0.0, 0.0, 0.0});
    const auto std = options.std.value_or(std::array<double, 3>{1.0, 1.0, 1.0});
    const auto m = torch::tensor({mean[0], mean[1], mean[2]}, x.options()).view({1, 3, 1, 1});
    const auto s = torch::tensor({std[0], std[1], std[2]}, x.options()).view({1, 3, 1, 1});
    x = (x - m) / s;
  }
  x = torch::constant_pad_nd(x, {0, options.size - input.width, 0, options.size - input.height});
  return {x, input, original};
}

/// Maps low-resolution outputs `[B, N, h, w]` back: bilinear to `encoder_size` squared, crop
/// to `input_size`, bilinear to `original_size`. Returns `[B, N, H, W]`.
inline torch::Tensor postprocess(const torch::Tensor& outputs, int64_t encoder_size,
                                 ImageSize input_size, ImageSize original_size) {
  const auto x = detail::as_batch(outputs, "outputs");
  TORCH_CHECK(input_size.height <= encoder_size && input_size.width <= encoder_size,
              "the resized input ", input_size.height, "x", input_size.width,
              " does not fit the encoder size ", encoder_size);
  auto y = detail::bilinear(x, {encoder_size, encoder_size}, false);
  y = y.narrow(2, 0, input_size.height).narrow(3, 0, input_size.width);
  return detail::bilinear(y, original_size, false);
}

/// postprocess with the sizes recorded by preprocess.
inline torch::Tensor postprocess(const torch::Tensor& outputs, int64_t encoder_size,
                                 const Preprocessed& prepared) {
  return postprocess(outputs, encoder_size, prepared.input_size, prepared.original_size);
}

}  // namespace mtsam
