#pragma once

namespace tora {

/// The library's version, as `major.minor.patch`.
inline constexpr int version_major = 0;
inline constexpr int version_minor = 1;
inline constexpr int version_patch = 0;

}  // namespace tora
