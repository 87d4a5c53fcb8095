#pragma once

/// Umbrella header of the MTSAM model: SAM's modules, checkpoint loading, pre- and
/// post-processing, and the multi-task model built on tora.

#include <tora/tora.hpp>

#include <mtsam/checkpoint.hpp>
#include <mtsam/common.hpp>
#include <mtsam/hf_checkpoint.hpp>
#include <mtsam/image_encoder.hpp>
#include <mtsam/import.hpp>
#include <mtsam/mask_decoder.hpp>
#include <mtsam/model.hpp>
#include <mtsam/options.hpp>
#include <mtsam/positional_encoding.hpp>
#include <mtsam/presets.hpp>
#include <mtsam/processing.hpp>
#include <mtsam/prompt_encoder.hpp>
#include <mtsam/relative_position.hpp>
#include <mtsam/sam.hpp>
#include <mtsam/state_dict.hpp>
#include <mtsam/task.hpp>
#include <mtsam/torch_save.hpp>
#include <mtsam/trainable_io.hpp>
#include <mtsam/two_way_transformer.hpp>
