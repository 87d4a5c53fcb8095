#pragma once

/// Vectors, rays and the analytic primitives of the procedural scenes (an axis-aligned room seen
/// from inside, boxes turned about the vertical axis, spheres), with their ray intersections.

#include <algorithm>
#include <cmath>
#include <limits>

namespace mtsam::data::scene {

/// A 3-vector of doubles.
struct Vec3 {
  double x = 0.0;
  double y = 0.0;
  double z = 0.0;

  Vec3 operator+(const Vec3& o) const { return {x + o.x, y + o.y, z + o.z}; }
  Vec3 operator-(const Vec3& o) const { return {x - o.x, y - o.y, z - o.z}; }
  Vec3 operator*(double s) const { return {x * s, y * s, z * s}; }
  Vec3 operator*(const Vec3& o) const { return {x * o.x, y * o.y, z * o.z}; }
  Vec3 operator-() const { return {-x, -y, -z}; }
  double operator[](int i) const { return i == 0 ? x : (i == 1 ? y : z); }
};

inline double dot(const Vec3& a, const Vec3& b) {
  return a.x * b.x + a.y * b.y + a.z * b.z;
}
inline Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}
inline double length(const Vec3& a) {
  return std::sqrt(dot(a, a));
}
inline Vec3 normalized(const Vec3& a) {
  const double n = length(a);
  return n > 0 ? a * (1.0 / n) : a;
}

/// A half-line `origin + t direction`, t > 0.
struct Ray {
  Vec3 origin;
  Vec3 direction;
};

/// What a ray met: distance along the ray, unit normal facing the ray, and the point in the
/// primitive's own frame (for solid textures).
struct Hit {
  double t = std::numeric_limits<double>::infinity();
  Vec3 normal;
  Vec3 local;
  int primitive = -1;  // index into the scene's primitives; -1 for the room
  int face = 0;        // room: 0 floor, 1 ceiling, 2 wall
};

/// Smallest ray distance accepted, to leave the surface a shadow ray starts from.
inline constexpr double kEpsilon = 1e-6;

/// The inside of the room `[-w/2, w/2] x [0, h] x [-d/2, d/2]`: the point where a ray from
/// inside leaves it. Faces: 0 floor (y = 0), 1 ceiling, 2 walls.
inline Hit intersect_room(const Ray& ray, const Vec3& half_extent_xz_height) {
  const double hx = half_extent_xz_height.x;
  const double hy = half_extent_xz_height.y;
  const double hz = half_extent_xz_height.z;
  Hit hit;
  const auto consider = [&](double t, const Vec3& n, int face) {
    if (t > kEpsilon && t < hit.t) {
      hit.t = t;
      hit.normal = n;
      hit.face = face;
    }
  };
  const Vec3& o = ray.origin;
  const Vec3& d = ray.direction;
  if (d.x > 0)
    consider((hx - o.x) / d.x, {-1, 0, 0}, 2);
  if (d.x < 0)
    consider((-hx - o.x) / d.x, {1, 0, 0}, 2);
  if (d.y > 0)
    consider((hy - o.y) / d.y, {0, -1, 0}, 1);
  if (d.y < 0)
    consider((0.0 - o.y) / d.y, {0, 1, 0}, 0);
  if (d.z > 0)
    consider((hz - o.z) / d.z, {0, 0, -1}, 2);
  if (d.z < 0)
    consider((-hz - o.z) / d.z, {0, 0, 1}, 2);
  hit.local = o + d * hit.t;
  return hit;
}

/// A box of half sizes `half` centred at `center`, turned by `yaw` radians about the y axis.
struct Box {
  Vec3 center;
  Vec3 half;
  double yaw = 0.0;

  /// World direction -> the box's frame.
  Vec3 to_local(const Vec3& v) const {
    const double c = std::cos(yaw);
    const double s = std::sin(yaw);
    return {c * v.x - s * v.z, v.y, s * v.x + c * v.z};
  }
  /// The box's frame -> world direction.
  Vec3 to_world(const Vec3& v) const {
    const double c = std::cos(yaw);
    const double s = std::sin(yaw);
    return {c * v.x + s * v.z, v.y, -s * v.x + c * v.z};
  }
};

/// Nearest entry of `ray` into `box` beyond `kEpsilon` (slab method); `t` infinite on a miss.
inline Hit intersect_box(const Ray& ray, const Box& box) {
  const Vec3 o = box.to_local(ray.origin - box.center);
  const Vec3 d = box.to_local(ray.direction);
  double t_near = -std::numeric_limits<double>::infinity();
  double t_far = std::numeric_limits<double>::infinity();
  int axis = -1;
  double sign = 0.0;
  for (int a = 0; a < 3; ++a) {
    const double oa = o[a];
    const double da = d[a];
    const double ha = box.half[a];
    if (std::abs(da) < 1e-12) {
      if (oa < -ha || oa > ha)
        return {};
      continue;
    }
    double t0 = (-ha - oa) / da;
    double t1 = (ha - oa) / da;
    double s = -1.0;  // entering through the -a face
    if (t0 > t1) {
      std::swap(t0, t1);
      s = 1.0;
    }
    if (t0 > t_near) {
      t_near = t0;
      axis = a;
      sign = s;
    }
    t_far = std::min(t_far, t1);
    if (t_near > t_far)
      return {};
  }
  if (axis < 0 || t_near <= kEpsilon)
    return {};
  Hit hit;
  hit.t = t_near;
  Vec3 n{0, 0, 0};
  (axis == 0 ? n.x : (axis == 1 ? n.y : n.z)) = sign;
  hit.normal = box.to_world(n);
  hit.local = o + d * t_near;
  return hit;
}

/// A sphere.
struct Sphere {
  Vec3 center;
  double radius = 1.0;
};

/// Nearest entry of `ray` (unit direction) into `sphere` beyond `kEpsilon`.
inline Hit intersect_sphere(const Ray& ray, const Sphere& sphere) {
  const Vec3 oc = ray.origin - sphere.center;
  const double b = dot(oc, ray.direction);
  const double c = dot(oc, oc) - sphere.radius * sphere.radius;
  const double disc = b * b - c;
  if (disc < 0)
    return {};
  const double t = -b - std::sqrt(disc);
  if (t <= kEpsilon)
    return {};
  Hit hit;
  hit.t = t;
  hit.local = oc + ray.direction * t;
  hit.normal = hit.local * (1.0 / sphere.radius);
  return hit;
}

}  // namespace mtsam::data::scene
