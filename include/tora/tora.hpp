#pragma once

/// Umbrella header of the tora adapter library.

#include <tora/version.hpp>
