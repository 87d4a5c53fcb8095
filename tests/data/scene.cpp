// The procedural scene data set, its NYUv2-layout copy on disk, and the colour maps.

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <chrono>
#include <set>
#include <utility>
#include <vector>

#include <mtsam/data/colormap.hpp>
#include <mtsam/data/nyuv2.hpp>
#include <mtsam/data/scene_dataset.hpp>

#include "data/on_disk.hpp"

namespace md = mtsam::data;
using data_test::TempDir;

namespace {

bool same_sample(const md::TaskSample& a, const md::TaskSample& b) {
  if (!a.image.equal(b.image) || a.targets.size() != b.targets.size())
    return false;
  for (const auto& [name, t] : a.targets) {
    if (!t.equal(b.target(name)))
      return false;
  }
  return true;
}

}  // namespace

TEST_CASE("a seed fixes the scenes and another seed gives other scenes") {
  md::SceneDataset a(md::SceneOptions().height(24).width(32).count(3).seed(11));
  md::SceneDataset b(md::SceneOptions().height(24).width(32).count(3).seed(11));
  md::SceneDataset c(md::SceneOptions().height(24).width(32).count(3).seed(12));
  md::SceneDataset val(md::SceneOptions().height(24).width(32).count(3).seed(11).split("val"));
  for (size_t i = 0; i < 3; ++i) {
    CHECK(same_sample(a.get(i), b.get(i)));
    CHECK_FALSE(a.get(i).image.equal(c.get(i).image));
    CHECK_FALSE(a.get(i).image.equal(val.get(i).image));
  }
  CHECK_FALSE(a.get(0).image.equal(a.get(1).image));
}

TEST_CASE("scenes show every class, positive depth, unit normals and salient objects") {
  md::SceneDataset ds(md::SceneOptions().height(48).width(64).count(12).seed(1));
  std::set<int64_t> classes;
  for (size_t i = 0; i < 12; ++i) {
    const auto s = ds.get(i);
    CHECK(s.image.min().item<float>() >= 0.0f);
    CHECK(s.image.max().item<float>() <= 1.0f);
    const auto& label = s.target(md::kSemseg);
    CHECK(label.min().item<int64_t>() >= 0);
    CHECK(label.max().item<int64_t>() < md::kSceneClasses);
    for (int64_t c = 0; c < md::kSceneClasses; ++c) {
      if (label.eq(c).any().item<bool>())
        classes.insert(c);
    }
    const auto& depth = s.target(md::kDepth);
    const auto window = label.eq(md::scene::kWindow).unsqueeze(0);
    CHECK(depth.masked_select(window.logical_not()).min().item<float>() > 0.05f);
    CHECK(depth.max().item<float>() < 15.0f);
    CHECK(depth.masked_select(window).abs().sum().item<float>() == 0.0f);
    const auto& normals = s.target(md::kNormals);
    const auto norm = normals.norm(2, 0).masked_select(window.squeeze(0).logical_not());
    CHECK(norm.sub(1).abs().max().item<float>() < 1e-4f);
    const auto& sal = s.target(md::kSaliency);
    CHECK(sal.sum().item<float>() > 0.0f);
    CHECK(sal.eq(0).logical_or(sal.eq(1)).all().item<bool>());
  }
  CHECK(classes.size() == static_cast<size_t>(md::kSceneClasses));
}

TEST_CASE("texture and light vary the pixels of one class") {
  md::SceneDataset ds(md::SceneOptions().height(48).width(64).count(4).seed(2));
  for (size_t i = 0; i < 4; ++i) {
    const auto s = ds.get(i);
    const auto floor = s.target(md::kSemseg).eq(md::scene::kFloor);
    if (floor.sum().item<int64_t>() < 50)
      continue;
    const auto grey = s.image.mean(0).masked_select(floor);
    CHECK(grey.std().item<float>() > 0.01f);
  }
}

TEST_CASE("a pixel's colour alone does not tell its class") {
  // Class colour centroids from some scenes, then nearest-centroid labels on others: if
  // classes had flat colours this would be near perfect.
  const auto pixels = [](md::SceneDataset ds) {
    std::vector<torch::Tensor> colours, labels;
    for (size_t i = 0; i < ds.size().value(); ++i) {
      const auto s = ds.get(i);
      colours.push_back(s.image.flatten(1).t());  // [HW, 3]
      labels.push_back(s.target(md::kSemseg).flatten());
    }
    return std::pair{torch::cat(colours), torch::cat(labels)};
  };
  const auto [train_rgb, train_label] =
      pixels(md::SceneDataset(md::SceneOptions().height(24).width(32).count(48).seed(21)));
  const auto [test_rgb, test_label] =
      pixels(md::SceneDataset(md::SceneOptions().height(24).width(32).count(48).seed(22)));
  auto centroids = torch::full({md::kSceneClasses, 3}, 1e3);
  for (int64_t c = 0; c < md::kSceneClasses; ++c) {
    const auto mask = train_label.eq(c);
    if (mask.any().item<bool>()) {
      centroids[c] = train_rgb.index({mask}).mean(0);
    }
  }
  const auto predicted = torch::cdist(test_rgb, centroids).argmin(1);
  const double accuracy = predicted.eq(test_label).to(torch::kDouble).mean().item<double>();
  const auto counts = torch::bincount(test_label, {}, md::kSceneClasses);
  const double majority = counts.max().item<double>() / static_cast<double>(test_label.numel());
  MESSAGE("nearest colour centroid accuracy ", accuracy, ", majority class share ", majority);
  CHECK(accuracy < majority + 0.15);
}

