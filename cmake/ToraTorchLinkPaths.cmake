# PyPI's torch finds its CUDA libraries (cuDNN, NCCL, cuBLAS, ...) in site-packages/nvidia/*/lib
# through its own RPATH. A CUDA toolkit on the system can hold older copies of the same
# libraries, which the linker then prefers; point it at torch's own copies instead.
include_guard(GLOBAL)

function(tora_prefer_torch_cuda_libraries)
  if(NOT TARGET torch OR NOT DEFINED TORCH_INSTALL_PREFIX)
    return()
  endif()
  file(GLOB lib_dirs LIST_DIRECTORIES true "${TORCH_INSTALL_PREFIX}/../nvidia/*/lib")
  if(lib_dirs)
    list(JOIN lib_dirs ":" joined)
    set_property(TARGET torch APPEND PROPERTY INTERFACE_LINK_OPTIONS
                                              "LINKER:-rpath-link,${joined}")
  endif()
endfunction()
