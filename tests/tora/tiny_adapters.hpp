#pragma once

#include <tora/tora.hpp>

#include <torch/torch.h>

#include <string>

namespace tora::test {

inline constexpr int64_t tiny_tasks = 3;

/// A config of `method` with tiny ranks, three tasks and no dropout.
inline AdapterConfig tiny_config(Method method) {
  AdapterConfig config;
  config.method = method;
  config.num_tasks = tiny_tasks;
  config.rank = 3;
  config.alpha = 6.0;
  config.p = 4;
  config.q = 3;
  config.v = 2;
  config.dropout = 0.0;
  config.num_loras = 2;
  config.num_heads = 2;
  return config;
}

/// A user linear module with torch::nn::Linear's surface, adapted through attach<MyLinearImpl>.
struct MyLinearImpl : torch::nn::Module {
  MyLinearImpl(int64_t in, int64_t out) : options(in, out) {
    weight = register_parameter("weight", torch::randn({out, in}) * 0.2);
    bias = register_parameter("bias", torch::zeros({out}));
  }
  torch::Tensor forward(const torch::Tensor& x) { return torch::linear(x, weight, bias); }
  torch::nn::LinearOptions options;
  torch::Tensor weight;
  torch::Tensor bias;
};
TORCH_MODULE(MyLinear);

/// Gives every parameter of `module` random values, so that every update is non-zero.
inline void randomize(torch::nn::Module& module, double std = 0.3) {
  torch::NoGradGuard no_grad;
  for (auto& param : module.parameters()) {
    param.normal_(0.0, std);
  }
}

/// Largest absolute difference between two tensors, as a double.
inline double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

inline std::string name_of(Method method) {
  return std::string(to_string(method));
}

}  // namespace tora::test
