# Installs the headers and a CMake package for find_package(tora) and find_package(mtsam).
include_guard(GLOBAL)

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY include/tora include/mtsam DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(TORA_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/tora")
set(MTSAM_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/mtsam")

install(TARGETS tora EXPORT toraTargets)
install(EXPORT toraTargets NAMESPACE tora:: DESTINATION ${TORA_CMAKE_DIR})
install(TARGETS mtsam mtsam_data EXPORT mtsamTargets)
install(EXPORT mtsamTargets NAMESPACE mtsam:: DESTINATION ${MTSAM_CMAKE_DIR})

# The LibTorch this tree was built with, as a hint for consumers that name no other.
set(TORA_BUILT_WITH_TORCH_DIR "${Torch_DIR}")

foreach(package tora mtsam)
  configure_package_config_file(
    "${CMAKE_CURRENT_LIST_DIR}/${package}Config.cmake.in"
    "${PROJECT_BINARY_DIR}/${package}Config.cmake"
    INSTALL_DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/${package}")
  write_basic_package_version_file(
    "${PROJECT_BINARY_DIR}/${package}ConfigVersion.cmake"
    VERSION ${PROJECT_VERSION}
    COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
  install(FILES "${PROJECT_BINARY_DIR}/${package}Config.cmake"
                "${PROJECT_BINARY_DIR}/${package}ConfigVersion.cmake"
          DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/${package}")
endforeach()
install(FILES "${CMAKE_CURRENT_LIST_DIR}/ToraTorchLinkPaths.cmake" DESTINATION ${TORA_CMAKE_DIR})
