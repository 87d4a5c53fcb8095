# Finds LibTorch. Order: a Torch_DIR or CMAKE_PREFIX_PATH the user gave (the official LibTorch
# download, a CUDA build of their choice), then the project's virtual environment (.venv, made
# by scripts/install-deps.sh), then whatever `python3` imports torch.
include_guard(GLOBAL)

function(tora_python_torch_prefix python out_var)
  execute_process(
    COMMAND "${python}" -c "import torch.utils; print(torch.utils.cmake_prefix_path, end='')"
    OUTPUT_VARIABLE prefix
    ERROR_QUIET
    RESULT_VARIABLE result)
  if(result EQUAL 0 AND EXISTS "${prefix}")
    set(${out_var} "${prefix}" PARENT_SCOPE)
  else()
    set(${out_var} "" PARENT_SCOPE)
  endif()
endfunction()

# The Pythons worth asking, in order: the project's .venv, then `python3` on the PATH.
function(tora_candidate_pythons out_var)
  set(pythons "${PROJECT_SOURCE_DIR}/.venv/bin/python3")
  find_program(TORA_SYSTEM_PYTHON3 python3)
  if(TORA_SYSTEM_PYTHON3)
    list(APPEND pythons "${TORA_SYSTEM_PYTHON3}")
  endif()
  set(${out_var} "${pythons}" PARENT_SCOPE)
endfunction()

macro(tora_find_libtorch)
  # A CUDA LibTorch probes the local GPUs for its architecture list unless given one; there may
  # be no GPU at build time.
  if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
    set(TORCH_CUDA_ARCH_LIST "8.0;9.0" CACHE STRING "CUDA architectures for LibTorch's flags")
  endif()
  find_package(Torch QUIET CONFIG)
  if(NOT Torch_FOUND)
    tora_candidate_pythons(_tora_pythons)
    foreach(_python IN LISTS _tora_pythons)
      if(EXISTS "${_python}")
        tora_python_torch_prefix("${_python}" _tora_torch_prefix)
        if(_tora_torch_prefix)
          list(APPEND CMAKE_PREFIX_PATH "${_tora_torch_prefix}")
          break()
        endif()
      endif()
    endforeach()
    find_package(Torch CONFIG)
  endif()
  if(NOT Torch_FOUND)
    message(
      FATAL_ERROR
        "LibTorch was not found. Expected one of: -DTorch_DIR=<libtorch>/share/cmake/Torch, "
        "a LibTorch prefix in CMAKE_PREFIX_PATH, or the project's .venv with PyPI's torch "
        "(run scripts/install-deps.sh).")
  endif()
  include(ToraTorchLinkPaths)
  tora_prefer_torch_cuda_libraries()
  message(STATUS "tora: LibTorch ${Torch_VERSION} from ${Torch_DIR}")
endmacro()
