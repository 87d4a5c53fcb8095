#include <doctest/doctest.h>

#include <tora/tora.hpp>

#include "tiny_adapters.hpp"

#include <map>
#include <string>
#include <vector>

namespace {

using tora::test::max_diff;

torch::nn::TransformerEncoderLayer tiny_encoder_layer() {
  return torch::nn::TransformerEncoderLayer(
      torch::nn::TransformerEncoderLayerOptions(8, 2).dim_feedforward(16).dropout(0.0));
}

tora::AdapterConfig tiny_tora() {
  auto config = tora::test::tiny_config(tora::Method::tora);
  return config;
}

std::map<std::string, torch::Tensor> snapshot(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> copy;
  for (const auto& item : module.named_parameters()) {
    copy[item.key()] = item.value().detach().clone();
  }
  return copy;
}

bool is_adapter_name(const std::string& name) {
  return name.find(".adapter.") != std::string::npos;
}

using tora::test::MyLinear;
using tora::test::MyLinearImpl;

/// A model written with tora in mind: AdaptedLinear members.
struct BlockImpl : torch::nn::Module {
  BlockImpl() {
    qkv = register_module("qkv", tora::AdaptedLinear(6, 18));
    proj = register_module("proj", torch::nn::Linear(6, 6));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({6})));
  }
  torch::Tensor forward(const torch::Tensor& x) { return proj(qkv(norm(x)).narrow(-1, 0, 6)); }
  tora::AdaptedLinear qkv{nullptr};
  torch::nn::Linear proj{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(Block);

}  // namespace

TEST_CASE("adapting an unmodified TransformerEncoderLayer trains three tasks apart") {
  torch::manual_seed(21);
  auto layer = tiny_encoder_layer();
  layer->eval();  // dropout is 0 anyway; keeps the test deterministic
  auto before = snapshot(*layer);
  auto x = torch::randn({5, 2, 8});
  auto base_out = layer(x).detach();

  auto adapted = tora::attach(*layer, {"linear1", "linear2"}, tiny_tora());
  CHECK((adapted == std::vector<std::string>{"linear1", "linear2"}));
  auto trainable = tora::freeze_all_but_adapters(*layer);
  CHECK(trainable.size() == 8);
  for (const auto& name : trainable) {
    CHECK_MESSAGE(is_adapter_name(name), name);
  }
  // The state dict keeps torch::nn::Linear's keys for the base weights.
  CHECK(layer->named_parameters().contains("linear1.weight"));
  CHECK(layer->named_parameters().contains("linear1.adapter.G"));

  // ToRA starts at zero: every task gives the base output.
  for (int64_t t = 0; t < 3; ++t) {
    tora::RoutingGuard guard(*layer, tora::Routing::single(t));
    CHECK(max_diff(layer(x), base_out) < 1e-6);
  }

  std::vector<torch::Tensor> targets;
  for (int64_t t = 0; t < 3; ++t) {
    targets.push_back(torch::randn({5, 2, 8}));
  }
  auto params = tora::trainable_parameters(*layer);
  std::vector<torch::Tensor> tensors;
  for (auto& [name, param] : params) {
    tensors.push_back(param);
  }
  torch::optim::Adam optimizer(tensors, torch::optim::AdamOptions(1e-2));
  for (int step = 0; step < 4; ++step) {
    for (int64_t t = 0; t < 3; ++t) {
      tora::RoutingGuard guard(*layer, tora::Routing::single(t));
      optimizer.zero_grad();
      auto loss = torch::mse_loss(layer(x), targets[t]);
      loss.backward();
      for (const auto& item : layer->named_parameters()) {
        if (!is_adapter_name(item.key())) {
          CHECK_MESSAGE(!item.value().grad().defined(), item.key());
        }
      }
      CHECK(layer->linear1->named_parameters()["adapter.G"].grad().abs().sum().item<double>() > 0);
      optimizer.step();
    }
  }

  std::vector<torch::Tensor> outputs;
  for (int64_t t = 0; t < 3; ++t) {
    tora::RoutingGuard guard(*layer, tora::Routing::single(t));
    outputs.push_back(layer(x).detach());
  }
  for (int64_t t = 0; t < 3; ++t) {
    CHECK(max_diff(outputs[t], base_out) > 1e-3);
    CHECK(max_diff(outputs[t], outputs[(t + 1) % 3]) > 1e-4);
  }
  for (const auto& [name, value] : before) {
    CHECK_MESSAGE(torch::equal(layer->named_parameters()[name], value), name);
  }
  // The registered parameter stays frozen; the member the forward reads is W0 + s dW_t.
  CHECK_FALSE(layer->linear1->named_parameters()["weight"].requires_grad());
  CHECK(layer->linear1->weight.requires_grad());

  // The base routing is the frozen model again.
  tora::set_routing(*layer, tora::Routing::base());
  CHECK(torch::equal(layer(x), base_out));
}

