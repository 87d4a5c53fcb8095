# Fails when a C++ source of the project is not in clang-format's shape.
# Usage: cmake -DCLANG_FORMAT=<exe> -DSOURCE_DIR=<root> -P CheckFormat.cmake
file(GLOB_RECURSE sources
     "${SOURCE_DIR}/include/*.hpp" "${SOURCE_DIR}/tests/*.hpp" "${SOURCE_DIR}/tests/*.cpp"
     "${SOURCE_DIR}/tests/*.cu" "${SOURCE_DIR}/examples/*.hpp" "${SOURCE_DIR}/examples/*.cpp"
     "${SOURCE_DIR}/bench/*.hpp" "${SOURCE_DIR}/bench/*.cpp" "${SOURCE_DIR}/apps/*.cpp"
     "${SOURCE_DIR}/apps/*.hpp")
list(LENGTH sources count)
set(unformatted "")
foreach(source IN LISTS sources)
  execute_process(
    COMMAND "${CLANG_FORMAT}" --style=file --dry-run -Werror "${source}"
    RESULT_VARIABLE result
    OUTPUT_QUIET ERROR_QUIET)
  if(NOT result EQUAL 0)
    file(RELATIVE_PATH relative "${SOURCE_DIR}" "${source}")
    list(APPEND unformatted "${relative}")
  endif()
endforeach()
if(unformatted)
  list(JOIN unformatted "\n  " listing)
  message(FATAL_ERROR "expected every source in clang-format's shape, got these that are not "
                      "(run scripts/format.sh):\n  ${listing}")
endif()
message(STATUS "format: ${count} files checked, all in shape")
