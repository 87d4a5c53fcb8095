// Each method's forward against its formula (REFERENCE section 4), written out row by row in
// double precision with Eigen from the adapter's own parameters.

#include <doctest/doctest.h>

#include <tora/tora.hpp>

#include "eigen_reference.hpp"
#include "tiny_adapters.hpp"

#include <cmath>
#include <vector>

namespace {

using tora::test::name_of;
using tora::test::tiny_config;
using tora::test::tiny_tasks;
using tora::test::to_eigen;

constexpr int64_t in_features = 7;
constexpr int64_t out_features = 5;

/// The update s dW x of each method, for task `task` and one input row `x` [in].
Eigen::VectorXd formula(const tora::AdapterBase& adapter, int64_t task, const Eigen::VectorXd& x) {
  if (const auto* a = dynamic_cast<const tora::LoraStlImpl*>(&adapter)) {
    // (alpha / r) B_t A_t x
    return a->scale() * to_eigen(a->B[task]) * (to_eigen(a->A[task]) * x);
  }
  if (const auto* a = dynamic_cast<const tora::LoraImpl*>(&adapter)) {
    // (alpha / r) B A x, the same for every task (LoRA and LoRA-HPS)
    return a->scale() * to_eigen(a->B) * (to_eigen(a->A) * x);
  }
  if (const auto* a = dynamic_cast<const tora::MultiLoraImpl*>(&adapter)) {
    // (alpha / r) sum_i diag(s_i) B_i A_i x
    Eigen::VectorXd y = Eigen::VectorXd::Zero(out_features);
    for (int64_t i = 0; i < a->A.size(0); ++i) {
      const Eigen::VectorXd s = to_eigen(a->scales[i].view({-1, 1}));
      y += (s.array() * (to_eigen(a->B[i]) * (to_eigen(a->A[i]) * x)).array()).matrix();
    }
    return a->scale() * y;
  }
  if (const auto* a = dynamic_cast<const tora::HydraLoraImpl*>(&adapter)) {
    // (alpha / r) sum_i w_i B_i A x, with w = softmax(R x)
    const Eigen::VectorXd logits = to_eigen(a->router) * x;
    const Eigen::ArrayXd e = (logits.array() - logits.maxCoeff()).exp();
    const Eigen::ArrayXd w = e / e.sum();
    Eigen::VectorXd y = Eigen::VectorXd::Zero(out_features);
    for (int64_t i = 0; i < a->B.size(0); ++i) {
      y += w(i) * (to_eigen(a->B[i]) * (to_eigen(a->A) * x));
    }
    return a->scale() * y;
  }
  if (const auto* a = dynamic_cast<const tora::TerraImpl*>(&adapter)) {
    // (alpha / r) B K(t)' A x, with K(t) = I + c_t Omega_t
    const int64_t r = a->A.size(0);
    const double c = a->coordinates[task].item<double>();
    const Eigen::MatrixXd k =
        Eigen::MatrixXd::Identity(r, r) + c * to_eigen(a->Omega[a->Omega.size(0) == 1 ? 0 : task]);
    return a->scale() * to_eigen(a->B) * (k.transpose() * (to_eigen(a->A) * x));
  }
  if (const auto* a = dynamic_cast<const tora::ToraImpl*>(&adapter)) {
    // s U1 G_t U2' x, with G_t = sum_l U3[t, l] G[:, :, l]
    Eigen::MatrixXd g = Eigen::MatrixXd::Zero(a->G.size(0), a->G.size(1));
    for (int64_t l = 0; l < a->G.size(2); ++l) {
      g += a->U3[task][l].item<double>() * to_eigen(a->G.select(2, l));
    }
    return a->options.scaling() * to_eigen(a->U1) * (g * (to_eigen(a->U2).transpose() * x));
  }
  FAIL("no formula for this adapter");
  return {};
}

}  // namespace

TEST_CASE("every method's forward follows its formula, row by row") {
  for (auto method : tora::all_methods) {
    if (method == tora::Method::full) {
      continue;  // no update of its own: it trains the base weight
    }
    CAPTURE(name_of(method));
    torch::manual_seed(31);
    tora::AdaptedLinear layer(in_features, out_features);
    auto adapter = layer->set_adapter(tiny_config(method));
    tora::test::randomize(*adapter, 0.5);
    layer->eval();
    const auto x = torch::randn({4, in_features});
    const Eigen::MatrixXd w0 = to_eigen(layer->weight);
    const Eigen::VectorXd b = to_eigen(layer->bias.view({-1, 1}));
    for (int64_t t = 0; t < tiny_tasks; ++t) {
      layer->set_routing(tora::Routing::single(t));
      const Eigen::MatrixXd y = to_eigen(layer(x));
      for (int64_t n = 0; n < x.size(0); ++n) {
        const Eigen::VectorXd xn = to_eigen(x[n].view({-1, 1}));
        const Eigen::VectorXd expected = w0 * xn + b + formula(*adapter, t, xn);
        CHECK((y.row(n).transpose() - expected).cwiseAbs().maxCoeff() < 1e-5);
      }
    }
  }
}

TEST_CASE("Terra's update grows with the task coordinate along one learnt direction") {
  torch::manual_seed(32);
  auto config = tiny_config(tora::Method::terra);
  config.terra_shared_omega = true;
  tora::AdaptedLinear layer(in_features, out_features);
  auto adapter = layer->set_adapter(config);
  tora::test::randomize(*adapter, 0.5);
  auto* terra = dynamic_cast<tora::TerraImpl*>(adapter.get());
  REQUIRE(terra != nullptr);
  // dW(t) = B A + c_t B Omega' A: the part beyond B A is proportional to c_t.
  const auto shared = terra->B.mm(terra->A) * terra->scale();
  const auto d1 = terra->delta_weight(0) - shared;
  const auto d3 = terra->delta_weight(2) - shared;
  const double c1 = terra->coordinates[0].item<double>();
  const double c3 = terra->coordinates[2].item<double>();
  CHECK(tora::test::max_diff(d1 * (c3 / c1), d3) < 1e-5);
}
