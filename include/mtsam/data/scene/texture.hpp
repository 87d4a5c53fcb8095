#pragma once

/// Solid procedural textures of the scenes: hashed value noise, its fractal sum, and the
/// patterns (plain, tiles, stripes, wood, dots, marble, mosaic, sky) a material draws from.

#include <cmath>
#include <cstdint>

#include <mtsam/data/scene/geometry.hpp>

namespace mtsam::data::scene {

/// An integer hash of three lattice coordinates and a seed, to [0, 1).
inline double lattice_hash(int64_t x, int64_t y, int64_t z, uint64_t seed) {
  uint64_t h = seed * 0x9E3779B97F4A7C15ULL;
  h ^= static_cast<uint64_t>(x) * 0xC2B2AE3D27D4EB4FULL;
  h ^= static_cast<uint64_t>(y) * 0x165667B19E3779F9ULL;
  h ^= static_cast<uint64_t>(z) * 0x27D4EB2F165667C5ULL;
  h = (h ^ (h >> 29)) * 0xBF58476D1CE4E5B9ULL;
  h = (h ^ (h >> 32)) * 0x94D049BB133111EBULL;
  h ^= h >> 31;
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

/// Smoothly interpolated lattice noise in [0, 1).
inline double value_noise(const Vec3& p, uint64_t seed) {
  const double fx = std::floor(p.x);
  const double fy = std::floor(p.y);
  const double fz = std::floor(p.z);
  const auto ix = static_cast<int64_t>(fx);
  const auto iy = static_cast<int64_t>(fy);
  const auto iz = static_cast<int64_t>(fz);
  const auto smooth = [](double t) { return t * t * (3.0 - 2.0 * t); };
  const double u = smooth(p.x - fx);
  const double v = smooth(p.y - fy);
  const double w = smooth(p.z - fz);
  const auto lerp = [](double a, double b, double t) { return a + (b - a) * t; };
  double c[2][2];
  for (int j = 0; j < 2; ++j) {
    for (int k = 0; k < 2; ++k) {
      c[j][k] = lerp(lattice_hash(ix, iy + j, iz + k, seed),
                     lattice_hash(ix + 1, iy + j, iz + k, seed), u);
    }
  }
  return lerp(lerp(c[0][0], c[1][0], v), lerp(c[0][1], c[1][1], v), w);
}

/// Four octaves of value noise, in [0, 1).
inline double fbm(const Vec3& p, uint64_t seed) {
  double sum = 0.0;
  double amplitude = 0.5;
  double norm = 0.0;
  Vec3 q = p;
  for (int octave = 0; octave < 4; ++octave) {
    sum += amplitude * value_noise(q, seed + static_cast<uint64_t>(octave));
    norm += amplitude;
    amplitude *= 0.5;
    q = q * 2.03;
  }
  return sum / norm;
}

/// The patterns a material can draw.
enum class Pattern { plain, tiles, stripes, wood, dots, marble, mosaic, sky };

/// A material: a pattern with its colours and scale. Colours are linear RGB in [0, 1].
struct Material {
  Pattern pattern = Pattern::plain;
  Vec3 color_a{0.5, 0.5, 0.5};
  Vec3 color_b{0.3, 0.3, 0.3};
  /// Pattern cells per metre.
  double frequency = 4.0;
  /// Strength of the noise modulation, 0..1.
  double roughness = 0.3;
  /// Axis along which stripes, planks and grain run: 0 x, 1 y, 2 z (in the surface's frame);
  /// for tiles, the axis normal to the tiled surface.
  int axis = 0;
  /// Shininess of the highlight; 0 is matte.
  double specular = 0.0;
  /// Emissive materials (windows) ignore the lights.
  bool emissive = false;
  uint64_t seed = 0;
};

inline Vec3 mix(const Vec3& a, const Vec3& b, double t) {
  return a * (1.0 - t) + b * t;
}

/// The albedo (or emitted colour) of `material` at `p`, a point in the surface's own frame.
inline Vec3 shade_pattern(const Material& m, const Vec3& p) {
  const Vec3 q = p * m.frequency;
  const double grain = fbm(q * 2.0, m.seed);
  const double along = m.axis == 0 ? q.x : (m.axis == 1 ? q.y : q.z);
  const double across = m.axis == 0 ? q.z + q.y : (m.axis == 1 ? q.x + q.z : q.x + q.y);
  Vec3 base;
  switch (m.pattern) {
    case Pattern::plain:
      base = mix(m.color_a, m.color_b, 0.3 * grain);
      break;
    case Pattern::tiles: {
      // Square tiles on the two axes other than `axis` (the surface's normal axis).
      const double u = m.axis == 0 ? q.y : q.x;
      const double v = m.axis == 2 ? q.y : q.z;
      const bool grout = u - std::floor(u) < 0.06 || v - std::floor(v) < 0.06;
      const auto parity = static_cast<int64_t>(std::floor(u) + std::floor(v));
      base = grout ? m.color_b * 0.5
                   : ((parity & 1) != 0 ? m.color_a : mix(m.color_a, m.color_b, 0.35));
      break;
    }
    case Pattern::stripes: {
      const double s = 0.5 + 0.5 * std::sin(across * 3.14159265358979);
      base = mix(m.color_a, m.color_b, s > 0.5 ? 1.0 : 0.0);
      break;
    }
    case Pattern::wood: {
      const double plank = std::floor(across);
      const double shade = 0.8 + 0.4 * lattice_hash(static_cast<int64_t>(plank), 0, 0, m.seed);
      const double ring = along * 0.15 + 6.0 * fbm(Vec3{along * 0.2, across * 4.0, 0.0}, m.seed);
      const double r = ring - std::floor(ring);
      base = mix(m.color_a, m.color_b, r * r) * shade;
      if (across - plank < 0.04)
        base = base * 0.55;
      break;
    }
    case Pattern::dots: {
      const Vec3 f{q.x - std::floor(q.x) - 0.5, q.y - std::floor(q.y) - 0.5,
                   q.z - std::floor(q.z) - 0.5};
      base = length(f) < 0.32 ? m.color_b : m.color_a;
      break;
    }
    case Pattern::marble: {
      const double v = 0.5 + 0.5 * std::sin(along * 2.0 + 9.0 * fbm(q * 0.7, m.seed + 7));
      base = mix(m.color_a, m.color_b, std::pow(v, 3.0));
      break;
    }
    case Pattern::mosaic: {
      const auto cx = static_cast<int64_t>(std::floor(q.x));
      const auto cy = static_cast<int64_t>(std::floor(q.y));
      const auto cz = static_cast<int64_t>(std::floor(q.z));
      const Vec3 c{lattice_hash(cx, cy, cz, m.seed), lattice_hash(cx, cy, cz, m.seed + 1),
                   lattice_hash(cx, cy, cz, m.seed + 2)};
      base = mix(c, m.color_a, 0.3);
      break;
    }
    case Pattern::sky: {
      const double up = std::clamp(0.5 + 0.5 * p.y * m.frequency, 0.0, 1.0);
      base = mix(m.color_b, m.color_a, up) * (0.85 + 0.3 * fbm(q * 0.5, m.seed));
      break;
    }
  }
  const double modulation = 1.0 + m.roughness * (grain - 0.5);
  return base * modulation;
}

}  // namespace mtsam::data::scene
