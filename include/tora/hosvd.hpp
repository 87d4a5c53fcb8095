#pragma once

/// Theorem 1 of the paper, constructively: T LoRAs of one layer rewritten exactly as one ToRA
/// by a higher-order SVD.

#include <tora/adapters/lora_stl.hpp>
#include <tora/adapters/tora.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

namespace tora {

namespace detail {

/// An orthonormal basis [rows, k] of the column space of `left` [rows, R] * `rights`, where
/// the product is the horizontal concatenation of left * right_t; k = the numerical rank.
inline torch::Tensor column_basis(const torch::Tensor& left,
                                  const std::vector<torch::Tensor>& rights, double tolerance) {
  auto [q, r] = torch::linalg_qr(left, "reduced");
  std::vector<torch::Tensor> blocks;
  for (const auto& right : rights) {
    blocks.push_back(r.mm(right));
  }
  auto small = torch::cat(blocks, 1);
  auto [u, singular, vh] = torch::linalg_svd(small, false);
  const double largest = singular.numel() > 0 ? singular.max().item<double>() : 0.0;
  int64_t rank = largest > 0.0 ? singular.gt(tolerance * largest).sum().item<int64_t>() : 0;
  rank = std::max<int64_t>(rank, 1);
  return q.mm(u.narrow(1, 0, rank));
}

}  // namespace detail

/// A ToRA that reproduces every task's update of `stl` (dW_t = (alpha/r) B_t A_t) within
/// round-off: p = rank of the mode-1 unfolding [dW_1 ... dW_T], q = rank of the mode-2
/// unfolding [dW_1' ... dW_T'], v = T, U3 = I, G[:, :, t] = U1' dW_t U2 / scaling. Ranks count
/// singular values above `rank_tolerance` times the largest. Computed in float64; the result
/// has `stl`'s dtype, device, dropout and output blocks. Then out p + in q <= sum_t (out + in) r.
inline std::shared_ptr<ToraImpl> lora_stl_to_tora(const LoraStlImpl& stl, double scaling = 0.5,
                                                  double rank_tolerance = 1e-6) {
  TORCH_CHECK(scaling != 0.0, "lora_stl_to_tora: scaling must be non-zero");
  torch::NoGradGuard no_grad;
  const int64_t tasks = stl.num_tasks();
  const int64_t r = stl.options.rank();
  const int64_t in = stl.in_features();
  const int64_t out = stl.adapted_rows();
  auto a = stl.A.detach().to(torch::kCPU, torch::kDouble);                // [T, r, in]
  auto b = stl.B.detach().to(torch::kCPU, torch::kDouble) * stl.scale();  // [T, out, r]

  // Mode 1: [B_1 A_1, ..., B_T A_T] = [B_1 ... B_T] blockdiag(A_t).
  std::vector<torch::Tensor> rights1;
  std::vector<torch::Tensor> rights2;
  for (int64_t t = 0; t < tasks; ++t) {
    auto pick = torch::zeros({tasks * r, r}, torch::kDouble);
    pick.narrow(0, t * r, r).copy_(torch::eye(r, torch::kDouble));
    rights1.push_back(pick.mm(a[t]));      // [T r, in]
    rights2.push_back(pick.mm(b[t].t()));  // [T r, out]
  }
  auto u1 =
      detail::column_basis(b.permute({1, 0, 2}).reshape({out, tasks * r}), rights1, rank_tolerance);
  // Mode 2: [A_1' B_1', ..., A_T' B_T'] = [A_1' ... A_T'] blockdiag(B_t').
  auto u2 = detail::column_basis(a.reshape({tasks * r, in}).t(), rights2, rank_tolerance);

  const int64_t p = u1.size(1);
  const int64_t q = u2.size(1);
  auto core = torch::empty({p, q, tasks}, torch::kDouble);
  for (int64_t t = 0; t < tasks; ++t) {
    core.select(2, t).copy_(u1.t().mm(b[t]).mm(a[t].mm(u2)) / scaling);
  }

  auto tora = std::make_shared<ToraImpl>(ToraOptions(stl.in_features(), stl.out_features(), tasks)
                                             .p(p)
                                             .q(q)
                                             .v(tasks)
                                             .scaling(scaling)
                                             .dropout(stl.options.dropout())
                                             .output_blocks(stl.options.output_blocks()));
  tora->G.copy_(core);
  tora->U1.copy_(u1);
  tora->U2.copy_(u2);
  tora->U3.copy_(torch::eye(tasks, torch::kDouble));
  tora->to(stl.A.device(), stl.A.scalar_type());
  return tora;
}

}  // namespace tora
