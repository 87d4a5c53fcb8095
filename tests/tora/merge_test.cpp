#include <doctest/doctest.h>

#include <tora/tora.hpp>

#include "tiny_adapters.hpp"

#include <limits>

namespace {

using tora::test::max_diff;
using tora::test::name_of;
using tora::test::tiny_config;

tora::AdaptedLinear randomised_layer(tora::Method method, bool masked = false) {
  auto config = tiny_config(method);
  if (masked) {
    config.output_blocks = {true, true, false};
  }
  tora::AdaptedLinear layer(10, 15);
  tora::test::randomize(*layer->set_adapter(config));
  layer->eval();
  return layer;
}

}  // namespace

TEST_CASE("merging then unmerging restores the base weight, and merged forwards agree") {
  for (bool masked : {false, true}) {
    for (auto method : tora::all_methods) {
      if (!tora::is_mergeable(method)) {
        continue;
      }
      CAPTURE(name_of(method));
      CAPTURE(masked);
      torch::manual_seed(31);
      auto layer = randomised_layer(method, masked);
      auto original = layer->weight.detach().clone();
      auto x = torch::randn({4, 10});
      for (int64_t t = 0; t < tora::test::tiny_tasks; ++t) {
        layer->set_routing(tora::Routing::single(t));
        auto adapted = layer(x);
        // Into a copy.
        auto copy = layer->merged_weight(t);
        CHECK(max_diff(torch::linear(x, copy, layer->bias), adapted) < 1e-5);
        CHECK(torch::equal(layer->weight, original));
        // Into the base.
        layer->merge(t);
        CHECK(layer->merged_task() == t);
        CHECK(max_diff(layer(x), adapted) < 1e-5);
        layer->unmerge();
        CHECK(torch::equal(layer->weight, original));
        CHECK(max_diff(layer(x), adapted) == 0.0);
      }
    }
  }
}

TEST_CASE("a merged layer refuses other routings until unmerged") {
  auto layer = randomised_layer(tora::Method::lora_stl);
  layer->merge(1);
  layer->set_routing(tora::Routing::single(2));
  CHECK_THROWS_WITH(layer(torch::randn({3, 10})), doctest::Contains("unmerge() first"));
  // The base routing would silently return the merged task's output.
  layer->set_routing(tora::Routing::base());
  CHECK_THROWS_WITH(layer(torch::randn({3, 10})), doctest::Contains("unmerge() first"));
  layer->set_routing(tora::Routing::single(2));
  // Merging another task directly starts from the original weight, not the merged one.
  layer->merge(2);
  auto x = torch::randn({3, 10});
  auto merged_two = layer(x);
  layer->unmerge();
  CHECK(max_diff(merged_two, layer(x)) < 1e-5);
}

TEST_CASE("merging refuses a non-finite update and leaves the weight alone") {
  auto layer = randomised_layer(tora::Method::tora);
  auto original = layer->weight.detach().clone();
  {
    torch::NoGradGuard no_grad;
    layer->adapter_as<tora::ToraImpl>()->G[0][0][0] = std::numeric_limits<float>::infinity();
  }
  CHECK_THROWS_WITH(layer->merge(0), doctest::Contains("NaN or infinite"));
  CHECK_THROWS_WITH(tora::merge(*layer, 0), doctest::Contains("NaN or infinite"));
  CHECK(torch::equal(layer->weight, original));
  CHECK_FALSE(layer->merged_task().has_value());
}

TEST_CASE("HydraLoRA says it cannot be merged") {
  auto layer = randomised_layer(tora::Method::hydralora);
  CHECK_THROWS_WITH(layer->merged_weight(0), doctest::Contains("cannot be merged"));
  CHECK_THROWS_WITH(layer->merge(0), doctest::Contains("cannot be merged"));
  CHECK_FALSE(layer->adapter()->mergeable());
  // Compile time: task_delta() takes only MergeableAdapter types (see api_test.cpp).
  static_assert(!tora::MergeableAdapter<tora::HydraLoraImpl>);
}

TEST_CASE("bfloat16 layers merge through float32") {
  torch::manual_seed(32);
  auto layer = randomised_layer(tora::Method::lora_stl);
  layer->to(torch::kBFloat16);
  auto stl = layer->adapter_as<tora::LoraStlImpl>();
  auto expected = (layer->weight.to(torch::kFloat) +
                   stl->B[1].to(torch::kFloat).mm(stl->A[1].to(torch::kFloat)) * stl->scale())
                      .to(torch::kBFloat16);
  auto merged = layer->merged_weight(1);
  CHECK((merged.scalar_type() == torch::kBFloat16));
  CHECK(torch::equal(merged, expected));
  auto original = layer->weight.detach().clone();
  layer->merge(1);
  layer->unmerge();
  CHECK(torch::equal(layer->weight, original));
  CHECK((tora::task_delta(*stl, 1).scalar_type() == torch::kFloat));
}

TEST_CASE("merging a whole model covers rebound and AdaptedLinear layers alike") {
  torch::manual_seed(33);
  torch::nn::Sequential model(tora::AdaptedLinear(6, 6), torch::nn::ReLU(),
                              torch::nn::Linear(6, 6));
  model->eval();
  tora::attach(*model, {"0", "2"}, tiny_config(tora::Method::terra));
  for (auto& layer : tora::adapted_layers(*model)) {
    tora::test::randomize(layer.adapter());
  }
  auto snapshot = model->named_parameters().values();
  std::vector<torch::Tensor> originals;
  for (const auto& param : snapshot) {
    originals.push_back(param.detach().clone());
  }
  auto x = torch::randn({3, 6});
  tora::set_routing(*model, tora::Routing::single(2));
  auto adapted = model->forward(x).detach();
  tora::merge(*model, 2);
  for (const auto& layer : tora::adapted_layers(*model)) {
    CHECK(layer.merged_task() == 2);
  }
  CHECK(max_diff(model->forward(x), adapted) < 1e-5);
  CHECK_THROWS_WITH(tora::set_routing(*model, tora::Routing::single(0)),
                    doctest::Contains("unmerge"));
  tora::unmerge(*model);
  for (size_t i = 0; i < snapshot.size(); ++i) {
    CHECK(torch::equal(snapshot[i], originals[i]));
  }
  tora::set_routing(*model, tora::Routing::single(2));
  CHECK(max_diff(model->forward(x), adapted) < 1e-6);
}
