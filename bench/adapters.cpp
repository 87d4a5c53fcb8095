// Cost of each adapter on one linear of ViT-B's qkv shape (768 -> 2304) and ViT-L's
// (1024 -> 3072) over 4096 tokens with T = 3 tasks: forward (no grad) and forward + backward
// (base frozen, input requiring grad), against the frozen base linear measured in the same run.
// The "tora-dense" row is the reference code's strategy: rebuild dW [out, in, T] from the Tucker
// factors every forward, then a second dense matmul with dW[:, :, t].
//
//     ./bench_adapters [--benchmark_filter=...] [--benchmark_repetitions=3] [--device=cuda]
#include <tora/tora.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr int64_t tokens = 4096;
constexpr int64_t tasks = 3;

struct Shape {
  const char* name;
  int64_t in;
  int64_t out;
};

constexpr Shape shapes[] = {{"vit_b_qkv", 768, 2304}, {"vit_l_qkv", 1024, 3072}};

/// The rows: every method, plus the reference's dense strategy and ToRA with dropout.
const std::vector<std::string>& row_names() {
  static const std::vector<std::string> rows = {
      "base",  "lora", "lora-hps", "lora-stl",   "multilora",        "hydralora",
      "terra", "tora", "full",     "tora-dense", "tora-dropout-0.1", "tora-stacked"};
  return rows;
}

tora::AdapterConfig bench_config(tora::Method method) {
  tora::AdapterConfig config;
  config.method = method;
  config.num_tasks = tasks;
  config.rank = 32;
  config.alpha = 32;
  config.p = 32;
  config.q = 32;
  config.v = 8;
  config.dropout = 0.0;
  return config;
}

/// The layer and routing a row measures.
struct Case {
  tora::AdaptedLinear layer{nullptr};
  std::shared_ptr<tora::ToraImpl> dense_tora;  // tora-dense only
  tora::Routing routing = tora::Routing::single(1);
};

Case make_case(const std::string& row, const Shape& shape, torch::Device device) {
  Case c;
  c.layer = tora::AdaptedLinear(shape.in, shape.out);
  if (row == "base" || row == "tora-dense") {
    c.layer->weight.requires_grad_(false);
    c.layer->bias.requires_grad_(false);
    if (row == "tora-dense") {
      c.dense_tora = std::make_shared<tora::ToraImpl>(
          tora::ToraOptions(shape.in, shape.out, tasks).p(32).q(32).v(8).dropout(0.0));
    }
  } else if (row == "tora-dropout-0.1" || row == "tora-stacked") {
    auto config = bench_config(tora::Method::tora);
    config.dropout = row == "tora-dropout-0.1" ? 0.1 : 0.0;
    c.layer->set_adapter(config);
    if (row == "tora-stacked") {
      c.routing = tora::Routing::stacked();
    }
  } else {
    c.layer->set_adapter(bench_config(tora::method_from_string(row)));
  }
  c.layer->to(device);
  if (c.dense_tora) {
    c.dense_tora->to(device);
  }
  if (c.layer->adapter()) {
    torch::NoGradGuard no_grad;
    for (auto& param : c.layer->adapter()->parameters()) {
      param.normal_(0.0, 0.02);
    }
  }
  if (c.dense_tora) {
    torch::NoGradGuard no_grad;
    c.dense_tora->G.normal_(0.0, 0.02);
  }
  c.layer->set_routing(c.routing);
  c.layer->train();
  return c;
}

/// The reference's forward: the whole update tensor, then a second dense matmul.
torch::Tensor dense_forward(Case& c, const torch::Tensor& x) {
  auto& t = *c.dense_tora;
  auto dw = torch::einsum("pqv,op->oqv", {t.G, t.U1});
  dw = torch::einsum("oqv,iq->oiv", {dw, t.U2});
  dw = torch::einsum("oiv,tv->oit", {dw, t.U3});  // [out, in, T]
  auto delta = dw.select(2, c.routing.task()) * t.options.scaling();
  return c.layer(x) + torch::linear(x, delta);
}

torch::Tensor forward(Case& c, const torch::Tensor& x) {
  return c.dense_tora ? dense_forward(c, x) : c.layer(x);
}