TEST_CASE("a pattern that matches nothing lists the patterns and the linear layers") {
  auto layer = tiny_encoder_layer();
  try {
    tora::attach(*layer, {"linear1", "mlp.*"}, tiny_tora());
    FAIL("expected an error");
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    CHECK(message.find("'mlp.*'") != std::string::npos);
    CHECK(message.find("'linear1'") != std::string::npos);
    CHECK(message.find("'linear2'") != std::string::npos);
    CHECK(message.find("'self_attn.out_proj'") != std::string::npos);
  }
  // Nothing was adapted by the failed call.
  CHECK(tora::adapted_layers(*layer).empty());
  CHECK_THROWS_AS(tora::attach(*layer, {}, tiny_tora()), std::invalid_argument);
}

TEST_CASE("weight rebinding refuses what one weight cannot express") {
  auto layer = tiny_encoder_layer();
  tora::attach(*layer, {"linear*"}, tiny_tora());
  CHECK_THROWS_WITH(tora::set_routing(*layer, tora::Routing::stacked()),
                    doctest::Contains("single-task routing only"));
  CHECK_THROWS_WITH(tora::attach(*layer, {"linear1"}, tiny_tora()),
                    doctest::Contains("already adapted"));
  // A refused call adapts nothing, not even the layers it could adapt.
  CHECK_THROWS(tora::attach(*layer, {"self_attn.out_proj", "linear1"}, tiny_tora()));
  CHECK(tora::adapted_layers(*layer).size() == 2);
  auto other = tiny_encoder_layer();
  CHECK_THROWS_WITH(
      tora::attach(*other, {"linear1"}, tora::test::tiny_config(tora::Method::hydralora)),
      doctest::Contains("declare the layer as tora::AdaptedLinear"));
}

TEST_CASE("a RoutingGuard restores each layer's previous routing") {
  Block block;
  tora::attach(*block, {"qkv"}, tiny_tora());
  block->qkv->set_routing(tora::Routing::single(1));
  {
    tora::RoutingGuard guard(*block, tora::Routing::stacked());
    CHECK(block->qkv->routing().kind() == tora::Routing::Kind::stacked);
  }
  CHECK(block->qkv->routing().describe() == "single(1)");
}

TEST_CASE("attach adapts AdaptedLinear members and user linear types by pattern") {
  torch::nn::Sequential model(Block(), Block(), MyLinear(6, 6));
  CHECK((tora::linear_layer_names<MyLinearImpl>(*model) ==
         std::vector<std::string>{"0.qkv", "0.proj", "1.qkv", "1.proj", "2"}));
  auto config = tiny_tora();
  config.output_blocks = {true, false, true};
  auto names = tora::attach<MyLinearImpl>(*model, {"*.qkv", "2"}, config);
  CHECK((names == std::vector<std::string>{"0.qkv", "1.qkv", "2"}));
  auto layers = tora::adapted_layers(*model);
  REQUIRE(layers.size() == 3);
  CHECK_FALSE(layers[0].rebinds_weight());
  CHECK(layers[2].rebinds_weight());
  CHECK(layers[0].adapter().adapted_rows() == 12);

  // The AdaptedLinear members take stacked routing; the user linear is rebound per task.
  auto trainable = tora::freeze_all_but_adapters(*model, {"*norm*"});
  CHECK(std::count_if(trainable.begin(), trainable.end(), [](const std::string& n) {
          return n.find("norm") != std::string::npos;
        }) == 4);
  CHECK_THROWS_WITH(tora::freeze_all_but_adapters(*model, {"*nrom*"}),
                    doctest::Contains("'*nrom*'"));
  const int64_t per_qkv = 4 * 3 * 2 + 12 * 4 + 6 * 3 + 3 * 2;
  const int64_t per_linear = 4 * 3 * 2 + 4 * 4 + 6 * 3 + 3 * 2;  // 4 of its 6 rows adapted
  CHECK(tora::count_trainable(*model) == 2 * per_qkv + per_linear + 4 * 6);
  CHECK(tora::adapter_parameters(*model).size() == 12);
}

TEST_CASE("an attached user linear follows its adapter's update for each task") {
  torch::manual_seed(22);
  MyLinear linear(6, 9);
  auto base = linear->weight.detach().clone();
  tora::attach<MyLinearImpl>(*torch::nn::Sequential(linear), {"0"}, tiny_tora());
  auto adapter = tora::adapted_layers(*linear).at(0).adapter_ptr();
  tora::test::randomize(*adapter);
  auto x = torch::randn({4, 6});
  for (int64_t t = 0; t < 3; ++t) {
    tora::RoutingGuard guard(*linear, tora::Routing::single(t));
    auto expected = torch::linear(x, base + adapter->delta_weight(t), linear->bias);
    CHECK(max_diff(linear(x), expected) < 1e-5);
  }
  CHECK(torch::equal(linear->named_parameters()["weight"], base));
}
