# One precompiled LibTorch header shared by every executable of the project.
include_guard(GLOBAL)

add_library(tora_pch OBJECT "${CMAKE_CURRENT_LIST_DIR}/pch.cpp")
target_link_libraries(tora_pch PUBLIC tora)
target_precompile_headers(tora_pch PUBLIC <torch/torch.h> <nlohmann/json.hpp> <filesystem>
                          <string> <vector>)

# tora_add_executable(<name> SOURCES ... [LIBS ...]): an executable that reuses the shared PCH.
function(tora_add_executable name)
  cmake_parse_arguments(arg "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE tora ${arg_LIBS})
  target_precompile_headers(${name} REUSE_FROM tora_pch)
  target_compile_options(${name} PRIVATE -Wall -Wextra)
endfunction()
