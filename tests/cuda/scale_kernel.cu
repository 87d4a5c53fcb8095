#include <cuda_runtime.h>

#include <cstdint>

namespace {

__global__ void scale_kernel(const float* input, float* output, float factor, int64_t count) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index < count) {
    output[index] = factor * input[index];
  }
}

}  // namespace

/// Multiplies `count` floats on the device by `factor`; returns the CUDA error code.
int tora_test_scale(const float* input, float* output, float factor, int64_t count) {
  constexpr int threads = 256;
  const auto blocks = static_cast<unsigned>((count + threads - 1) / threads);
  scale_kernel<<<blocks, threads>>>(input, output, factor, count);
  return static_cast<int>(cudaDeviceSynchronize());
}
