#include <iostream>

#include <mtsam/mtsam.hpp>
#include <tora/tora.hpp>

// A project outside the tree: a linear layer gets a ToRA adapter for two tasks, and each task's
// stacked slice equals running that task alone.
int main() {
  torch::manual_seed(0);
  tora::AdaptedLinear layer(8, 4);
  tora::AdapterConfig config;
  config.method = tora::Method::tora;
  config.num_tasks = 2;
  config.p = 2;
  config.q = 3;
  config.v = 2;
  config.dropout = 0.0;
  layer->set_adapter(config);
  for (auto& parameter : layer->adapter()->parameters()) {
    torch::NoGradGuard no_grad;
    parameter.normal_();
  }

  const auto x = torch::randn({3, 8});
  layer->set_routing(tora::Routing::stacked());
  const auto both = layer->forward(torch::cat({x, x}));
  for (int64_t task = 0; task < 2; ++task) {
    layer->set_routing(tora::Routing::single(task));
    const auto alone = layer->forward(x);
    if (!torch::allclose(both.slice(0, 3 * task, 3 * task + 3), alone, 1e-5, 1e-5)) {
      std::cerr << "consumer: expected task " << task << "'s stacked slice to equal the task run "
                << "alone, got a max difference of "
                << (both.slice(0, 3 * task, 3 * task + 3) - alone).abs().max().item<float>()
                << '\n';
      return 1;
    }
  }
  std::cout << "consumer: tora " << tora::version_major << '.' << tora::version_minor
            << " routes 2 tasks through one layer\n";
  return 0;
}
