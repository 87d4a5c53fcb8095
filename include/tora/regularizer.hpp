#pragma once

/// The orthogonal regulariser over every ToRA adapter of a model (the paper's Eq. 9).

#include <tora/adapters/tora.hpp>

#include <torch/torch.h>

#include <vector>

namespace tora {

/// Which form of the regulariser.
enum class RegularizerForm {
  /// The paper: sum over layers of ||U1'U1 - I||_F^2 + ||U2'U2 - I||_F^2
  /// + sum_l ||G_l'G_l - I||_F^2.
  paper,
  /// The reference code: the mean, over every such term of every layer, of the plain
  /// (unsquared) Frobenius norm, with the core term taken in the reference's factor order
  /// (G_l G_l' here; the same as the paper's when p == q).
  reference,
};

/// The orthogonal regulariser of every ToraImpl in `module`, a float32 scalar on the
/// parameters' device (0 when there is none). Differentiable.
inline torch::Tensor orthogonal_regularizer(const torch::nn::Module& module,
                                            RegularizerForm form = RegularizerForm::paper) {
  std::vector<torch::Tensor> terms;
  auto add_terms = [&](const ToraImpl& tora) {
    for (const auto& residual : tora.orthogonality_residuals(form == RegularizerForm::reference)) {
      terms.push_back(form == RegularizerForm::paper ? residual.pow(2).sum() : residual.norm());
    }
  };
  if (const auto* self = dynamic_cast<const ToraImpl*>(&module)) {
    add_terms(*self);
  }
  for (const auto& child : module.modules(false)) {
    if (const auto* tora = dynamic_cast<const ToraImpl*>(child.get())) {
      add_terms(*tora);
    }
  }
  if (terms.empty()) {
    return torch::zeros({});
  }
  auto stacked = torch::stack(terms);
  return form == RegularizerForm::paper ? stacked.sum() : stacked.mean();
}

}  // namespace tora
