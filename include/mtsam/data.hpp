#pragma once

/// Umbrella header of the data layer: file formats, data sets, augmentation, the procedural
/// scenes, colour maps, losses and metrics. Link `mtsam::data`.

#include <mtsam/data/augment.hpp>
#include <mtsam/data/cityscapes.hpp>
#include <mtsam/data/colormap.hpp>
#include <mtsam/data/human_parts.hpp>
#include <mtsam/data/image_io.hpp>
#include <mtsam/data/mat_io.hpp>
#include <mtsam/data/npy.hpp>
#include <mtsam/data/npy_folder.hpp>
#include <mtsam/data/nyuv2.hpp>
#include <mtsam/data/pascal_context.hpp>
#include <mtsam/data/scene/geometry.hpp>
#include <mtsam/data/scene/layout.hpp>
#include <mtsam/data/scene/render.hpp>
#include <mtsam/data/scene/texture.hpp>
#include <mtsam/data/scene_dataset.hpp>
#include <mtsam/data/tasks.hpp>
#include <mtsam/losses/dense.hpp>
#include <mtsam/metrics/delta_b.hpp>
#include <mtsam/metrics/depth.hpp>
#include <mtsam/metrics/metric_value.hpp>
#include <mtsam/metrics/normals.hpp>
#include <mtsam/metrics/saliency.hpp>
#include <mtsam/metrics/segmentation.hpp>
#include <mtsam/metrics/task_meter.hpp>
