#include <doctest/doctest.h>

#include <tora/tora.hpp>

#include "tiny_adapters.hpp"

#include <vector>

namespace {

using tora::test::max_diff;
using tora::test::name_of;
using tora::test::tiny_config;
using tora::test::tiny_tasks;

constexpr int64_t in_features = 12;
constexpr int64_t out_features = 18;

/// An AdaptedLinear [18, 12] with a randomised adapter of `config`, in eval mode.
tora::AdaptedLinear randomised_layer(const tora::AdapterConfig& config) {
  tora::AdaptedLinear layer(in_features, out_features);
  auto adapter = layer->set_adapter(config);
  tora::test::randomize(*adapter);
  layer->eval();
  return layer;
}

torch::Tensor run(tora::AdaptedLinear& layer, const torch::Tensor& x,
                  const tora::Routing& routing) {
  layer->set_routing(routing);
  return layer(x);
}

}  // namespace

TEST_CASE("every method starts with a zero update, so the layer equals its base") {
  for (auto method : tora::all_methods) {
    CAPTURE(name_of(method));
    tora::AdaptedLinear layer(in_features, out_features);
    layer->set_adapter(tiny_config(method));
    auto x = torch::randn({4, in_features});
    auto base = torch::linear(x, layer->weight, layer->bias);
    for (int64_t t = 0; t < tiny_tasks; ++t) {
      CHECK(torch::allclose(run(layer, x, tora::Routing::single(t)), base, 0.0, 1e-6));
    }
  }
}

TEST_CASE("initialisation follows each method's recipe") {
  torch::manual_seed(1);
  const int64_t in = 64;
  auto lora = std::make_shared<tora::LoraImpl>(tora::LoraOptions(in, 32).rank(8));
  CHECK(lora->A.abs().max().item<double>() <= 1.0 / 8.0 + 1e-7);  // 1/sqrt(64)
  CHECK(lora->A.abs().max().item<double>() > 0.9 / 8.0);
  CHECK(lora->B.abs().max().item<double>() == 0.0);
  CHECK(lora->scale() == 1.0);

  auto stl = std::make_shared<tora::LoraStlImpl>(tora::LoraStlOptions(in, 32, 3).rank(8));
  CHECK(stl->A.sizes() == torch::IntArrayRef({3, 8, in}));
  CHECK(stl->A.abs().max().item<double>() <= 1.0 / 8.0 + 1e-7);
  CHECK(stl->A.abs().max().item<double>() > 0.9 / 8.0);
  CHECK(stl->B.abs().max().item<double>() == 0.0);
  CHECK_FALSE(torch::equal(stl->A[0], stl->A[1]));  // each task draws its own A

  auto multi = std::make_shared<tora::MultiLoraImpl>(tora::MultiLoraOptions(in, 32).rank(4));
  CHECK(multi->A.abs().max().item<double>() <= 1.0 / 8.0 + 1e-7);
  CHECK(multi->A.abs().max().item<double>() > 0.9 / 8.0);
  CHECK(multi->B.abs().max().item<double>() <= 0.5 + 1e-7);  // 1/sqrt(4)
  CHECK(multi->B.abs().max().item<double>() > 0.0);
  CHECK(multi->scales.abs().max().item<double>() == 0.0);

  auto terra = std::make_shared<tora::TerraImpl>(tora::TerraOptions(4096, 32, 3).rank(8));
  CHECK(terra->A.std().item<double>() == doctest::Approx(1.0 / 8.0).epsilon(0.02));
  CHECK(terra->Omega.sizes() == torch::IntArrayRef({3, 8, 8}));
  CHECK(terra->Omega.abs().max().item<double>() == 0.0);
  CHECK(terra->B.abs().max().item<double>() == 0.0);
  CHECK(torch::allclose(terra->coordinates, torch::tensor({1.0f / 3, 2.0f / 3, 1.0f})));

  auto tora_adapter =
      std::make_shared<tora::ToraImpl>(tora::ToraOptions(4096, 64, 3).p(8).q(8).v(2));
  CHECK(tora_adapter->G.abs().max().item<double>() == 0.0);
  CHECK(tora_adapter->U2.std().item<double>() == doctest::Approx(1.0).epsilon(0.03));
  CHECK(tora_adapter->U1.std().item<double>() == doctest::Approx(1.0).epsilon(0.1));
  CHECK(tora_adapter->U3.abs().min().item<double>() > 0.0);
  CHECK(tora_adapter->options.scaling() == 0.5);
  CHECK(tora_adapter->options.dropout() == 0.1);

  auto hydra = std::make_shared<tora::HydraLoraImpl>(tora::HydraLoraOptions(in, 32));
  CHECK(hydra->B.abs().max().item<double>() == 0.0);
  CHECK(hydra->router.sizes() == torch::IntArrayRef({3, in}));
}

