#include <torch/torch.h>

#include <cstdint>
#include <iostream>

#include <tora/tora.hpp>

int tora_test_scale(const float* input, float* output, float factor, int64_t count);

int main() {
  if (!torch::cuda::is_available()) {
    std::cout << "cuda_check: skipped, no CUDA device (the target compiled and linked)\n";
    return 77;  // a skip, for the test runner
  }
  auto input = torch::arange(1000, torch::dtype(torch::kFloat32).device(torch::kCUDA));
  auto output = torch::empty_like(input);
  const int error =
      tora_test_scale(input.data_ptr<float>(), output.data_ptr<float>(), 2.0F, input.numel());
  if (error != 0 || !torch::equal(output, input * 2)) {
    std::cerr << "cuda_check: expected the kernel to double the input, got error " << error << '\n';
    return 1;
  }
  std::cout << "cuda_check: kernel ran on " << torch::cuda::device_count() << " device(s)\n";
  return 0;
}
