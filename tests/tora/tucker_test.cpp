#include <doctest/doctest.h>

#include <tora/tora.hpp>

#include <Eigen/Dense>

#include "eigen_reference.hpp"
#include "tiny_adapters.hpp"

#include <array>
#include <vector>

namespace {

using tora::test::max_diff;
using tora::test::to_eigen;

/// A dense 3-way tensor for the reference computation, stored with the first index fastest.
struct Tensor3 {
  std::array<int64_t, 3> dims;
  std::vector<double> values;

  explicit Tensor3(std::array<int64_t, 3> d) : dims(d), values(d[0] * d[1] * d[2], 0.0) {}
  double& operator()(int64_t i, int64_t j, int64_t k) {
    return values[i + dims[0] * (j + dims[1] * k)];
  }
  double operator()(int64_t i, int64_t j, int64_t k) const {
    return values[i + dims[0] * (j + dims[1] * k)];
  }
};

/// The mode-n unfolding: rows index mode n, columns the other two modes.
Eigen::MatrixXd unfold(const Tensor3& t, int mode) {
  const int a = (mode + 1) % 3;
  const int b = (mode + 2) % 3;
  Eigen::MatrixXd m(t.dims[mode], t.dims[a] * t.dims[b]);
  std::array<int64_t, 3> idx{};
  for (idx[0] = 0; idx[0] < t.dims[0]; ++idx[0]) {
    for (idx[1] = 0; idx[1] < t.dims[1]; ++idx[1]) {
      for (idx[2] = 0; idx[2] < t.dims[2]; ++idx[2]) {
        m(idx[mode], idx[a] + t.dims[a] * idx[b]) = t(idx[0], idx[1], idx[2]);
      }
    }
  }
  return m;
}

/// The inverse of unfold() for a tensor of `dims`.
Tensor3 fold(const Eigen::MatrixXd& m, int mode, std::array<int64_t, 3> dims) {
  const int a = (mode + 1) % 3;
  const int b = (mode + 2) % 3;
  Tensor3 t(dims);
  std::array<int64_t, 3> idx{};
  for (idx[0] = 0; idx[0] < dims[0]; ++idx[0]) {
    for (idx[1] = 0; idx[1] < dims[1]; ++idx[1]) {
      for (idx[2] = 0; idx[2] < dims[2]; ++idx[2]) {
        t(idx[0], idx[1], idx[2]) = m(idx[mode], idx[a] + dims[a] * idx[b]);
      }
    }
  }
  return t;
}

/// The n-mode product t x_n u: (t x_n u)(.., i, ..) = sum_j u(i, j) t(.., j, ..).
Tensor3 mode_product(const Tensor3& t, const Eigen::MatrixXd& u, int mode) {
  auto dims = t.dims;
  dims[mode] = u.rows();
  return fold(u * unfold(t, mode), mode, dims);
}

Tensor3 to_tensor3(const torch::Tensor& tensor) {
  auto t = tensor.detach().to(torch::kDouble).contiguous();
  Tensor3 out({t.size(0), t.size(1), t.size(2)});
  auto acc = t.accessor<double, 3>();
  for (int64_t i = 0; i < t.size(0); ++i) {
    for (int64_t j = 0; j < t.size(1); ++j) {
      for (int64_t k = 0; k < t.size(2); ++k) {
        out(i, j, k) = acc[i][j][k];
      }
    }
  }
  return out;
}

/// dW = G x1 U1 x2 U2 x3 U3 by the definition, slice t as an Eigen matrix [out, in].
Eigen::MatrixXd dense_slice(const Tensor3& dw, int64_t t) {
  Eigen::MatrixXd slice(dw.dims[0], dw.dims[1]);
  for (int64_t i = 0; i < dw.dims[0]; ++i) {
    for (int64_t j = 0; j < dw.dims[1]; ++j) {
      slice(i, j) = dw(i, j, t);
    }
  }
  return slice;
}

}  // namespace