TEST_CASE("trainable parameter counts match each method's formula") {
  const int64_t in = in_features;
  for (bool masked : {false, true}) {
    const int64_t out = masked ? 12 : out_features;  // q and v of a [18, 12] "qkv"
    for (auto method : tora::all_methods) {
      CAPTURE(name_of(method));
      CAPTURE(masked);
      auto config = tiny_config(method);
      if (masked) {
        config.output_blocks = {true, false, true};
      }
      tora::AdaptedLinear layer(in, out_features);
      layer->set_adapter(config);
      tora::freeze_all_but_adapters(*layer);
      const int64_t T = tiny_tasks, r = config.rank, p = config.p, q = config.q, v = config.v;
      int64_t expected = 0;
      switch (method) {
        case tora::Method::lora:
        case tora::Method::lora_hps:
          expected = r * (out + in);
          break;
        case tora::Method::lora_stl:
          expected = T * r * (out + in);
          break;
        case tora::Method::multilora:
          expected = config.num_loras * (r * (out + in) + out);
          break;
        case tora::Method::hydralora:
          expected = r * in + config.num_heads * (r * out + in);
          break;
        case tora::Method::terra:
          expected = r * (out + in) + T * r * r;
          break;
        case tora::Method::tora:
          expected = p * q * v + out * p + in * q + T * v;
          break;
        case tora::Method::full:
          expected = out_features * in + out_features;
          break;
      }
      CHECK(tora::count_trainable(*layer) == expected);
      if (method != tora::Method::full) {
        CHECK(tora::adapter_parameter_count(config, in, out) == expected);
      }
    }
  }
  // The paper's NYUv2 setting on ViT-B's qkv: ToRA is far smaller than three LoRAs of rank 32.
  tora::AdapterConfig paper;
  paper.num_tasks = 3;
  CHECK(tora::adapter_parameter_count(paper, 768, 2304) == 32 * 32 * 8 + 2304 * 32 + 768 * 32 + 24);
  paper.method = tora::Method::lora_stl;
  paper.rank = 32;
  CHECK(tora::adapter_parameter_count(paper, 768, 2304) == 3 * 32 * (2304 + 768));
}

TEST_CASE("every routing gives each row the result of running its task alone") {
  for (bool masked : {false, true}) {
    for (auto method : tora::all_methods) {
      CAPTURE(name_of(method));
      CAPTURE(masked);
      auto config = tiny_config(method);
      if (masked) {
        config.output_blocks = {false, true, true};
      }
      torch::manual_seed(7);
      auto layer = randomised_layer(config);
      const int64_t batch = 2;
      auto x = torch::randn({tiny_tasks * batch, 5, in_features});

      // Stacked: T groups, task-major.
      auto stacked = run(layer, x, tora::Routing::stacked());
      for (int64_t t = 0; t < tiny_tasks; ++t) {
        auto part = x.narrow(0, t * batch, batch);
        CHECK(max_diff(stacked.narrow(0, t * batch, batch),
                       run(layer, part, tora::Routing::single(t))) < 1e-5);
      }

      // Stacked over a subset of tasks, in another order.
      auto two = x.narrow(0, 0, 2 * batch);
      auto subset = run(layer, two, tora::Routing::stacked({2, 0}));
      CHECK(max_diff(subset.narrow(0, 0, batch),
                     run(layer, two.narrow(0, 0, batch), tora::Routing::single(2))) < 1e-5);
      CHECK(max_diff(subset.narrow(0, batch, batch),
                     run(layer, two.narrow(0, batch, batch), tora::Routing::single(0))) < 1e-5);

      // Per row, for [B, L, in] and for [B, in].
      auto ids = torch::tensor({2, 0, 1, 1, 0, 2}, torch::kLong);
      auto per_row = run(layer, x, tora::Routing::per_row(ids));
      auto flat = x.select(1, 0);
      auto per_row_flat = run(layer, flat, tora::Routing::per_row(ids));
      for (int64_t b = 0; b < x.size(0); ++b) {
        auto alone = tora::Routing::single(ids[b].item<int64_t>());
        CHECK(max_diff(per_row[b], run(layer, x[b], alone)) < 1e-5);
        CHECK(max_diff(per_row_flat[b], run(layer, flat[b], alone)) < 1e-5);
      }

      // Blocks not adapted get exactly the base output.
      if (masked) {
        auto base = torch::linear(x, layer->weight, layer->bias);
        auto out = run(layer, x, tora::Routing::single(1));
        CHECK(torch::equal(out.narrow(2, 0, 6), base.narrow(2, 0, 6)));
        if (method != tora::Method::full) {
          CHECK_FALSE(torch::allclose(out.narrow(2, 6, 12), base.narrow(2, 6, 12)));
        }
      }
    }
  }
}

