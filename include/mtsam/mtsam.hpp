#pragma once

/// Umbrella header of the MTSAM model.

#include <tora/tora.hpp>
