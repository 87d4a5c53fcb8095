# Installs the build tree into a scratch prefix, then configures, builds and runs the consumer
# project in tests/consumer against it, the way another project would use tora and mtsam.
set(prefix "${WORK_DIR}/prefix")
set(consumer_build "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "consumer test: ${what} failed (exit ${result})")
  endif()
endfunction()

run_step("install" "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}")
run_step("configure" "${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${consumer_build}"
         -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${prefix}" "-DTorch_DIR=${Torch_DIR}"
         "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}")
run_step("build" "${CMAKE_COMMAND}" --build "${consumer_build}")
run_step("run" "${consumer_build}/consumer")
