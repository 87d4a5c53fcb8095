#pragma once

/// Ray casting of a scene into an image and exact per-pixel targets.
///
/// One ray per pixel centre finds the nearest surface; its class, depth and normal are the
/// targets. The colour is the surface's texture lit by an ambient term and one point light with
/// a hard shadow (a second ray), Lambert diffuse plus a highlight on shiny materials; windows
/// emit their colour. Exposure, a 2.2 gamma and a little per-pixel noise finish the image.
///
/// Targets: `semseg` int64 class ids (no ignored pixel); `depth` the z-distance along the
/// camera axis in metres; `normals` unit vectors in the camera frame (x right, y up, z towards
/// the viewer); `saliency` 1 on cabinets, tables, boxes and balls. Window pixels are glass to a
/// depth sensor: depth 0 and normals (0, 0, 0), invalid, as in NYUv2.

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <mtsam/data/scene/layout.hpp>
#include <mtsam/data/tasks.hpp>

namespace mtsam::data::scene {

namespace detail {

/// The nearest hit along `ray` among the objects, or the room behind them.
inline Hit trace(const Scene& scene, const Ray& ray) {
  Hit best = intersect_room(ray, scene.room);
  for (size_t i = 0; i < scene.objects.size(); ++i) {
    const Object& o = scene.objects[i];
    Hit h = o.is_sphere ? intersect_sphere(ray, o.shape_sphere) : intersect_box(ray, o.shape_box);
    if (h.t < best.t) {
      best = h;
      best.primitive = static_cast<int>(i);
    }
  }
  return best;
}

/// Whether an object blocks the segment from `from` (on a surface) to the light.
inline bool shadowed(const Scene& scene, const Vec3& from, const Vec3& to_light, double dist) {
  const Ray ray{from, to_light};
  for (const Object& o : scene.objects) {
    const Hit h =
        o.is_sphere ? intersect_sphere(ray, o.shape_sphere) : intersect_box(ray, o.shape_box);
    if (h.t < dist)
      return true;
  }
  return false;
}

}  // namespace detail

/// Renders `scene` at `height x width` (any size; the vertical field of view is kept).
inline TaskSample render_scene(const Scene& scene, int64_t height, int64_t width) {
  TORCH_CHECK(height > 0 && width > 0, "render_scene: size must be positive, got ", height, "x",
              width);
  torch::Tensor image = torch::empty({3, height, width}, torch::kFloat32);
  torch::Tensor label = torch::empty({height, width}, torch::kInt64);
  torch::Tensor depth = torch::empty({1, height, width}, torch::kFloat32);
  torch::Tensor normals = torch::empty({3, height, width}, torch::kFloat32);
  torch::Tensor saliency = torch::empty({1, height, width}, torch::kFloat32);
  float* img = image.data_ptr<float>();
  int64_t* lab = label.data_ptr<int64_t>();
  float* dep = depth.data_ptr<float>();
  float* nor = normals.data_ptr<float>();
  float* sal = saliency.data_ptr<float>();
  const int64_t plane = height * width;
  const Camera& cam = scene.camera;
  const double tan_y = cam.tan_half_fov;
  const double tan_x = tan_y * static_cast<double>(width) / static_cast<double>(height);

  at::parallel_for(0, height, 1, [&](int64_t row_begin, int64_t row_end) {
    for (int64_t i = row_begin; i < row_end; ++i) {
      for (int64_t j = 0; j < width; ++j) {
        const double sx = (2.0 * (static_cast<double>(j) + 0.5) / static_cast<double>(width) - 1.0);
        const double sy =
            (1.0 - 2.0 * (static_cast<double>(i) + 0.5) / static_cast<double>(height));
        const Vec3 dir = normalized(cam.forward + cam.right * (sx * tan_x) + cam.up * (sy * tan_y));
        const Hit hit = detail::trace(scene, Ray{cam.position, dir});
        const Vec3 point = cam.position + dir * hit.t;

        int cls = 0;
        const Material* material = nullptr;
        Vec3 local = hit.local;
        if (hit.primitive < 0) {
          cls = hit.face == 0 ? kFloor : (hit.face == 1 ? kCeiling : kWall);
          material = &scene.room_materials[static_cast<size_t>(hit.face)];
        } else {
          const Object& o = scene.objects[static_cast<size_t>(hit.primitive)];
          cls = o.cls;
          material = &o.material;
          local = local + o.texture_offset;
        }

        Vec3 albedo = shade_pattern(*material, local);
        Vec3 color;
        if (material->emissive) {
          color = albedo;
        } else {
          const Vec3 to_light = scene.light_position - point;
          const double dist = length(to_light);
          const Vec3 l = to_light * (1.0 / dist);
          const double ndl = std::max(0.0, dot(hit.normal, l));
          const bool dark = ndl > 0 && detail::shadowed(scene, point + hit.normal * 1e-4, l, dist);
          const double falloff = scene.light_power / (1.0 + dist * dist);
          const double diffuse = dark ? 0.0 : ndl * falloff;
          color = albedo * (Vec3{1, 1, 1} * scene.ambient + scene.light_color * diffuse);
          if (material->specular > 0 && !dark && ndl > 0) {
            const Vec3 half = normalized(l - dir);
            const double spec = std::pow(std::max(0.0, dot(hit.normal, half)), material->specular);
            color = color + scene.light_color * (0.4 * spec * falloff);
          }
        }
        const int64_t at = i * width + j;
        for (int c = 0; c < 3; ++c) {
          const double linear = std::clamp(color[c] * scene.exposure, 0.0, 1.0);
          const double noise = (lattice_hash(i, j, c, scene.noise_seed) - 0.5) * 0.03;
          img[c * plane + at] =
              static_cast<float>(std::clamp(std::pow(linear, 1.0 / 2.2) + noise, 0.0, 1.0));
        }
        lab[at] = cls;
        sal[at] = is_salient(cls) ? 1.0f : 0.0f;
        if (cls == kWindow) {
          dep[at] = 0.0f;
          nor[at] = nor[plane + at] = nor[2 * plane + at] = 0.0f;
        } else {
          dep[at] = static_cast<float>(hit.t * dot(dir, cam.forward));
          nor[at] = static_cast<float>(dot(hit.normal, cam.right));
          nor[plane + at] = static_cast<float>(dot(hit.normal, cam.up));
          nor[2 * plane + at] = static_cast<float>(-dot(hit.normal, cam.forward));
        }
      }
    }
  });

  TaskSample sample;
  sample.image = image;
  sample.targets.emplace(kSemseg, label);
  sample.targets.emplace(kDepth, depth);
  sample.targets.emplace(kNormals, normals);
  sample.targets.emplace(kSaliency, saliency);
  return sample;
}

}  // namespace mtsam::data::scene
