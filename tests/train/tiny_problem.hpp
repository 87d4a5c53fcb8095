#pragma once

// A tiny three-task problem for the trainer tests: a small convolutional model with dropout
// (so that exact resume depends on the generator state) and synthetic data whose targets are
// simple functions of the image.

#include <mtsam/data/tasks.hpp>
#include <mtsam/train/trainer.hpp>

#include <torch/torch.h>

#include <unistd.h>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace tora::test {

struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl() {
    stem = register_module("stem", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 6, 1)));
    trunk =
        register_module("trunk", torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 8, 3).padding(1)));
    dropout = register_module("dropout", torch::nn::Dropout(0.2));
    semseg = register_module("semseg", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 3, 1)));
    depth = register_module("depth", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 1, 1)));
    normals = register_module("normals", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 3, 1)));
    for (auto& p : stem->parameters()) {
      p.set_requires_grad(false);
    }
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x) {
    auto h = dropout(torch::relu(trunk(stem(x))));
    return {semseg(h), depth(h), normals(h)};
  }

  torch::nn::Conv2d stem{nullptr}, trunk{nullptr}, semseg{nullptr}, depth{nullptr},
      normals{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(TinyNet);

inline std::vector<mtsam::data::TaskSpec> tiny_specs() {
  using namespace mtsam::data;
  return {
      {kSemseg,
       TaskKind::segmentation,
       3,
       -1,
       LossKind::cross_entropy,
       1.0,
       false,
       Aggregation::per_image,
       {"mIoU", "Pix Acc"}},
      {kDepth,
       TaskKind::depth,
       1,
       -1,
       LossKind::masked_l1,
       1.0,
       false,
       Aggregation::per_image,
       {"Abs Err", "Rel Err"}},
      {kNormals,
       TaskKind::normals,
       3,
       -1,
       LossKind::cosine,
       1.0,
       false,
       Aggregation::per_image,
       {"Mean", "Median"}},
  };
}

/// `count` samples of 12x12 images, made from `seed`; augmentation flips by (index + epoch).
inline mtsam::train::DataSource tiny_source(int64_t count, int64_t seed) {
  auto generator = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
  std::vector<mtsam::data::TaskSample> samples;
  for (int64_t i = 0; i < count; ++i) {
    mtsam::data::TaskSample s;
    s.image = torch::rand({3, 12, 12}, generator);
    auto label = s.image.argmax(0);
    label.index_put_({0, torch::indexing::Slice(0, 3)}, -1);
    s.targets["semseg"] = label;
    auto depth = (0.5 + s.image[0]).unsqueeze(0);
    depth.index_put_({0, 1, torch::indexing::Slice(0, 4)}, 0.0);
    s.targets["depth"] = depth;
    auto n = s.image - 0.5;
    s.targets["normals"] = n / n.norm(2, 0, true);
    samples.push_back(s);
  }
  mtsam::train::DataSource source;
  source.size = count;
  source.get = [samples](int64_t index, int64_t epoch) {
    auto s = samples[static_cast<size_t>(index)];
    if ((index + epoch) % 2 == 1) {
      s.image = s.image.flip(-1);
      for (auto& [name, t] : s.targets) {
        t = t.flip(-1);
      }
    }
    return s;
  };
  return source;
}

/// A model wrapper around a fresh TinyNet initialised from `seed`.
inline mtsam::train::TrainableModel tiny_model(uint64_t seed) {
  torch::manual_seed(seed);
  TinyNet net;
  mtsam::train::TrainableModel model;
  model.module = net.ptr();
  model.forward = [net](const torch::Tensor& x) mutable { return net->forward(x); };
  model.regularizer = [net]() { return 1e-3 * net->trunk->weight.pow(2).sum(); };
  return model;
}

/// A fresh folder under the temporary directory, removed when the object goes.
struct TempDir {
  explicit TempDir(const std::string& name) {
    path = std::filesystem::temp_directory_path() /
           ("mtsam_train_" + name + "_" + std::to_string(::getpid()) + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::filesystem::path path;
};

}  // namespace tora::test
