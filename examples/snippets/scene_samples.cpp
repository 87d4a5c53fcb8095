// Renders a few procedural scenes and writes each as one PNG strip: the image, the class labels
// in a palette, depth in a colour map, normals as RGB and the saliency mask.
//
//   snippet_scene_samples [output folder]
//
// Without an argument the strips go to a fresh folder under the system's temporary directory.

#include <mtsam/data.hpp>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  namespace md = mtsam::data;
  try {
    const std::filesystem::path out =
        argc > 1 ? std::filesystem::path(argv[1])
                 : std::filesystem::temp_directory_path() / "mtsam-scene-samples";
    std::filesystem::create_directories(out);

    md::SceneDataset scenes(md::SceneOptions().height(120).width(160).count(4).seed(2025));
    for (size_t i = 0; i < 4; ++i) {
      const md::TaskSample s = scenes.get(i);
      const torch::Tensor strip = md::side_by_side({
          md::image_to_rgb(s.image),
          md::colorize_labels(s.target(md::kSemseg), md::kSceneClasses),
          md::colorize_depth(s.target(md::kDepth)),
          md::colorize_normals(s.target(md::kNormals)),
          md::image_to_rgb(s.target(md::kSaliency)),
      });
      const auto path = out / ("scene_sample_" + std::to_string(i) + ".png");
      md::write_png(path, strip);
      if (md::read_image(path).sizes() != strip.sizes()) {
        std::cerr << "written strip " << path << " does not read back\n";
        return EXIT_FAILURE;
      }
      std::cout << path.string() << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "scene_samples: " << e.what() << "\n";
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