TEST_CASE("a scene rendered at two sizes is the same scene") {
  md::SceneDataset small(md::SceneOptions().height(30).width(40).count(2).seed(4));
  md::SceneDataset large(md::SceneOptions().height(60).width(80).count(2).seed(4));
  for (size_t i = 0; i < 2; ++i) {
    const auto a = small.get(i).target(md::kSemseg);
    const auto b = large.get(i).target(md::kSemseg).slice(0, 1, 60, 2).slice(1, 1, 80, 2);
    CHECK(a.eq(b).to(torch::kFloat32).mean().item<float>() > 0.9f);
  }
}

TEST_CASE("cached, augmented and loader-fed scenes agree with direct renders") {
  const auto options = md::SceneOptions().height(24).width(32).count(4).seed(9);
  md::SceneDataset plain(options);
  md::SceneDataset cached(md::SceneOptions(options).cache(true));
  for (size_t i = 0; i < 4; ++i)
    CHECK(same_sample(plain.get(i), cached.get(i)));

  md::SceneDataset augmented(md::SceneOptions(options).augment(true));
  const auto x = augmented.get(1);
  CHECK(same_sample(x, augmented.get(1)));
  CHECK(x.image.sizes() == std::vector<int64_t>{3, 24, 32});

  md::SceneDataset two_tasks(
      md::SceneOptions(options).tasks({md::scene_tasks()[0], md::scene_tasks()[3]}));
  CHECK(two_tasks.get(0).targets.size() == 2);
  CHECK_THROWS(md::SceneDataset(md::SceneOptions(options).tasks(md::pascal_context_tasks())));
}

TEST_CASE("written scenes read back through the NYUv2 reader unchanged") {
  TempDir dir;
  md::write_scene_dataset(dir.path(), 3, 2, 5, 24, 32);
  for (const std::string split : {"train", "val"}) {
    md::NyuV2Dataset disk(md::NyuV2Options(dir.path()).split(split).tasks(md::scene_tasks()));
    md::SceneDataset memory(md::SceneOptions().height(24).width(32).count(3).seed(5).split(split));
    CHECK(disk.size().value() == (split == "train" ? 3u : 2u));
    for (size_t i = 0; i < disk.size().value(); ++i) {
      CHECK(same_sample(disk.get(i), memory.get(i)));
    }
  }
  md::NyuV2Dataset three(md::NyuV2Options(dir.path()));
  CHECK(three.get(0).targets.size() == 3);
}

TEST_CASE("a few hundred small scenes render in seconds") {
  md::SceneDataset ds(md::SceneOptions().count(64).seed(3));
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < 64; ++i)
    ds.get(i);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("64 scenes at 96x128: " << seconds << " s");
  CHECK(seconds < 30.0);
}

TEST_CASE("colour maps give distinct class colours and black for invalid pixels") {
  const auto palette = md::label_palette(md::kSceneClasses);
  std::set<int64_t> colours;
  for (int64_t c = 0; c < md::kSceneClasses; ++c) {
    const auto p = palette[c].to(torch::kInt64);
    colours.insert(p[0].item<int64_t>() * 65536 + p[1].item<int64_t>() * 256 +
                   p[2].item<int64_t>());
  }
  CHECK(colours.size() == static_cast<size_t>(md::kSceneClasses));
  CHECK(colours.count(0) == 0);

  const auto labels = torch::tensor({0, 1, -1, 255}, torch::kInt64).view({2, 2});
  const auto rgb = md::colorize_labels(labels, md::kSceneClasses);
  CHECK(rgb.sizes() == std::vector<int64_t>{2, 2, 3});
  CHECK(rgb[1].sum().item<int64_t>() == 0);
  CHECK(rgb[0][0].sum().item<int64_t>() > 0);

  const auto depth = md::colorize_depth(torch::tensor({0.0f, 1.0f, 2.0f, 3.0f}).view({1, 2, 2}));
  CHECK(depth[0][0].sum().item<int64_t>() == 0);
  CHECK_FALSE(depth[0][1].equal(depth[1][1]));

  auto normals = torch::zeros({3, 1, 2});
  normals[2][0][1] = 1.0f;
  const auto n = md::colorize_normals(normals);
  CHECK(n[0][0].sum().item<int64_t>() == 0);
  CHECK(n[0][1][2].item<uint8_t>() == 255);
  CHECK(md::side_by_side({n, n}, 2).sizes() == std::vector<int64_t>{1, 6, 3});
}