TEST_CASE("task-specific methods give different tasks different outputs, shared ones do not") {
  for (auto method : tora::all_methods) {
    CAPTURE(name_of(method));
    torch::manual_seed(3);
    auto layer = randomised_layer(tiny_config(method));
    auto x = torch::randn({4, in_features});
    auto diff =
        max_diff(run(layer, x, tora::Routing::single(0)), run(layer, x, tora::Routing::single(2)));
    if (tora::is_task_specific(method)) {
      CHECK(diff > 1e-3);
    } else {
      CHECK(diff == 0.0);
    }
  }
}

TEST_CASE("the base routing switches every adapter off") {
  torch::manual_seed(4);
  auto layer = randomised_layer(tiny_config(tora::Method::tora));
  auto x = torch::randn({3, in_features});
  CHECK(torch::equal(run(layer, x, tora::Routing::base()),
                     torch::linear(x, layer->weight, layer->bias)));
}

TEST_CASE("stacked and per-row routings check the batch against the tasks") {
  auto layer = randomised_layer(tiny_config(tora::Method::lora_stl));
  CHECK_THROWS_WITH(run(layer, torch::randn({4, in_features}), tora::Routing::stacked()),
                    doctest::Contains("3 equal task groups, got 4 rows"));
  CHECK_THROWS_WITH(run(layer, torch::randn({2, in_features}),
                        tora::Routing::per_row(torch::tensor({0, 1, 2}, torch::kLong))),
                    doctest::Contains("3 task ids but the input has 2 rows"));
  CHECK_THROWS_WITH(run(layer, torch::randn({4, in_features}),
                        tora::Routing::per_row(torch::tensor({0, 1, 2}, torch::kLong))),
                    doctest::Contains("or a multiple"));
  // 6 rows for 3 ids: rows 2b and 2b + 1 belong to task ids[b].
  const auto x = torch::randn({6, in_features});
  const auto grouped =
      run(layer, x, tora::Routing::per_row(torch::tensor({2, 0, 1}, torch::kLong)));
  const std::vector<int64_t> tasks = {2, 0, 1};
  for (int64_t b = 0; b < 3; ++b) {
    const auto alone = run(layer, x.narrow(0, 2 * b, 2), tora::Routing::single(tasks[b]));
    CHECK(torch::allclose(grouped.narrow(0, 2 * b, 2), alone, 1e-5, 1e-6));
  }
  CHECK_THROWS_WITH(
      layer->set_routing(tora::Routing::single(5)),
      doctest::Contains("AdaptedLinear [18, 12] with a lora-stl adapter: routing names task 5"));
  CHECK_THROWS_WITH(run(layer, torch::randn({in_features}), tora::Routing::stacked()),
                    doctest::Contains("[B, ..., in]"));
}

TEST_CASE("dropout on the adapter input acts in training mode only") {
  for (auto method : tora::all_methods) {
    if (method == tora::Method::full) {
      continue;  // no adapter input to drop
    }
    CAPTURE(name_of(method));
    auto config = tiny_config(method);
    config.dropout = 0.5;
    torch::manual_seed(5);
    auto layer = randomised_layer(config);
    auto x = torch::randn({64, in_features});
    auto eval_a = run(layer, x, tora::Routing::single(0));
    auto eval_b = run(layer, x, tora::Routing::single(0));
    CHECK(torch::equal(eval_a, eval_b));
    layer->train();
    auto train = run(layer, x, tora::Routing::single(0));
    CHECK(max_diff(train, eval_a) > 1e-3);
    // The base path is untouched by dropout: with the adapter off, train equals eval.
    CHECK(torch::equal(run(layer, x, tora::Routing::base()),
                       torch::linear(x, layer->weight, layer->bias)));
  }
}

