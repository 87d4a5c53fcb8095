#pragma once

/// Small building blocks shared by SAM's encoder and decoder: a channel LayerNorm for
/// `[B, C, H, W]` maps, the two-layer MLP of the transformer blocks and the n-layer MLP of the
/// decoder heads.

#include <mtsam/options.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace mtsam {

namespace detail {

inline torch::Tensor activate(const torch::Tensor& x, Activation activation) {
  return activation == Activation::gelu ? torch::gelu(x) : torch::relu(x);
}

}  // namespace detail

/// Options of LayerNorm2d.
struct LayerNorm2dOptions {
  /* implicit */ LayerNorm2dOptions(int64_t channels) : channels_(channels) {}
  /// Channels C normalised together at each pixel.
  TORCH_ARG(int64_t, channels);
  /// Added to the variance.
  TORCH_ARG(double, eps) = 1e-6;
};

/// LayerNorm over the channels of `[B, C, H, W]`, at every pixel, with a per-channel affine.
class LayerNorm2dImpl : public torch::nn::Cloneable<LayerNorm2dImpl> {
 public:
  explicit LayerNorm2dImpl(LayerNorm2dOptions options_) : options(std::move(options_)) {
    LayerNorm2dImpl::reset();
  }

  void reset() override {
    weight = register_parameter("weight", torch::ones({options.channels()}));
    bias = register_parameter("bias", torch::zeros({options.channels()}));
  }

  /// `[B, C, H, W]` -> `[B, C, H, W]`.
  torch::Tensor forward(const torch::Tensor& x) {
    TORCH_CHECK(x.dim() == 4 && x.size(1) == options.channels(), "LayerNorm2d expects [B, ",
                options.channels(), ", H, W], got ", x.sizes());
    const auto normed = torch::layer_norm(x.permute({0, 2, 3, 1}), {options.channels()}, weight,
                                          bias, options.eps());
    return normed.permute({0, 3, 1, 2});
  }

  LayerNorm2dOptions options;
  torch::Tensor weight;
  torch::Tensor bias;
};
TORCH_MODULE(LayerNorm2d);

/// Options of MLPBlock.
struct MLPBlockOptions {
  MLPBlockOptions(int64_t embedding_dim, int64_t mlp_dim)
      : embedding_dim_(embedding_dim), mlp_dim_(mlp_dim) {}
  /// Input and output width.
  TORCH_ARG(int64_t, embedding_dim);
  /// Hidden width.
  TORCH_ARG(int64_t, mlp_dim);
  /// Activation between the two layers.
  TORCH_ARG(Activation, activation) = Activation::gelu;
};

/// `lin2(act(lin1(x)))`, the MLP of the encoder and decoder transformer blocks.
class MLPBlockImpl : public torch::nn::Cloneable<MLPBlockImpl> {
 public:
  explicit MLPBlockImpl(MLPBlockOptions options_) : options(std::move(options_)) {
    MLPBlockImpl::reset();
  }

  void reset() override {
    lin1 = register_module("lin1", torch::nn::Linear(options.embedding_dim(), options.mlp_dim()));
    lin2 = register_module("lin2", torch::nn::Linear(options.mlp_dim(), options.embedding_dim()));
  }

  /// `[..., embedding_dim]` -> `[..., embedding_dim]`.
  torch::Tensor forward(const torch::Tensor& x) {
    return lin2->forward(detail::activate(lin1->forward(x), options.activation()));
  }

  MLPBlockOptions options;
  torch::nn::Linear lin1{nullptr};
  torch::nn::Linear lin2{nullptr};
};
TORCH_MODULE(MLPBlock);

/// Options of Mlp.
struct MlpOptions {
  MlpOptions(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers)
      : input_dim_(input_dim),
        hidden_dim_(hidden_dim),
        output_dim_(output_dim),
        num_layers_(num_layers) {}
  /// Input width.
  TORCH_ARG(int64_t, input_dim);
  /// Width of every hidden layer.
  TORCH_ARG(int64_t, hidden_dim);
  /// Output width.
  TORCH_ARG(int64_t, output_dim);
  /// Number of linear layers (at least 1).
  TORCH_ARG(int64_t, num_layers);
  /// Whether a sigmoid follows the last layer.
  TORCH_ARG(bool, sigmoid_output) = false;
};

/// Linear layers `layers.0 .. layers.{n-1}` with ReLU between them: the decoder's hypernetwork
/// and IoU heads.
class MlpImpl : public torch::nn::Cloneable<MlpImpl> {
 public:
  explicit MlpImpl(MlpOptions options_) : options(std::move(options_)) { MlpImpl::reset(); }

  void reset() override {
    TORCH_CHECK(options.num_layers() >= 1, "an Mlp needs at least one layer, got ",
                options.num_layers());
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < options.num_layers(); ++i) {
      const int64_t in = i == 0 ? options.input_dim() : options.hidden_dim();
      const int64_t out =
          i + 1 == options.num_layers() ? options.output_dim() : options.hidden_dim();
      layers->push_back(torch::nn::Linear(in, out));
    }
  }

  /// `[..., input_dim]` -> `[..., output_dim]`.
  torch::Tensor forward(torch::Tensor x) {
    for (int64_t i = 0; i < options.num_layers(); ++i) {
      x = layers[i]->as<torch::nn::Linear>()->forward(x);
      if (i + 1 < options.num_layers()) {
        x = torch::relu(x);
      }
    }
    return options.sigmoid_output() ? torch::sigmoid(x) : x;
  }

  MlpOptions options;
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(Mlp);

}  // namespace mtsam
