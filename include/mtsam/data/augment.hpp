#pragma once

/// Seeded training augmentation: random scale-crop then horizontal flip, as the NYUv2 reference
/// does it. A scale s is drawn from `scales`, a crop of `int(H / s) x int(W / s)` at a uniform
/// position is resized back to `H x W` (image and normals bilinear with aligned corners, labels,
/// depth and saliency nearest; depth divided by s), then with probability `flip_probability`
/// everything is mirrored and the normals' x component negated.
///
/// Draws come from a generator seeded by (seed, epoch, index) alone, so a sample's augmentation
/// does not depend on worker count, batch order or thread timing.

#include <torch/torch.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <mtsam/data/tasks.hpp>

namespace mtsam::data {

/// A small deterministic generator (splitmix64) for one sample's random choices.
class SampleRng {
 public:
  /// Seeds from the three numbers; different triples give unrelated streams.
  SampleRng(uint64_t seed, int64_t epoch, int64_t index) {
    state_ = mix(seed ^ 0x6A09E667F3BCC909ULL);
    state_ = mix(state_ ^ static_cast<uint64_t>(epoch));
    state_ = mix(state_ ^ static_cast<uint64_t>(index));
  }

  /// Next 64 random bits.
  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    return mix(state_);
  }

  /// Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  /// Uniform in [lo, hi] (both included).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  /// Uniform integer in [lo, hi] (both included); requires lo <= hi.
  int64_t integer(int64_t lo, int64_t hi) {
    const auto span = static_cast<uint64_t>(hi - lo) + 1;
    return lo + static_cast<int64_t>(next() % span);
  }

 private:
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  uint64_t state_ = 0;
};

/// An epoch number shared by every copy of a data set (the data loader copies the data set into
/// each worker). Set it before starting each epoch's iteration: the loader prefetches as soon as
/// `begin()` is called.
class SharedEpoch {
 public:
  SharedEpoch() : value_(std::make_shared<std::atomic<int64_t>>(0)) {}
  void set(int64_t epoch) { value_->store(epoch); }
  int64_t get() const { return value_->load(); }

 private:
  std::shared_ptr<std::atomic<int64_t>> value_;
};

/// The NYUv2 reference's crop scales.
inline constexpr std::array<double, 3> kReferenceScales = {1.0, 1.2, 1.5};

/// Options of `scale_crop_flip`.
struct AugmentOptions {
  /// Scales to draw from, uniformly; 1 keeps the whole image. {1, 1.2, 1.5}.
  TORCH_ARG(std::vector<double>, scales) = std::vector<double>(kReferenceScales.begin(),
                                                               kReferenceScales.end());
  /// Probability of the horizontal flip.
  TORCH_ARG(double, flip_probability) = 0.5;
  /// Divide depth by the scale (the reference does, for NYUv2 and CityScapes alike).
  TORCH_ARG(bool, divide_depth_by_scale) = true;
  /// Resize normals bilinearly (the NYUv2 reference); false uses nearest, keeping the invalid
  /// mask exact.
  TORCH_ARG(bool, bilinear_normals) = true;
  /// Seed of the draws; with the epoch and the sample index it fixes every choice.
  TORCH_ARG(uint64_t, seed) = 0;
};

namespace detail {

inline torch::Tensor resize_chw(const torch::Tensor& chw, int64_t h, int64_t w, bool bilinear) {
  namespace F = torch::nn::functional;
  auto opts = F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w});
  if (bilinear) {
    opts = opts.mode(torch::kBilinear).align_corners(true);
  } else {
    opts = opts.mode(torch::kNearest);
  }
  return F::interpolate(chw.unsqueeze(0), opts).squeeze(0);
}

inline const TaskSpec& spec_of(const std::vector<TaskSpec>& tasks, const std::string& name) {
  for (const auto& t : tasks) {
    if (t.name == name)
      return t;
  }
  throw std::invalid_argument("augmentation: target '" + name + "' has no task spec");
}

}  // namespace detail

/// Augments one sample (see the header comment); `tasks` gives each target's kind.
inline TaskSample scale_crop_flip(const TaskSample& sample, const std::vector<TaskSpec>& tasks,
                                  const AugmentOptions& options, SampleRng& rng) {
  TORCH_CHECK(!options.scales().empty(), "scale_crop_flip: scales must not be empty");
  const int64_t height = sample.image.size(-2);
  const int64_t width = sample.image.size(-1);
  const double s = options.scales()[static_cast<size_t>(
      rng.integer(0, static_cast<int64_t>(options.scales().size()) - 1))];
  TORCH_CHECK(s >= 1.0, "scale_crop_flip: scales must be >= 1, got ", s);
  const auto h = static_cast<int64_t>(static_cast<double>(height) / s);
  const auto w = static_cast<int64_t>(static_cast<double>(width) / s);
  const int64_t top = rng.integer(0, height - h);
  const int64_t left = rng.integer(0, width - w);
  const bool flip = rng.uniform() < options.flip_probability();
  const bool resize = h != height || w != width;

  const auto crop = [&](const torch::Tensor& t, bool bilinear) {
    if (!resize)
      return t;
    const torch::Tensor c = t.narrow(-2, top, h).narrow(-1, left, w);
    if (t.is_floating_point()) {
      return detail::resize_chw(c, height, width, bilinear);
    }
    return detail::resize_chw(c.unsqueeze(0).to(torch::kFloat32), height, width, false)
        .squeeze(0)
        .round()
        .to(t.scalar_type());
  };
  const auto mirror = [&](const torch::Tensor& t) { return flip ? t.flip({-1}) : t; };

  TaskSample out;
  out.image = mirror(crop(sample.image, true));
  for (const auto& [name, target] : sample.targets) {
    const TaskSpec& spec = detail::spec_of(tasks, name);
    torch::Tensor t;
    switch (spec.kind) {
      case TaskKind::segmentation:
      case TaskKind::saliency:
        t = mirror(crop(target, false));
        break;
      case TaskKind::depth:
        t = mirror(crop(target, false));
        if (options.divide_depth_by_scale() && s != 1.0)
          t = t / s;
        break;
      case TaskKind::normals:
        t = mirror(crop(target, options.bilinear_normals())).clone();
        if (flip)
          t[0].neg_();
        break;
    }
    out.targets.emplace(name, t);
  }
  return out;
}

}  // namespace mtsam::data
