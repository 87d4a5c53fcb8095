# mtsam::data: data set readers (stb for PNG/JPEG, libmatio for MATLAB files), losses, metrics.
include_guard(GLOBAL)

find_package(PkgConfig REQUIRED)
pkg_check_modules(TORA_MATIO REQUIRED IMPORTED_TARGET matio)
pkg_check_modules(TORA_STB REQUIRED IMPORTED_TARGET stb)

add_library(mtsam_data INTERFACE)
add_library(mtsam::data ALIAS mtsam_data)
target_link_libraries(mtsam_data INTERFACE mtsam PkgConfig::TORA_MATIO PkgConfig::TORA_STB)
set_target_properties(mtsam_data PROPERTIES EXPORT_NAME data)