TEST_CASE("gradients reach the adapter and not the frozen base") {
  for (auto method : tora::all_methods) {
    CAPTURE(name_of(method));
    auto layer = randomised_layer(tiny_config(method));
    layer->train();
    auto x = torch::randn({tiny_tasks * 2, in_features}, torch::requires_grad());
    run(layer, x, tora::Routing::stacked()).pow(2).sum().backward();
    CHECK(x.grad().defined());
    const bool full = method == tora::Method::full;
    CHECK(layer->weight.grad().defined() == full);
    for (const auto& param : layer->adapter()->parameters()) {
      REQUIRE(param.grad().defined());
      CHECK(param.grad().abs().sum().item<double>() > 0.0);
    }
  }
}

TEST_CASE("adapters run in bfloat16 close to float32") {
  for (auto method : {tora::Method::tora, tora::Method::lora_stl, tora::Method::hydralora}) {
    CAPTURE(name_of(method));
    torch::manual_seed(6);
    auto layer = randomised_layer(tiny_config(method));
    auto x = torch::randn({tiny_tasks * 2, in_features});
    auto reference = run(layer, x, tora::Routing::stacked());
    layer->to(torch::kBFloat16);
    auto half = run(layer, x.to(torch::kBFloat16), tora::Routing::stacked());
    CHECK((half.scalar_type() == torch::kBFloat16));
    CHECK(max_diff(half, reference) < 0.05 * reference.abs().max().item<double>());
  }
}

TEST_CASE("adapters run on CUDA and agree with the CPU") {
  if (!torch::cuda::is_available()) {
    MESSAGE("skipped: no CUDA device");
    return;
  }
  for (auto method : tora::all_methods) {
    CAPTURE(name_of(method));
    torch::manual_seed(8);
    auto layer = randomised_layer(tiny_config(method));
    auto x = torch::randn({tiny_tasks * 2, 3, in_features});
    auto ids = torch::tensor({1, 0, 2, 2, 1, 0}, torch::kLong);
    auto cpu_stacked = run(layer, x, tora::Routing::stacked());
    auto cpu_rows = run(layer, x, tora::Routing::per_row(ids));
    layer->to(torch::kCUDA);
    auto xc = x.to(torch::kCUDA);
    CHECK(max_diff(run(layer, xc, tora::Routing::stacked()).cpu(), cpu_stacked) < 1e-4);
    CHECK(max_diff(run(layer, xc, tora::Routing::per_row(ids.to(torch::kCUDA))).cpu(), cpu_rows) <
          1e-4);
    if (method != tora::Method::hydralora) {
      auto merged = layer->merged_weight(1);
      CHECK(merged.is_cuda());
      layer->merge(1);
      CHECK(max_diff(run(layer, xc, tora::Routing::single(1)).cpu(), cpu_stacked.narrow(0, 2, 2)) <
            1e-4);
      layer->unmerge();
    }
  }
}

TEST_CASE("factorised gradients equal those through the dense per-task weight") {
  for (bool masked : {false, true}) {
    for (auto method : tora::all_methods) {
      if (!tora::is_mergeable(method) || method == tora::Method::full) {
        continue;
      }
      CAPTURE(name_of(method));
      CAPTURE(masked);
      auto config = tiny_config(method);
      if (masked) {
        config.output_blocks = {true, false, true};
      }
      torch::manual_seed(9);
      auto layer = randomised_layer(config);
      auto x = torch::randn({4, in_features});
      auto target = torch::randn({4, out_features});
      auto params = layer->adapter()->parameters();

      layer->set_routing(tora::Routing::single(1));
      auto factorised =
          torch::autograd::grad({(layer(x) - target).pow(2).sum()}, params, {}, false, false, true);
      auto dense_weight = layer->weight + layer->adapter()->full_delta_weight(1);
      auto dense = torch::autograd::grad(
          {(torch::linear(x, dense_weight, layer->bias) - target).pow(2).sum()}, params, {}, false,
          false, true);
      for (size_t i = 0; i < params.size(); ++i) {
        CAPTURE(i);
        REQUIRE(factorised[i].defined() == dense[i].defined());
        if (factorised[i].defined()) {
          CHECK(max_diff(factorised[i], dense[i]) <
                1e-4 * (1.0 + dense[i].abs().max().item<double>()));
        }
      }
    }
  }
}
