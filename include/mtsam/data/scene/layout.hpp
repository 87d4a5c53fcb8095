#pragma once

/// Random indoor scene layouts: a room with textured floor, walls and ceiling, cabinets against
/// the walls, a table, boxes and balls on the floor or the table, pictures and a window on the
/// walls, a rug, one point light, and a camera near one wall looking across the room. Every
/// choice comes from one seeded generator, so a (seed, stream, index) triple fixes the scene.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include <mtsam/data/augment.hpp>
#include <mtsam/data/scene/geometry.hpp>
#include <mtsam/data/scene/texture.hpp>

namespace mtsam::data::scene {

/// The semantic classes of the scenes, in label order.
enum SceneClass : int {
  kFloor,
  kWall,
  kCeiling,
  kCabinet,
  kTable,
  kBox,
  kBall,
  kPicture,
  kRug,
  kWindow
};
/// Number of scene classes.
inline constexpr int64_t kSceneClasses = 10;
/// Class names, indexed by label.
inline constexpr std::array<const char*, kSceneClasses> kSceneClassNames = {
    "floor", "wall", "ceiling", "cabinet", "table", "box", "ball", "picture", "rug", "window"};
/// Whether a class is a salient foreground object (the saliency target).
inline constexpr bool is_salient(int cls) {
  return cls == kCabinet || cls == kTable || cls == kBox || cls == kBall;
}

/// One object: a box or a sphere of a class, with its material and a texture offset.
struct Object {
  int cls = kBox;
  bool is_sphere = false;
  Box shape_box;
  Sphere shape_sphere;
  Material material;
  Vec3 texture_offset;
};

/// A pinhole camera: position and orthonormal basis (`forward` into the scene).
struct Camera {
  Vec3 position;
  Vec3 forward{0, 0, -1};
  Vec3 right{1, 0, 0};
  Vec3 up{0, 1, 0};
  /// tan of half the vertical field of view.
  double tan_half_fov = 0.5;
};

/// A complete scene description.
struct Scene {
  /// Room half width (x), height (y) and half depth (z).
  Vec3 room{3, 2.8, 3};
  /// Floor, ceiling and wall materials.
  std::array<Material, 3> room_materials;
  std::vector<Object> objects;
  Vec3 light_position{0, 2.6, 0};
  Vec3 light_color{1, 1, 1};
  double light_power = 4.0;
  double ambient = 0.25;
  double exposure = 1.0;
  Camera camera;
  uint64_t noise_seed = 0;
};

namespace detail {

inline Vec3 hsv(double h, double s, double v) {
  h = (h - std::floor(h)) * 6.0;
  const int i = static_cast<int>(h) % 6;
  const double f = h - std::floor(h);
  const double p = v * (1 - s);
  const double q = v * (1 - s * f);
  const double t = v * (1 - s * (1 - f));
  switch (i) {
    case 0:
      return {v, t, p};
    case 1:
      return {q, v, p};
    case 2:
      return {p, v, t};
    case 3:
      return {p, q, v};
    case 4:
      return {t, p, v};
    default:
      return {v, p, q};
  }
}

/// A colour near `hue` (any hue one time in four), with saturation and value in ranges.
inline Vec3 color(SampleRng& rng, double hue, double spread, double s0, double s1, double v0,
                  double v1) {
  const double h = rng.uniform() < 0.25 ? rng.uniform() : hue + rng.uniform(-spread, spread);
  return hsv(h, rng.uniform(s0, s1), rng.uniform(v0, v1));
}

/// A material typical of `cls`; classes share colour ranges, so texture and shape matter.
inline Material material_for(int cls, SampleRng& rng) {
  Material m;
  m.seed = rng.next();
  m.roughness = rng.uniform(0.1, 0.5);
  const auto pick = [&](std::initializer_list<Pattern> ps) {
    return *(ps.begin() + rng.integer(0, static_cast<int64_t>(ps.size()) - 1));
  };
  switch (cls) {
    case kFloor:
      m.pattern = pick({Pattern::wood, Pattern::tiles, Pattern::plain});
      m.axis = m.pattern == Pattern::tiles ? 1 : (rng.uniform() < 0.5 ? 0 : 2);
      m.frequency = rng.uniform(1.5, 4.0);
      m.color_a = color(rng, 0.08, 0.05, 0.3, 0.7, 0.35, 0.75);
      m.color_b = color(rng, 0.07, 0.05, 0.3, 0.8, 0.2, 0.5);
      break;
    case kWall:
      m.pattern = pick({Pattern::plain, Pattern::stripes, Pattern::marble});
      m.axis = 1;
      m.frequency = rng.uniform(2.0, 7.0);
      m.color_a = color(rng, 0.12, 0.5, 0.05, 0.35, 0.6, 0.95);
      m.color_b = color(rng, 0.12, 0.5, 0.05, 0.45, 0.45, 0.9);
      break;
    case kCeiling:
      m.pattern = Pattern::plain;
      m.color_a = color(rng, 0.1, 0.5, 0.0, 0.12, 0.75, 1.0);
      m.color_b = m.color_a * 0.85;
      break;
    case kCabinet:
    case kTable:
      m.pattern =
          pick({Pattern::wood, Pattern::plain, cls == kTable ? Pattern::marble : Pattern::wood});
      m.axis = cls == kCabinet ? 1 : 0;
      m.frequency = rng.uniform(3.0, 7.0);
      m.color_a = color(rng, 0.08, 0.08, 0.3, 0.7, 0.3, 0.8);
      m.color_b = color(rng, 0.06, 0.08, 0.3, 0.8, 0.15, 0.5);
      break;
    case kBox:
      m.pattern = pick({Pattern::plain, Pattern::stripes, Pattern::dots});
      m.axis = static_cast<int>(rng.integer(0, 2));
      m.frequency = rng.uniform(5.0, 12.0);
      m.color_a = color(rng, 0.09, 0.1, 0.3, 0.7, 0.4, 0.85);
      m.color_b = color(rng, 0.0, 0.5, 0.2, 0.8, 0.2, 0.7);
      break;
    case kBall:
      m.pattern = pick({Pattern::dots, Pattern::stripes, Pattern::marble});
      m.axis = static_cast<int>(rng.integer(0, 2));
      m.frequency = rng.uniform(8.0, 16.0);
      m.color_a = color(rng, rng.uniform(), 0.5, 0.5, 1.0, 0.5, 1.0);
      m.color_b = color(rng, rng.uniform(), 0.5, 0.3, 1.0, 0.3, 1.0);
      m.specular = rng.uniform(15.0, 60.0);
      break;
    case kPicture:
      m.pattern = pick({Pattern::mosaic, Pattern::marble});
      m.axis = 0;
      m.frequency = rng.uniform(6.0, 20.0);
      m.color_a = color(rng, rng.uniform(), 0.5, 0.3, 0.9, 0.4, 1.0);
      m.color_b = color(rng, rng.uniform(), 0.5, 0.3, 0.9, 0.2, 0.8);
      break;
    case kRug:
      m.pattern = pick({Pattern::stripes, Pattern::tiles, Pattern::dots});
      m.axis = m.pattern == Pattern::tiles ? 1 : (rng.uniform() < 0.5 ? 0 : 2);
      m.frequency = rng.uniform(4.0, 10.0);
      m.color_a = color(rng, rng.uniform(), 0.5, 0.4, 0.9, 0.4, 0.9);
      m.color_b = color(rng, rng.uniform(), 0.5, 0.4, 0.9, 0.2, 0.8);
      break;
    default:  // window: bright sky, emissive
      m.pattern = Pattern::sky;
      m.emissive = true;
      m.frequency = rng.uniform(1.5, 3.0);
      m.color_a = color(rng, 0.58, 0.05, 0.1, 0.5, 0.9, 1.0);
      m.color_b = color(rng, 0.12, 0.1, 0.0, 0.3, 0.85, 1.0);
      break;
  }
  return m;
}

}  // namespace detail

/// Whether `p` projects inside the central `margin` part of a 4:3 frame, in front of `cam`.
inline bool in_view(const Camera& cam, const Vec3& p, double margin = 0.85) {
  const Vec3 v = p - cam.position;
  const double z = dot(v, cam.forward);
  if (z < 0.6)
    return false;
  const double x = dot(v, cam.right) / (z * cam.tan_half_fov * 4.0 / 3.0);
  const double y = dot(v, cam.up) / (z * cam.tan_half_fov);
  return std::abs(x) < margin && std::abs(y) < margin;
}

/// Samples a scene from `rng` (see the header comment).
inline Scene sample_scene(SampleRng& rng) {
  Scene s;
  const double hx = rng.uniform(2.0, 3.5);
  const double hz = rng.uniform(2.0, 3.5);
  const double height = rng.uniform(2.5, 3.2);
  s.room = {hx, height, hz};
  s.room_materials = {detail::material_for(kFloor, rng), detail::material_for(kCeiling, rng),
                      detail::material_for(kWall, rng)};

  Camera& cam = s.camera;
  cam.position = {rng.uniform(-0.4, 0.4) * hx, rng.uniform(1.1, 1.8), hz - rng.uniform(0.3, 0.8)};
  const Vec3 target{rng.uniform(-0.5, 0.5) * hx, rng.uniform(0.2, 1.0),
                    -hz + rng.uniform(0.3, 1.5)};
  cam.forward = normalized(target - cam.position);
  const Vec3 right = normalized(cross(cam.forward, Vec3{0, 1, 0}));
  const Vec3 up = cross(right, cam.forward);
  const double roll = rng.uniform(-0.05, 0.05);
  cam.right = right * std::cos(roll) + up * std::sin(roll);
  cam.up = up * std::cos(roll) - right * std::sin(roll);
  cam.tan_half_fov = std::tan(0.5 * rng.uniform(48.0, 62.0) * 3.14159265358979 / 180.0);

  const auto add = [&](int cls, const Box& b) {
    Object o;
    o.cls = cls;
    o.shape_box = b;
    o.material = detail::material_for(cls, rng);
    o.texture_offset = {rng.uniform(0, 10), rng.uniform(0, 10), rng.uniform(0, 10)};
    s.objects.push_back(o);
  };
  // A point on the floor in front of the camera, at least `clear` from the walls.
  const auto floor_spot = [&](double clear, Vec3& out) {
    for (int attempt = 0; attempt < 40; ++attempt) {
      const Vec3 p{rng.uniform(-hx + clear, hx - clear), 0.0,
                   rng.uniform(-hz + clear, cam.position.z - 1.2)};
      if (in_view(cam, p)) {
        out = p;
        return true;
      }
    }
    return false;
  };
  // A box flush against a wall: the back wall (z = -hz) or a side wall, with `depth` half size.
  const auto wall_box = [&](double half_w, double half_h, double half_d, double y, Box& out) {
    for (int attempt = 0; attempt < 40; ++attempt) {
      const int side = static_cast<int>(rng.integer(0, 3));  // 0, 1 back; 2 left; 3 right
      Box b;
      b.half = {half_w, half_h, half_d};
      if (side < 2) {
        b.center = {rng.uniform(-hx + half_w, hx - half_w), y, -hz + half_d + 0.002};
      } else {
        const double x = side == 2 ? -hx + half_d + 0.002 : hx - half_d - 0.002;
        b.center = {x, y, rng.uniform(-hz + half_w, cam.position.z - 1.0)};
        b.yaw = 1.5707963267948966;
      }
      if (in_view(cam, b.center, 0.95)) {
        out = b;
        return true;
      }
    }
    return false;
  };

  Box b;
  for (int64_t i = rng.integer(1, 2); i > 0; --i) {
    const double half_h = rng.uniform(0.35, 1.0);
    if (wall_box(rng.uniform(0.25, 0.6), half_h, rng.uniform(0.18, 0.3), half_h, b)) {
      add(kCabinet, b);
    }
  }
  double table_top = 0.0;
  Vec3 table_at;
  double table_yaw = 0.0;
  Vec3 table_half;
  if (rng.uniform() < 0.75 && floor_spot(0.9, table_at)) {
    table_top = rng.uniform(0.65, 0.8);
    table_yaw = rng.uniform(-0.6, 0.6);
    table_half = {rng.uniform(0.45, 0.8), 0.02, rng.uniform(0.3, 0.5)};
    add(kTable, {{table_at.x, table_top - 0.02, table_at.z}, table_half, table_yaw});
    const Material top = s.objects.back().material;
    const Box frame{{0, 0, 0}, {0, 0, 0}, table_yaw};
    for (const double sx : {-1.0, 1.0}) {
      for (const double sz : {-1.0, 1.0}) {
        const Vec3 offset =
            frame.to_world({sx * (table_half.x - 0.06), 0, sz * (table_half.z - 0.06)});
        add(kTable, {{table_at.x + offset.x, (table_top - 0.04) / 2, table_at.z + offset.z},
                     {0.025, (table_top - 0.04) / 2, 0.025},
                     table_yaw});
        s.objects.back().material = top;
      }
    }
  }
  // A resting point for a small object of half height `half_y`: the floor or the table top.
  const auto rest = [&](double half_y, Vec3& out) {
    if (table_top > 0 && rng.uniform() < 0.35) {
      const Box frame{{0, 0, 0}, {0, 0, 0}, table_yaw};
      const Vec3 offset = frame.to_world(
          {rng.uniform(-0.7, 0.7) * table_half.x, 0, rng.uniform(-0.7, 0.7) * table_half.z});
      out = {table_at.x + offset.x, table_top + half_y, table_at.z + offset.z};
      return true;
    }
    if (!floor_spot(0.4, out))
      return false;
    out.y = half_y;
    return true;
  };
  Vec3 at;
  for (int64_t i = rng.integer(1, 4); i > 0; --i) {
    const Vec3 half{rng.uniform(0.1, 0.3), rng.uniform(0.08, 0.3), rng.uniform(0.1, 0.3)};
    if (rest(half.y, at))
      add(kBox, {at, half, rng.uniform(0.0, 3.14159265358979)});
  }
  for (int64_t i = rng.integer(1, 3); i > 0; --i) {
    const double r = rng.uniform(0.08, 0.25);
    if (!rest(r, at))
      continue;
    add(kBall, {});
    s.objects.back().is_sphere = true;
    s.objects.back().shape_sphere = {at, r};
  }
  for (int64_t i = rng.integer(1, 2); i > 0; --i) {
    if (wall_box(rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.45), 0.008,
                 std::min(rng.uniform(1.3, 1.9), height - 0.45), b)) {
      add(kPicture, b);
    }
  }
  if (rng.uniform() < 0.7 && floor_spot(1.0, at)) {
    add(kRug, {{at.x, 0.004, at.z},
               {rng.uniform(0.6, 1.0), 0.004, rng.uniform(0.4, 0.8)},
               rng.uniform(-0.4, 0.4)});
  }
  if (rng.uniform() < 0.6 && wall_box(rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.5), 0.006,
                                      std::min(rng.uniform(1.3, 1.7), height - 0.6), b)) {
    add(kWindow, b);
  }

  s.light_position = {rng.uniform(-0.6, 0.6) * hx, height - 0.15, rng.uniform(-0.6, 0.6) * hz};
  s.light_color = {1.0, rng.uniform(0.8, 1.0), rng.uniform(0.6, 1.0)};
  s.light_power = rng.uniform(2.5, 7.0);
  s.ambient = rng.uniform(0.1, 0.3);
  s.exposure = rng.uniform(0.8, 1.25);
  s.noise_seed = rng.next();
  return s;
}

}  // namespace mtsam::data::scene
