// The NYUv2 augmentation against the reference's operations written out pixel by pixel:
// a crop of int(H / s) x int(W / s), resized back with bilinear interpolation (aligned corners)
// for the image and normals and nearest for labels and depth, depth divided by s, and a flip
// that negates normal x.

#include <doctest/doctest.h>

#include <mtsam/data/augment.hpp>
#include <mtsam/data/tasks.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <set>
#include <vector>

namespace md = mtsam::data;

namespace {

/// The draws scale_crop_flip makes, in its order, from a generator seeded alike.
struct Draws {
  double scale = 1.0;
  int64_t top = 0, left = 0;
  bool flip = false;
};

Draws draws(md::SampleRng rng, const std::vector<double>& scales, int64_t height, int64_t width,
            double flip_probability) {
  Draws d;
  d.scale = scales[static_cast<size_t>(rng.integer(0, static_cast<int64_t>(scales.size()) - 1))];
  const auto h = static_cast<int64_t>(static_cast<double>(height) / d.scale);
  const auto w = static_cast<int64_t>(static_cast<double>(width) / d.scale);
  d.top = rng.integer(0, height - h);
  d.left = rng.integer(0, width - w);
  d.flip = rng.uniform() < flip_probability;
  return d;
}

/// PyTorch's "nearest" source index: floor(dst * (in / out)), computed in float as PyTorch does
/// (so 6 * (20 / 24) gives 4, not 5).
int64_t nearest_source(int64_t dst, int64_t in, int64_t out) {
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  return std::min(in - 1, static_cast<int64_t>(std::floor(static_cast<float>(dst) * scale)));
}

/// Output pixel (y, x) of resizing the crop [top, top + h) x [left, left + w) of plane `src`
/// back to height x width: bilinear with aligned corners, or nearest.
double resampled(const torch::TensorAccessor<float, 2>& src, const Draws& d, int64_t h, int64_t w,
                 int64_t height, int64_t width, int64_t y, int64_t x, bool bilinear) {
  if (!bilinear) {
    return src[d.top + nearest_source(y, h, height)][d.left + nearest_source(x, w, width)];
  }
  const double fy = height > 1 ? y * static_cast<double>(h - 1) / (height - 1) : 0.0;
  const double fx = width > 1 ? x * static_cast<double>(w - 1) / (width - 1) : 0.0;
  const auto y0 = static_cast<int64_t>(std::floor(fy));
  const auto x0 = static_cast<int64_t>(std::floor(fx));
  const int64_t y1 = std::min(y0 + 1, h - 1);
  const int64_t x1 = std::min(x0 + 1, w - 1);
  const double ay = fy - y0;
  const double ax = fx - x0;
  const auto at = [&](int64_t r, int64_t c) { return src[d.top + r][d.left + c]; };
  return (1 - ay) * ((1 - ax) * at(y0, x0) + ax * at(y0, x1)) +
         ay * ((1 - ax) * at(y1, x0) + ax * at(y1, x1));
}

/// The reference's augmentation of `chw` [C, H, W] (float), flipped and scaled as `d` says.
torch::Tensor reference(const torch::Tensor& chw, const Draws& d, bool bilinear,
                        double divide = 1.0) {
  const int64_t height = chw.size(1), width = chw.size(2);
  const auto h = static_cast<int64_t>(static_cast<double>(height) / d.scale);
  const auto w = static_cast<int64_t>(static_cast<double>(width) / d.scale);
  auto out = torch::empty_like(chw);
  for (int64_t c = 0; c < chw.size(0); ++c) {
    const auto plane = chw[c].contiguous();
    const auto src = plane.accessor<float, 2>();
    auto out_plane = out[c];
    auto dst = out_plane.accessor<float, 2>();
    for (int64_t y = 0; y < height; ++y) {
      for (int64_t x = 0; x < width; ++x) {
        const int64_t target_x = d.flip ? width - 1 - x : x;
        dst[y][target_x] =
            static_cast<float>(resampled(src, d, h, w, height, width, y, x, bilinear) / divide);
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("the NYUv2 scale-crop-flip equals the reference operations pixel by pixel") {
  torch::manual_seed(3);
  const int64_t height = 24, width = 32;
  md::TaskSample sample;
  sample.image = torch::rand({3, height, width});
  auto label = torch::randint(-1, 13, {height, width}, torch::kLong);
  auto depth = torch::rand({1, height, width}) * 5.0;
  auto normals = torch::nn::functional::normalize(
      torch::randn({3, height, width}), torch::nn::functional::NormalizeFuncOptions().dim(0));
  sample.targets = {{md::kSemseg, label}, {md::kDepth, depth}, {md::kNormals, normals}};
  const auto tasks = md::nyuv2_tasks();
  const auto options = md::AugmentOptions().seed(11);
  CHECK(options.scales() == std::vector<double>{1.0, 1.2, 1.5});

  std::set<double> scales_seen;
  std::set<bool> flips_seen;
  for (int64_t index = 0; index < 24; ++index) {
    CAPTURE(index);
    md::SampleRng rng(options.seed(), 2, index);
    const auto d = draws(rng, options.scales(), height, width, options.flip_probability());
    scales_seen.insert(d.scale);
    flips_seen.insert(d.flip);
    const auto out = md::scale_crop_flip(sample, tasks, options, rng);

    auto expected_normals = reference(normals, d, true);
    if (d.flip) {
      expected_normals[0].neg_();
    }
    CHECK(torch::allclose(out.image, reference(sample.image, d, true), 1e-5, 1e-5));
    CHECK(torch::allclose(out.target(md::kNormals), expected_normals, 1e-5, 1e-5));
    CHECK(torch::allclose(out.target(md::kDepth), reference(depth, d, false, d.scale), 1e-6, 1e-6));
    const auto expected_label =
        reference(label.unsqueeze(0).to(torch::kFloat32), d, false).squeeze(0).to(torch::kLong);
    CHECK(out.target(md::kSemseg).equal(expected_label));
  }
  CHECK(scales_seen == std::set<double>{1.0, 1.2, 1.5});
  CHECK(flips_seen == std::set<bool>{false, true});
}
