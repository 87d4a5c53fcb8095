// Cost of each adapter on one linear of ViT-B's qkv shape (768 -> 2304) and ViT-L's
// (1024 -> 3072) over 4096 tokens with T = 3 tasks: forward (no grad) and forward + backward
// (base frozen, input requiring grad), against the frozen base linear timed in the same loop.
// The "tora-dense" row is the reference code's strategy: rebuild dW [out, in, T] from the Tucker
// factors every forward, then a second dense matmul with dW[:, :, t].
//
//     ./bench_adapters [--benchmark_filter=...] [--benchmark_repetitions=3] [--device=cuda]
#include <tora/tora.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
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

/// One timed forward (or forward + backward) of `c`, in seconds.
double time_once(Case& c, const torch::Tensor& x, const torch::Tensor& grad_out, bool backward,
                 torch::Device device) {
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
  }
  sync(device);
  const auto start = std::chrono::steady_clock::now();
  if (backward) {
    forward(c, x).backward(grad_out);
  } else {
    torch::NoGradGuard no_grad;
    benchmark::DoNotOptimize(forward(c, x));
  }
  sync(device);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Times `row` and, interleaved in the same loop, the frozen base on the same tokens, so that
/// the ratio is immune to load that drifts during the run. Counter vs_base: time per token of
/// the row over the base's.
void run_case(benchmark::State& state, const std::string& row, const Shape& shape, bool backward,
              torch::Device device) {
  torch::manual_seed(0);
  auto c = make_case(row, shape, device);
  auto base = make_case("base", shape, device);
  // The stacked row runs T groups of tokens / T rows (4095 tokens).
  const int64_t rows = row == "tora-stacked" ? tokens / tasks * tasks : tokens;
  auto x = torch::randn({rows, shape.in}, torch::TensorOptions().device(device));
  auto x_base = torch::randn({tokens, shape.in}, x.options());
  if (backward) {
    x.requires_grad_(true);
    x_base.requires_grad_(true);
  }
  auto grad_out = torch::randn({rows, shape.out}, x.options().requires_grad(false));
  auto grad_base = torch::randn({tokens, shape.out}, x.options().requires_grad(false));
  time_once(c, x, grad_out, backward, device);  // warm-up
  time_once(base, x_base, grad_base, backward, device);
  double row_total = 0.0;
  double base_total = 0.0;
  for (auto _ : state) {
    const double seconds = time_once(c, x, grad_out, backward, device);
    state.SetIterationTime(seconds);
    row_total += seconds;
    base_total += time_once(base, x_base, grad_base, backward, device);
  }
  state.counters["vs_base"] =
      (row_total / static_cast<double>(rows)) / (base_total / static_cast<double>(tokens));
}

/// Collects every benchmark's vs_base counter (median over repetitions) for the summary.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& run : runs) {
      if (run.run_type == Run::RT_Iteration && run.iterations > 0) {
        ratios_[run.run_name.function_name].push_back(run.counters.at("vs_base").value);
        times_[run.run_name.function_name].push_back(run.GetAdjustedRealTime());
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }

  static double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
  }

  std::optional<std::pair<double, double>> ratio_and_ms(const std::string& name) const {
    auto it = ratios_.find(name);
    if (it == ratios_.end()) {
      return std::nullopt;
    }
    return std::make_pair(median(it->second), median(times_.at(name)));
  }

 private:
  std::map<std::string, std::vector<double>> ratios_;
  std::map<std::string, std::vector<double>> times_;
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
            ->MinTime(2.0)
            ->UseManualTime();
      }
    }
  }
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);

  std::printf(
      "\nTime per token relative to the frozen base linear, timed in the same loop "
      "(%s, %lld tokens, T = %lld, LoRA r = 32, ToRA p = q = 32, v = 8):\n",
      device_name.c_str(), static_cast<long long>(tokens), static_cast<long long>(tasks));
  for (const auto& shape : shapes) {
    for (const char* mode : modes) {
      bool header = false;
      for (const auto& row : row_names()) {
        if (auto found = reporter.ratio_and_ms(key(device_name, shape, mode, row))) {
          if (!header) {
            std::printf("%s %s (ms per forward%s of the row):\n", shape.name, mode,
                        std::strcmp(mode, "fwd") == 0 ? "" : " + backward");
            header = true;
          }
          std::printf("  %-18s %9.2f ms  %7.3fx  (%+.1f%%)\n", row.c_str(), found->second,
                      found->first, 100.0 * (found->first - 1.0));
        }
      }
    }
  }
  benchmark::Shutdown();
  return 0;
}
