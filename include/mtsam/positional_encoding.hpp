#pragma once

/// SAM's positional encoding with random spatial frequencies: a fixed Gaussian matrix
/// `G [2, C/2]` maps a point `c` in `[0, 1]^2` to `[sin(2 pi (2c - 1) G), cos(2 pi (2c - 1) G)]`.

#include <torch/torch.h>

#include <cstdint>
#include <numbers>

namespace mtsam {

/// Options of PositionEmbeddingRandom.
struct PositionEmbeddingRandomOptions {
  /* implicit */ PositionEmbeddingRandomOptions(int64_t num_pos_feats = 128)
      : num_pos_feats_(num_pos_feats) {}
  /// Frequencies C/2; the encoding has 2 * num_pos_feats channels.
  TORCH_ARG(int64_t, num_pos_feats);
  /// Standard deviation of the Gaussian frequencies at initialisation.
  TORCH_ARG(double, scale) = 1.0;
};

/// Holds the buffer `positional_encoding_gaussian_matrix` `[2, C/2]`.
class PositionEmbeddingRandomImpl : public torch::nn::Cloneable<PositionEmbeddingRandomImpl> {
 public:
  explicit PositionEmbeddingRandomImpl(PositionEmbeddingRandomOptions options_ = {})
      : options(std::move(options_)) {
    PositionEmbeddingRandomImpl::reset();
  }

  void reset() override {
    gaussian_matrix = register_buffer("positional_encoding_gaussian_matrix",
                                      torch::randn({2, options.num_pos_feats()}) *
                                          (options.scale() > 0.0 ? options.scale() : 1.0));
  }

  /// Encodes points normalised to `[0, 1]^2`: `[..., 2]` (x, y) -> `[..., C]`.
  torch::Tensor encode(const torch::Tensor& coords) const {
    const auto projected =
        torch::matmul(coords * 2.0 - 1.0, gaussian_matrix) * (2.0 * std::numbers::pi);
    return torch::cat({torch::sin(projected), torch::cos(projected)}, -1);
  }

  /// The encoding of the centres of an `h x w` grid: `[C, h, w]`.
  torch::Tensor forward(int64_t h, int64_t w) const {
    const auto options_f =
        torch::TensorOptions().dtype(torch::kFloat32).device(gaussian_matrix.device());
    const auto ones = torch::ones({h, w}, options_f);
    const auto y = (ones.cumsum(0) - 0.5) / static_cast<double>(h);
    const auto x = (ones.cumsum(1) - 0.5) / static_cast<double>(w);
    return encode(torch::stack({x, y}, -1)).permute({2, 0, 1});
  }

  /// Encodes pixel coordinates `[B, N, 2]` (x, y) of an image of `height x width` pixels.
  torch::Tensor forward_with_coords(const torch::Tensor& coords, int64_t height,
                                    int64_t width) const {
    auto normalised = coords.to(torch::kFloat32).clone();
    normalised.select(-1, 0).div_(static_cast<double>(width));
    normalised.select(-1, 1).div_(static_cast<double>(height));
    return encode(normalised);
  }

  PositionEmbeddingRandomOptions options;
  torch::Tensor gaussian_matrix;
};
TORCH_MODULE(PositionEmbeddingRandom);

}  // namespace mtsam
