#pragma once

// Conversions to Eigen, for tests that check the library against formulas written out
// independently of LibTorch.

#include <torch/torch.h>

#include <Eigen/Dense>

namespace tora::test {

/// A 2-D tensor as a double Eigen matrix.
inline Eigen::MatrixXd to_eigen(const torch::Tensor& matrix) {
  auto m = matrix.detach().to(torch::kCPU, torch::kDouble).contiguous();
  Eigen::MatrixXd out(m.size(0), m.size(1));
  auto acc = m.accessor<double, 2>();
  for (int64_t i = 0; i < m.size(0); ++i) {
    for (int64_t j = 0; j < m.size(1); ++j) {
      out(i, j) = acc[i][j];
    }
  }
  return out;
}

}  // namespace tora::test
