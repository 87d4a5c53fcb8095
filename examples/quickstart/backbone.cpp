// The quick start's small pretrained backbone: a SAM of the configuration's shape, trained
// briefly on rendered scenes of another seed (every parameter, all four scene tasks), then saved
// with the official SAM key names as a `torch.save` archive, like the released checkpoints:
// the encoder, the image positional encoding, and the saliency decoder as SAM's mask decoder
// (class-agnostic object masks, SAM's own kind of output). Cached: a second run reuses it.
//
//   quickstart_backbone [--config examples/quickstart.toml] [--steps N]

#include "cli_config.hpp"

#include <mtsam/checkpoint.hpp>
#include <mtsam/sam.hpp>
#include <mtsam/train.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace mtsam;

namespace {

int build_backbone(const fs::path& config_file, int64_t steps) {
  auto config = cli::load_config(config_file, {});
  const fs::path target = config.model.checkpoint;
  if (fs::is_regular_file(target)) {
    // Reused when it still fits the configuration's shape; made again otherwise.
    try {
      Sam cached(train::experiment_shape(config.model));
      load_sam(*cached, target);
      std::printf("backbone: using the cached %s\n", target.string().c_str());
      return 0;
    } catch (const CheckpointError& e) {
      std::printf("backbone: the cached %s does not fit %s (%s); making it again\n",
                  target.string().c_str(), config_file.string().c_str(), e.what());
    }
  }
  const auto start = std::chrono::steady_clock::now();

  // Pretraining: full fine-tuning of a randomly initialised model on scenes of seed 1000.
  config.model.checkpoint.clear();
  config.adapter.method = tora::Method::full;
  config.data.tasks.clear();
  config.data.seed = 1000;
  config.data.train_count = 256;
  config.data.test_count = 16;
  const auto specs = train::experiment_tasks(config.data);
  const int64_t batch = 8;
  const int64_t epochs = std::max<int64_t>(1, steps * batch / config.data.train_count);
  config.train = train::TrainerOptions()
                     .epochs(epochs)
                     .batch_size(batch)
                     .task_weights(std::vector<double>(specs.size(), 1.0))
                     .lr(2e-3)
                     .warmup_ratio(0.05)
                     .eval_every(0)
                     .report_images(0)
                     .save_best(false)
                     .seed(1000)
                     .output_dir(target.parent_path() / "backbone-run");
  std::printf("backbone: pretraining a %s SAM on %ld scenes of seed %lu (%ld epochs, %s)\n",
              config.model.preset.c_str(), static_cast<long>(config.data.train_count),
              static_cast<unsigned long>(config.data.seed), static_cast<long>(epochs),
              "every task, every parameter");
  std::fflush(stdout);
  torch::manual_seed(1000);
  auto model = train::build_model(config, specs, false);
  auto [train_split, test_split] = train::experiment_data(config, specs);
  train::TrainerCallbacks callbacks;
  callbacks.on_step = [](const train::StepRecord& s) {
    if (s.step % 20 == 0 || s.step == s.total_steps) {
      std::string losses;
      for (const auto& [task, loss] : s.task_losses) {
        losses += fmt::format(" {} {:.3f}", task, loss);
      }
      std::printf("backbone: step %ld/%ld%s (%.0f s)\n", static_cast<long>(s.step),
                  static_cast<long>(s.total_steps), losses.c_str(), s.seconds);
      std::fflush(stdout);
    }
  };
  train::Trainer trainer(config.train, train::trainable_model(model, config.regularizer),
                         train::task_heads(specs), train_split, test_split, callbacks);
  const auto result = trainer.run();
  if (result.status != train::RunStatus::finished) {
    std::fprintf(stderr, "backbone: pretraining stopped: %s\n", result.message.c_str());
    return 1;
  }

  // The official SAM layout, checked by loading it back strictly into a plain SAM.
  int64_t saliency = 0;
  for (size_t t = 0; t < specs.size(); ++t) {
    saliency = specs[t].name == data::kSaliency ? static_cast<int64_t>(t) : saliency;
  }
  fs::create_directories(target.parent_path());
  train::write_pth(target, train::sam_state_dict_from_task(*model, saliency));
  Sam sam(model->options.shape());
  load_sam(*sam, target);
  fs::remove_all(config.train.output_dir());
  std::printf("backbone: wrote %s (%.0f s)\n", target.string().c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path config = "examples/quickstart.toml";
  int64_t steps = 800;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config = argv[++i];
    } else if (arg == "--steps" && i + 1 < argc) {
      steps = std::atoll(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "quickstart_backbone: error: unknown argument '%s' (usage: "
                   "quickstart_backbone [--config FILE] [--steps N])\n",
                   arg.c_str());
      return 2;
    }
  }
  try {
    return build_backbone(config, steps);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "quickstart_backbone: error: %s\n", e.what_without_backtrace());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quickstart_backbone: error: %s\n", e.what());
  }
  return 1;
}
