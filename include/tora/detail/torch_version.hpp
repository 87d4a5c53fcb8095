#pragma once

/// Every LibTorch-version-specific decision of tora and mtsam is made in this header.

#include <torch/version.h>

#define TORA_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||       \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// From 2.6 on, torch::pickle_load reads the `state_dict()` files that SAM checkpoints are (an
// OrderedDict with a `_metadata` attribute); older versions stop with "Expected GenericDict".
static_assert(TORA_TORCH_AT_LEAST(2, 6),
              "tora needs LibTorch 2.6 or newer; point CMake at one with -DTorch_DIR=...");
