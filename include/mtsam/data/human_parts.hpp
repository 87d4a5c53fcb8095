#pragma once

/// PASCAL-Part person annotations turned into the 7-class human parts target of PASCAL-Context.
///
/// `human_parts/{id}.mat` holds a struct `anno` whose field `objects` (1xN struct) has `class`,
/// `class_ind` (person = 15), `mask` and `parts` (1xM struct of `part_name` and `mask`, or
/// empty). Person parts are painted in file order, later parts over earlier ones, into groups
/// 1 head, 2 torso, 3 upper arms, 4 lower arms, 5 upper legs, 6 lower legs; 0 is background. An
/// image without any person part is all ignore (255).

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>

#include <mtsam/data/mat_io.hpp>

namespace mtsam::data {

/// Classes of the human parts target (background + 6 groups).
inline constexpr int64_t kHumanPartClasses = 7;
/// PASCAL VOC class index of a person in `anno.objects.class_ind`.
inline constexpr int64_t kPersonClassIndex = 15;
/// Ignore value of the PASCAL-Context segmentation targets.
inline constexpr int64_t kPascalIgnore = 255;

/// Group (1..6) of a PASCAL-Part person part name; throws for an unknown name.
inline int64_t human_part_group(const std::string& part_name) {
  static const std::map<std::string, int64_t> groups = {
      {"hair", 1},  {"head", 1},  {"lear", 1},   {"lebrow", 1}, {"leye", 1},  {"mouth", 1},
      {"nose", 1},  {"rear", 1},  {"rebrow", 1}, {"reye", 1},   {"neck", 2},  {"torso", 2},
      {"luarm", 3}, {"ruarm", 3}, {"lhand", 4},  {"llarm", 4},  {"rhand", 4}, {"rlarm", 4},
      {"luleg", 5}, {"ruleg", 5}, {"lfoot", 6},  {"llleg", 6},  {"rfoot", 6}, {"rlleg", 6}};
  const auto it = groups.find(part_name);
  if (it == groups.end()) {
    throw std::invalid_argument("unknown person part name '" + part_name +
                                "' (expected one of the 24 PASCAL-Part person parts)");
  }
  return it->second;
}

/// Reads `human_parts/{id}.mat` as int64 `[height, width]`: groups 0..6, or all 255 when the
/// file holds no person with parts. Masks of another size than `height x width` are an error.
inline torch::Tensor read_human_parts(const std::filesystem::path& path, int64_t height,
                                      int64_t width) {
  const std::string where = path.string();
  MatVar anno = read_mat_variable(path, "anno", "a PASCAL-Part struct 'anno'");
  matvar_t* objects = mat_field(anno.get(), "objects", 0, where + " anno");
  torch::Tensor target = torch::full({height, width}, kPascalIgnore, torch::kInt64);
  if (objects->class_type != MAT_C_STRUCT) {
    return target;
  }
  bool any_parts = false;
  const size_t count = mat_numel(objects);
  for (size_t i = 0; i < count; ++i) {
    const std::string obj_where = where + " anno.objects(" + std::to_string(i + 1) + ")";
    const torch::Tensor class_ind =
        mat_tensor(mat_field(objects, "class_ind", i, obj_where), obj_where + ".class_ind");
    if (class_ind.numel() != 1 || class_ind.item<double>() != double(kPersonClassIndex)) {
      continue;
    }
    matvar_t* parts = mat_field(objects, "parts", i, obj_where);
    if (parts->class_type != MAT_C_STRUCT || mat_numel(parts) == 0) {
      continue;
    }
    if (!any_parts) {
      target.fill_(0);
      any_parts = true;
    }
    const size_t part_count = mat_numel(parts);
    for (size_t p = 0; p < part_count; ++p) {
      const std::string part_where = obj_where + ".parts(" + std::to_string(p + 1) + ")";
      const std::string name =
          mat_string(mat_field(parts, "part_name", p, part_where), part_where + ".part_name");
      const torch::Tensor mask =
          mat_tensor(mat_field(parts, "mask", p, part_where), part_where + ".mask");
      if (mask.dim() != 2 || mask.size(0) != height || mask.size(1) != width) {
        throw std::runtime_error(part_where + ".mask: expected " + std::to_string(height) + "x" +
                                 std::to_string(width) + " like the image, got " +
                                 c10::str(mask.sizes()));
      }
      target.masked_fill_(mask.ne(0), human_part_group(name));
    }
  }
  return target;
}

}  // namespace mtsam::data