void sync(torch::Device device) {
  if (device.is_cuda()) {
    torch::cuda::synchronize();
  }
}

void run_case(benchmark::State& state, const std::string& row, const Shape& shape, bool backward,
              torch::Device device) {
  torch::manual_seed(0);
  auto c = make_case(row, shape, device);
  // The stacked row runs T groups of tokens / T rows (4095 tokens; the ratio is per token).
  const int64_t rows = row == "tora-stacked" ? tokens / tasks * tasks : tokens;
  auto x = torch::randn({rows, shape.in}, torch::TensorOptions().device(device));
  if (backward) {
    x.requires_grad_(true);
  }
  auto grad_out = torch::randn({rows, shape.out}, x.options().requires_grad(false));
  for (auto _ : state) {
    if (backward) {
      x.mutable_grad() = torch::Tensor();
      for (auto& param : c.layer->parameters()) {
        param.mutable_grad() = torch::Tensor();
      }
      if (c.dense_tora) {
        for (auto& param : c.dense_tora->parameters()) {
          param.mutable_grad() = torch::Tensor();
        }
      }
      forward(c, x).backward(grad_out);
    } else {
      torch::NoGradGuard no_grad;
      benchmark::DoNotOptimize(forward(c, x));
    }
    sync(device);
  }
  state.counters["tokens"] = static_cast<double>(rows);
}

/// Keeps the fastest time per token of every benchmark (over repetitions), for the ratios.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& run : runs) {
      if (run.run_type != Run::RT_Iteration || run.iterations == 0) {
        continue;
      }
      const double per_token = run.GetAdjustedRealTime() / run.counters.at("tokens").value;
      auto [it, fresh] = best_.emplace(run.benchmark_name(), per_token);
      if (!fresh) {
        it->second = std::min(it->second, per_token);
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }

  /// `device/shape/mode/row` -> seconds-like time per token.
  const std::map<std::string, double>& best() const { return best_; }

 private:
  std::map<std::string, double> best_;
};

std::string key(const std::string& device, const Shape& shape, const char* mode,
                const std::string& row) {
  return device + "/" + shape.name + "/" + mode + "/" + row;
}

}  // namespace

int main(int argc, char** argv) {
  std::string device_name = "cpu";
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--device=", 9) == 0) {
      device_name = argv[i] + 9;
    } else {
      args.push_back(argv[i]);
    }
  }
  if (device_name == "cuda" && !torch::cuda::is_available()) {
    std::printf("no CUDA device; running on the CPU\n");
    device_name = "cpu";
  }
  const torch::Device device(device_name == "cuda" ? torch::kCUDA : torch::kCPU);
  const char* modes[] = {"fwd", "fwd+bwd"};
  for (const auto& shape : shapes) {
    for (const char* mode : modes) {
      for (const auto& row : row_names()) {
        const bool backward = std::strcmp(mode, "fwd+bwd") == 0;
        benchmark::RegisterBenchmark(
            key(device_name, shape, mode, row).c_str(),
            [=](benchmark::State& state) { run_case(state, row, shape, backward, device); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    }
  }
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);

  std::printf(
      "\nTime per token relative to the frozen base linear measured in this run "
      "(%s, %lld tokens, T = %lld, LoRA r = 32, ToRA p = q = 32, v = 8):\n",
      device_name.c_str(), static_cast<long long>(tokens), static_cast<long long>(tasks));
  for (const auto& shape : shapes) {
    for (const char* mode : modes) {
      const auto base = reporter.best().find(key(device_name, shape, mode, "base"));
      if (base == reporter.best().end()) {
        continue;
      }
      std::printf("%s %s (base %.3f ms):\n", shape.name, mode, base->second * tokens);
      for (const auto& row : row_names()) {
        const auto found = reporter.best().find(key(device_name, shape, mode, row));
        if (found != reporter.best().end()) {
          std::printf("  %-18s %7.3fx  (%+.1f%%)\n", row.c_str(), found->second / base->second,
                      100.0 * (found->second / base->second - 1.0));
        }
      }
    }
  }
  benchmark::Shutdown();
  return 0;
}
