#pragma once

/// Every LibTorch-version-specific decision of tora and mtsam is made in this header.

#include <torch/version.h>

#define TORA_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||       \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// The oldest LibTorch the project is built and tested against. SAM's `state_dict()` files are
// read by mtsam's own archive reader (include/mtsam/torch_save.hpp), not by torch::pickle_load,
// which stops on their OrderedDict with "Expected GenericDict but got None" (2.12 included).
static_assert(TORA_TORCH_AT_LEAST(2, 6),
              "tora needs LibTorch 2.6 or newer; point CMake at one with -DTorch_DIR=...");
