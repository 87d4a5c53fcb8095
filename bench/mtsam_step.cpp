// MTSAM on the CPU with ViT-B at 512x512 and the NYUv2 tasks (13, 1, 3 channels), ToRA
// p = q = 32, v = 8, batch 1:
//  - a training step (forward and backward of every task, the orthogonal regulariser, one Adam
//    step) done this project's way (factorised ToRA, all tasks in one stacked encoder pass) and
//    the reference code's way (the ToRA update tensor rebuilt and applied as a second dense
//    matmul, tasks run one after another), optionally also with the window padding projected
//    as SAM's code does;
//  - encoder inference for one task with the adapter merged into the weights or not.
// Random weights: the work does not depend on their values.
//
// Flags besides Google Benchmark's: --size=N (input side, default 512), --iterations=N
// (timed steps per row after one warm-up step, default 2), --padded_row=0|1 (default 1).

#include <mtsam/mtsam.hpp>
#include <tora/tora.hpp>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Settings {
  int64_t size = 512;
  int64_t iterations = 2;
  bool padded_row = true;
};
Settings settings;

/// What a row measured.
struct Figures {
  double seconds = 0.0;
  double cpu_seconds = 0.0;
  double gflop = 0.0;
  double peak_mib = 0.0;
  double peak_growth_mib = 0.0;
};
std::map<std::string, Figures> results;

/// The reference code's ToRA forward: dW [T, rows, in] rebuilt at every call, then a second
/// dense matmul with the task's slice (its backward forms a dense weight gradient).
class DenseToraImpl : public tora::ToraImpl {
 public:
  using tora::ToraImpl::ToraImpl;

  void add_update(torch::Tensor& y2, const torch::Tensor& x2,
                  const tora::detail::TaskRows& rows) override {
    if (rows.kind == tora::Routing::Kind::base) {
      return;
    }
    TORCH_CHECK(rows.kind == tora::Routing::Kind::single, "the dense form runs one task at a time");
    const auto x = input_dropout(x2, options.dropout());
    const auto delta = torch::matmul(torch::matmul(U1, task_cores()), U2.t()) * options.scaling();
    add_dense_(y2, x.mm(delta[rows.task].t()));
  }
};

/// CPU seconds used by every thread of this process so far.
double process_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

/// Resident memory of this process in bytes.
double resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  double pages = 0.0;
  double resident = 0.0;
  statm >> pages >> resident;
  return resident * static_cast<double>(sysconf(_SC_PAGESIZE));
}

