// The quick start of docs/tora.md: ToRA on an unmodified LibTorch layer for three tasks, then a
// layer written with tora in mind running all tasks in one stacked batch.
#include <tora/tora.hpp>

#include <filesystem>
#include <iostream>
#include <vector>

int main() {
  torch::manual_seed(0);
  const int64_t tasks = 3;

  // 1. An unmodified model: adapt its feed-forward linears by name.
  torch::nn::TransformerEncoderLayer layer(
      torch::nn::TransformerEncoderLayerOptions(32, 4).dim_feedforward(64).dropout(0.0));
  tora::AdapterConfig config;  // method tora, s = 0.5, dropout 0.1 by default
  config.num_tasks = tasks;
  config.p = 8;
  config.q = 8;
  config.v = 2;
  tora::attach(*layer, {"linear1", "linear2"}, config);
  tora::freeze_all_but_adapters(*layer, {"norm*"});  // adapters + LayerNorms train
  std::cout << "trainable parameters: " << tora::count_trainable(*layer) << "\n";

  // 2. Train: one routing per task and step (it also rebuilds the rebound weights).
  std::vector<torch::Tensor> params;
  for (auto& [name, param] : tora::trainable_parameters(*layer)) {
    params.push_back(param);
  }
  torch::optim::Adam optimizer(params, torch::optim::AdamOptions(1e-2));
  auto x = torch::randn({10, 2, 32});
  std::vector<torch::Tensor> targets;
  for (int64_t t = 0; t < tasks; ++t) {
    targets.push_back(torch::randn({10, 2, 32}));
  }
  auto task_loss = [&](int64_t t) { return torch::mse_loss(layer(x), targets[t]); };
  double first = 0.0, last = 0.0;
  for (int step = 0; step < 30; ++step) {
    double total = 0.0;
    for (int64_t t = 0; t < tasks; ++t) {
      tora::RoutingGuard guard(*layer, tora::Routing::single(t));
      optimizer.zero_grad();
      auto loss = task_loss(t) + 1e-4 * tora::orthogonal_regularizer(*layer);
      loss.backward();
      optimizer.step();
      total += loss.item<double>();
    }
    (step == 0 ? first : last) = total;
  }
  std::cout << "loss " << first << " -> " << last << "\n";

  // 3. Save the adapters only; merge task 1 for inference, then restore the base.
  auto dir = std::filesystem::temp_directory_path() / "tora_quickstart";
  tora::save_adapters(*layer, dir);
  tora::set_routing(*layer, tora::Routing::single(1));
  auto adapted = layer(x).detach();
  tora::merge(*layer, 1);
  const bool merged_ok = torch::allclose(layer(x), adapted, 1e-4, 1e-5);
  tora::unmerge(*layer);

  // 4. A layer written with tora in mind runs all tasks in one task-major batch.
  tora::AdaptedLinear qkv(32, 96);
  config.output_blocks = {true, false, true};  // adapt q and v of a fused qkv
  qkv->set_adapter(config);
  qkv->eval();
  qkv->set_routing(tora::Routing::stacked());
  auto stacked = qkv(torch::randn({tasks * 2, 16, 32}));  // [T*B, tokens, in]

  const bool ok = last < first && merged_ok && stacked.sizes() == torch::IntArrayRef({6, 16, 96});
  std::cout << (ok ? "quickstart ok" : "quickstart FAILED") << "\n";
  return ok ? 0 : 1;
}
