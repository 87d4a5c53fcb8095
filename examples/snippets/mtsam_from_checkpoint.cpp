// Builds MTSAM from a SAM checkpoint and runs every task on one image of any size.
// The checkpoint is the tiny SAM of the reference fixtures (MTSAM_FIXTURES, or
// ../shared/fixtures/reference beside the source tree); with a released one, use
// mtsam::preset_shape(mtsam::Preset::vit_b, 512) and "sam_vit_b_01ec64.pth".

#include <mtsam/mtsam.hpp>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>

int main() {
  const char* env = std::getenv("MTSAM_FIXTURES");
  const std::filesystem::path dir =
      env != nullptr && *env != '\0' ? env : TORA_SOURCE_DIR "/../shared/fixtures/reference";
  if (!std::filesystem::exists(dir / "sam_tiny.pth")) {
    std::cerr << "no SAM checkpoint in " << dir << ": nothing to run\n";
    return 77;  // "skipped", for the test runner
  }
  try {
    // The model: SAM's shape, the tasks, ToRA on q and v of every block (the defaults).
    std::ifstream json(dir / "sam_tiny.json");
    const auto shape = mtsam::shape_from_json(nlohmann::json::parse(json));
    auto model = mtsam::mtsam_from_sam_checkpoint(dir / "sam_tiny.pth",
                                                  mtsam::MTSAMOptions(shape, mtsam::nyuv2_tasks()));

    // An image [3, H, W] in [0, 1]: long side resized to the encoder size, padded, run through
    // every task at once, outputs mapped back to H x W.
    model->eval();
    torch::NoGradGuard no_grad;
    const auto image = torch::rand({3, 90, 120});
    const auto prepared = mtsam::preprocess(image, {.size = shape.img_size});
    const auto outputs = model->forward(prepared.images);
    for (int64_t t = 0; t < model->num_tasks(); ++t) {
      const auto& task = model->options.tasks()[t];
      const auto output = mtsam::postprocess(outputs[t], shape.img_size, prepared);
      std::cout << task.name << ": " << output.sizes() << "\n";
      if (output.sizes() != torch::IntArrayRef({1, task.channels, 90, 120})) {
        std::cerr << "unexpected output shape for " << task.name << "\n";
        return 1;
      }
    }
  } catch (const std::exception& error) {
    std::cerr << error.what() << "\n";
    return 1;
  }
  return 0;
}