TEST_CASE("n-mode products in the reference follow the entrywise Tucker formula") {
  // Eq. 7 of the paper, one entry at a time, against the unfold/fold route.
  Tensor3 g({2, 3, 2});
  for (size_t i = 0; i < g.values.size(); ++i) {
    g.values[i] = 0.1 * static_cast<double>(i) - 0.4;
  }
  Eigen::MatrixXd u1 = Eigen::MatrixXd::Random(4, 2);
  Eigen::MatrixXd u2 = Eigen::MatrixXd::Random(5, 3);
  Eigen::MatrixXd u3 = Eigen::MatrixXd::Random(3, 2);
  auto dw = mode_product(mode_product(mode_product(g, u1, 0), u2, 1), u3, 2);
  for (int64_t i = 0; i < 4; ++i) {
    for (int64_t j = 0; j < 5; ++j) {
      for (int64_t t = 0; t < 3; ++t) {
        double entry = 0.0;
        for (int64_t m = 0; m < 2; ++m) {
          for (int64_t n = 0; n < 3; ++n) {
            for (int64_t l = 0; l < 2; ++l) {
              entry += g(m, n, l) * u1(i, m) * u2(j, n) * u3(t, l);
            }
          }
        }
        CHECK(dw(i, j, t) == doctest::Approx(entry).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("ToRA's factorised forward equals the dense Tucker definition within 1e-5") {
  torch::manual_seed(11);
  const int64_t in = 20, out = 24, tasks = 3;
  for (bool masked : {false, true}) {
    CAPTURE(masked);
    tora::AdaptedLinear layer(in, out);
    auto options = tora::ToraOptions(in, out, tasks).p(5).q(4).v(2).scaling(0.5).dropout(0.0);
    if (masked) {
      options.output_blocks({true, false, true});
    }
    auto tora_adapter = layer->set_adapter(std::make_shared<tora::ToraImpl>(options));
    {
      torch::NoGradGuard no_grad;
      tora_adapter->G.normal_(0.0, 0.1);
      tora_adapter->U1.normal_(0.0, 0.5);
      tora_adapter->U2.normal_(0.0, 0.5);
    }
    const int64_t rows = tora_adapter->adapted_rows();
    auto dw = mode_product(
        mode_product(mode_product(to_tensor3(tora_adapter->G), to_eigen(tora_adapter->U1), 0),
                     to_eigen(tora_adapter->U2), 1),
        to_eigen(tora_adapter->U3), 2);
    REQUIRE(dw.dims == std::array<int64_t, 3>{rows, in, tasks});

    auto x = torch::randn({tasks * 2, in});
    Eigen::MatrixXd xe = to_eigen(x);
    Eigen::MatrixXd w0 = to_eigen(layer->weight);
    Eigen::RowVectorXd b = to_eigen(layer->bias.view({1, -1}));
    layer->set_routing(tora::Routing::stacked());
    auto stacked = layer(x);
    for (int64_t t = 0; t < tasks; ++t) {
      // W_t = W0 + s dW[:, :, t], the adapted rows placed by the block mask.
      Eigen::MatrixXd wt = w0;
      Eigen::MatrixXd slice = dense_slice(dw, t) * 0.5;
      if (masked) {
        wt.topRows(8) += slice.topRows(8);
        wt.bottomRows(8) += slice.bottomRows(8);
      } else {
        wt += slice;
      }
      Eigen::MatrixXd expected = (xe * wt.transpose()).rowwise() + b;
      layer->set_routing(tora::Routing::single(t));
      auto single = layer(x);
      double worst_single = 0.0, worst_stacked = 0.0;
      for (int64_t i = 0; i < x.size(0); ++i) {
        for (int64_t j = 0; j < out; ++j) {
          worst_single =
              std::max(worst_single, std::abs(single[i][j].item<double>() - expected(i, j)));
          if (i / 2 == t) {
            worst_stacked =
                std::max(worst_stacked, std::abs(stacked[i][j].item<double>() - expected(i, j)));
          }
        }
      }
      CHECK(worst_single < 1e-5);
      CHECK(worst_stacked < 1e-5);
      // The library's dense slice for merging agrees with the definition too.
      Eigen::MatrixXd delta = to_eigen(tora_adapter->delta_weight(t, torch::kDouble));
      CHECK((delta - dense_slice(dw, t) * 0.5).cwiseAbs().maxCoeff() < 1e-5);
    }
  }
}

TEST_CASE("the orthogonal regulariser takes the paper's and the reference's forms") {
  torch::manual_seed(12);
  torch::nn::Sequential model(tora::AdaptedLinear(6, 9), tora::AdaptedLinear(9, 6),
                              torch::nn::Linear(6, 6));
  std::vector<std::shared_ptr<tora::ToraImpl>> adapters;
  for (int64_t i = 0; i < 2; ++i) {
    auto layer = model[i]->as<tora::AdaptedLinearImpl>();
    adapters.push_back(layer->set_adapter(std::make_shared<tora::ToraImpl>(
        tora::ToraOptions(layer->options.in_features(), layer->options.out_features(), 3)
            .p(3)
            .q(2)
            .v(2))));
    tora::test::randomize(*adapters.back(), 0.6);
  }
  // The paper takes M'M - I for every factor and core slice. The reference code names the
  // factors input side first, so its core slice is this one transposed: M M' - I for G_l.
  double paper = 0.0, norm_sum = 0.0;
  int terms = 0;
  auto add = [&](const Eigen::MatrixXd& m, bool core) {
    auto gram = [](const Eigen::MatrixXd& a) {
      return Eigen::MatrixXd(a.transpose() * a - Eigen::MatrixXd::Identity(a.cols(), a.cols()));
    };
    paper += gram(m).squaredNorm();
    norm_sum += core ? gram(m.transpose()).norm() : gram(m).norm();
    ++terms;
  };
  for (const auto& a : adapters) {
    add(to_eigen(a->U1), false);
    add(to_eigen(a->U2), false);
    auto g = to_tensor3(a->G);
    for (int64_t l = 0; l < g.dims[2]; ++l) {
      add(dense_slice(g, l), true);
    }
  }
  REQUIRE(terms == 2 * (2 + 2));
  auto paper_value = tora::orthogonal_regularizer(*model, tora::RegularizerForm::paper);
  auto reference_value = tora::orthogonal_regularizer(*model, tora::RegularizerForm::reference);
  CHECK(paper_value.item<double>() == doctest::Approx(paper).epsilon(1e-5));
  CHECK(reference_value.item<double>() == doctest::Approx(norm_sum / terms).epsilon(1e-5));

  paper_value.backward();
  CHECK(adapters[0]->G.grad().abs().sum().item<double>() > 0.0);
  CHECK(tora::orthogonal_regularizer(*torch::nn::Linear(2, 2)).item<double>() == 0.0);
}

TEST_CASE("HOSVD turns per-task LoRAs into one ToRA that reproduces every task (Theorem 1)") {
  torch::manual_seed(13);
  const int64_t in = 16, out = 20, tasks = 3, r = 2;
  tora::AdaptedLinear layer(in, out);
  auto stl = layer->set_adapter(std::make_shared<tora::LoraStlImpl>(
      tora::LoraStlOptions(in, out, tasks).rank(r).alpha(4.0).dropout(0.0)));
  tora::test::randomize(*stl, 0.5);
  {
    // Task 2 shares task 0's output space, so the mode-1 rank drops below T r.
    torch::NoGradGuard no_grad;
    stl->B[2].copy_(stl->B[0]);
  }
  auto converted = tora::lora_stl_to_tora(*stl);
  const int64_t p = converted->options.p();
  const int64_t q = converted->options.q();
  CHECK(converted->options.v() == tasks);
  CHECK(p == 4);
  CHECK(q == tasks * r);
  CHECK(out * p + in * q <= tasks * (out + in) * r);
  for (int64_t t = 0; t < tasks; ++t) {
    CHECK(max_diff(converted->delta_weight(t), stl->delta_weight(t)) < 1e-5);
  }
  // The factors are orthonormal (HOSVD), so the paper's regulariser only sees the core.
  CHECK(max_diff(converted->U1.t().mm(converted->U1), torch::eye(p)) < 1e-5);

  // Swapping the converted ToRA in gives the same forward for every task.
  auto x = torch::randn({tasks * 2, in});
  layer->eval();
  layer->set_routing(tora::Routing::stacked());
  auto before = layer(x);
  layer->set_adapter(converted);
  CHECK(max_diff(layer(x), before) < 1e-5);
}