/// Samples the resident memory every millisecond while alive.
class PeakMemory {
 public:
  PeakMemory() : start_(resident_bytes()), peak_(start_) {
    thread_ = std::thread([this] {
      while (!stop_) {
        peak_ = std::max(peak_.load(), resident_bytes());
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  ~PeakMemory() { stop(); }
  void stop() {
    if (!stop_.exchange(true)) {
      thread_.join();
    }
  }
  double peak_mib() const { return peak_ / 1048576.0; }
  double growth_mib() const { return (peak_ - start_) / 1048576.0; }

 private:
  double start_;
  std::atomic<double> peak_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

enum class Way { project, reference, reference_padded };

mtsam::MTSAMOptions options_for(Way way) {
  return mtsam::MTSAMOptions(mtsam::preset_shape(mtsam::Preset::vit_b, settings.size),
                             mtsam::nyuv2_tasks())
      .stack_tasks(way == Way::project)
      .project_padding(way == Way::reference_padded);
}

/// Forward FLOPs (2 per multiply-add) of the matmuls and convolutions, and the backward FLOPs:
/// an input gradient for every op between the loss and the first block (none for the patch
/// embedding), a second operand gradient for attention products, a weight gradient where the
/// weight trains (adapters, decoders) and for the dense update.
double step_gflop(Way way) {
  const auto options = options_for(way);
  const auto& shape = options.shape();
  const double d = static_cast<double>(shape.embed_dim);
  const double grid = static_cast<double>(shape.img_size / shape.patch_size);
  const double n = grid * grid;
  const double ws = static_cast<double>(shape.window_size);
  const double side = std::ceil(grid / ws) * ws;
  const double tasks = static_cast<double>(options.tasks().size());
  const auto& adapter = options.adapter();
  const double rows = 2.0 * d;  // q and v
  const bool dense = way != Way::project;
  double forward = 0.0;
  double backward = 0.0;
  const double passes = tasks;
  const double patch = 2.0 * n * d * 3.0 * static_cast<double>(shape.patch_size * shape.patch_size);
  forward += (way == Way::project ? 1.0 : passes) * patch;
  for (int64_t block = 0; block < shape.depth; ++block) {
    const bool global =
        std::find(shape.global_attn_indexes.begin(), shape.global_attn_indexes.end(), block) !=
        shape.global_attn_indexes.end();
    const double attn_tokens = global ? n : side * side;
    const double proj_tokens = (!global && way == Way::reference_padded) ? side * side : n;
    const double span = global ? n : ws * ws;
    const double axis = global ? grid : ws;
    const double linear = 2.0 * proj_tokens * d * 4.0 * d + 2.0 * n * d * 8.0 * d;
    const double products = 2.0 * 2.0 * attn_tokens * span * d + 2.0 * 2.0 * attn_tokens * d * axis;
    const double update =
        dense ? 2.0 * proj_tokens * d * rows
              : 2.0 * proj_tokens *
                    (d * static_cast<double>(adapter.p) + static_cast<double>(adapter.p) * rows);
    forward += passes * (linear + products + update);
    backward += passes * (linear + 2.0 * products + 2.0 * update);
  }
  const double out = static_cast<double>(shape.prompt_dim);
  const double neck = 2.0 * n * d * out + 2.0 * n * out * out * 9.0;
  forward += passes * neck;
  backward += passes * neck;
  // Per decoder copy: the image-side projections of the attentions (k, v of the three
  // token-to-image attentions, q and out of the two image-to-token ones, n c^2 each) and the
  // two transposed convolutions of the upscaling.
  const double c = static_cast<double>(shape.prompt_dim);
  const double copy = 10.0 * n * c * c + 2.0 * n * c * (c / 4.0) * 4.0 +
                      2.0 * 4.0 * n * (c / 4.0) * (c / 8.0) * 4.0;
  double copies = 0.0;
  for (const auto& task : options.tasks()) {
    copies += static_cast<double>(task.channels);
  }
  forward += copies * copy;
  backward += 2.0 * copies * copy;
  return (forward + backward) / 1e9;
}

torch::Tensor step_loss(const std::vector<torch::Tensor>& outputs,
                        const std::vector<torch::Tensor>& targets, mtsam::MTSAMImpl& model) {
  namespace F = torch::nn::functional;
  const int64_t s = settings.size;
  const auto up = [&](const torch::Tensor& x) {
    return mtsam::postprocess(x, s, mtsam::ImageSize{s, s}, mtsam::ImageSize{s, s});
  };
  const auto seg = F::nll_loss(torch::log_softmax(up(outputs[0]), 1), targets[0],
                               F::NLLLossFuncOptions().ignore_index(-1));
  const auto valid = (targets[1] > 0).to(torch::kFloat32);
  const auto depth = ((up(outputs[1]) - targets[1]).abs() * valid).sum() / valid.sum();
  const auto normal =
      1.0 -
      (F::normalize(up(outputs[2]), F::NormalizeFuncOptions().dim(1)) * targets[2]).sum(1).mean();
  const auto tasks = (seg + depth + 4.0 * normal) / 6.0;
  return tasks + tora::orthogonal_regularizer(model, tora::RegularizerForm::reference);
}

void training_step(benchmark::State& state, Way way, const std::string& label) {
  malloc_trim(0);
  torch::manual_seed(0);
  mtsam::MTSAM model(options_for(way));
  if (way != Way::project) {
    for (auto layer : model->adapted_layers()) {
      layer->set_adapter(
          std::make_shared<DenseToraImpl>(layer->adapter_as<tora::ToraImpl>()->options));
    }
    model->set_reference_trainable();
  }
  model->train();
  std::vector<torch::Tensor> parameters;
  for (const auto& parameter : model->parameters()) {
    if (parameter.requires_grad()) {
      parameters.push_back(parameter);
    }
  }
  torch::optim::Adam adam(parameters, torch::optim::AdamOptions(1e-4));
  const int64_t s = settings.size;
  const auto images = torch::rand({1, 3, s, s});
  const std::vector<torch::Tensor> targets = {
      torch::randint(-1, 13, {1, s, s}, torch::kLong), torch::rand({1, 1, s, s}),
      torch::nn::functional::normalize(torch::randn({1, 3, s, s}),
                                       torch::nn::functional::NormalizeFuncOptions().dim(1))};
  const auto step = [&] {
    std::vector<torch::Tensor> outputs;
    if (way == Way::project) {
      outputs = model->forward(images);
    } else {
      for (int64_t t = 0; t < model->num_tasks(); ++t) {
        outputs.push_back(model->forward_task(images, t));
      }
    }
    adam.zero_grad();
    step_loss(outputs, targets, *model).backward();
    adam.step();
  };
  malloc_trim(0);
  PeakMemory memory;  // from here: activations, gradients and Adam's state
  step();             // warm-up: first allocations and Adam's state
  const double cpu_start = process_cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    step();
  }
  const auto steps = static_cast<double>(state.iterations());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;
  const double cpu_seconds = (process_cpu_seconds() - cpu_start) / steps;
  memory.stop();
  Figures figures{seconds, cpu_seconds, step_gflop(way), memory.peak_mib(), memory.growth_mib()};
  results[label] = figures;
  state.counters["step_s"] = figures.seconds;
  state.counters["cpu_s"] = figures.cpu_seconds;
  state.counters["GFLOP"] = figures.gflop;
  state.counters["GFLOP/s"] = figures.gflop / figures.seconds;
  state.counters["peak_MiB"] = figures.peak_mib;
}

void encoder_inference(benchmark::State& state, bool merged, const std::string& label) {
  torch::manual_seed(0);
  mtsam::MTSAM model(options_for(Way::project));
  {
    torch::NoGradGuard no_grad;
    for (const auto& layer : model->adapted_layers()) {
      layer->adapter_as<tora::ToraImpl>()->G.normal_(0.0, 0.01);
    }
  }
  model->eval();
  if (merged) {
    model->merge(0);
  }
  torch::NoGradGuard no_grad;
  const auto images = torch::rand({1, 3, settings.size, settings.size});
  model->encode(images, 0);  // warm-up
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    benchmark::DoNotOptimize(model->encode(images, 0));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
      static_cast<double>(state.iterations());
  results[label] = {seconds, 0.0, 0.0, 0.0, 0.0};
  state.counters["encode_s"] = seconds;
}

bool take_flag(const char* arg, const char* name, int64_t& value) {
  const size_t length = std::strlen(name);
  if (std::strncmp(arg, name, length) != 0 || arg[length] != '=') {
    return false;
  }
  value = std::stoll(arg + length + 1);
  return true;
}

void print_row(const char* title, const Figures& f) {
  std::printf(
      "  %-55s %7.2f s/step (CPU %6.2f s)  %7.1f GFLOP  %5.1f GFLOP/s  peak %6.0f MiB "
      "(+%.0f)\n",
      title, f.seconds, f.cpu_seconds, f.gflop, f.gflop / f.seconds, f.peak_mib, f.peak_growth_mib);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    int64_t padded = 1;
    if (i > 0 && (take_flag(argv[i], "--size", settings.size) ||
                  take_flag(argv[i], "--iterations", settings.iterations))) {
      continue;
    }
    if (i > 0 && take_flag(argv[i], "--padded_row", padded)) {
      settings.padded_row = padded != 0;
      continue;
    }
    rest.push_back(argv[i]);
  }
  int rest_count = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_count, rest.data());

  const auto add = [](const std::string& name, auto function) {
    benchmark::RegisterBenchmark(name.c_str(), function)
        ->Iterations(settings.iterations)
        ->Unit(benchmark::kSecond)
        ->UseRealTime();
  };
  add("training_step/default",
      [](benchmark::State& s) { training_step(s, Way::project, "default"); });
  add("training_step/reference_way",
      [](benchmark::State& s) { training_step(s, Way::reference, "reference"); });
  if (settings.padded_row) {
    add("training_step/reference_way_padded_windows",
        [](benchmark::State& s) { training_step(s, Way::reference_padded, "reference_padded"); });
  }
  add("encoder_inference/unmerged",
      [](benchmark::State& s) { encoder_inference(s, false, "unmerged"); });
  add("encoder_inference/merged",
      [](benchmark::State& s) { encoder_inference(s, true, "merged"); });
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  std::printf(
      "\nMTSAM training step: ViT-B, %lldx%lld, tasks 13/1/3, ToRA 32/32/8, batch 1, CPU "
      "(%d threads)\n",
      static_cast<long long>(settings.size), static_cast<long long>(settings.size),
      torch::get_num_threads());
  if (results.contains("default") && results.contains("reference")) {
    const auto& mine = results["default"];
    const auto& theirs = results["reference"];
    print_row("default (factorised ToRA, tasks stacked in one pass)", mine);
    print_row("reference way (dense ToRA update, tasks one by one)", theirs);
    if (results.contains("reference_padded")) {
      print_row("reference way + window padding projected (SAM's code)",
                results["reference_padded"]);
    }
    std::printf("  ratio default / reference way: %.2f wall, %.2f CPU (goal: 0.6 or less)\n",
                mine.seconds / theirs.seconds, mine.cpu_seconds / theirs.cpu_seconds);
    if (results.contains("reference_padded")) {
      const auto& padded = results["reference_padded"];
      std::printf("  ratio default / reference way with padding projected: %.2f wall, %.2f CPU\n",
                  mine.seconds / padded.seconds, mine.cpu_seconds / padded.cpu_seconds);
    }
    std::printf(
        "  FLOPs: analytic count of matmuls and convolutions, 2 per multiply-add; peak: "
        "resident memory sampled every ms over the steps (+ above the built model)\n");
  }
  if (results.contains("unmerged") && results.contains("merged")) {
    std::printf(
        "Encoder inference, task 0: unmerged %.2f s, merged %.2f s (merged / unmerged "
        "%.2f)\n",
        results["unmerged"].seconds, results["merged"].seconds,
        results["merged"].seconds / results["unmerged"].seconds);
  }
  return 0;
}
