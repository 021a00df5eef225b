# Installs the built package into a scratch prefix, then builds and runs the consumer
# program twice: through find_package(concur) and through `pkg-config --cflags --libs concur`.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(LAST_OUT "${out}" PARENT_SCOPE)
endfunction()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

set(san_flags "")
if(SANITIZE)
  set(san_flags "-fsanitize=${SANITIZE}")
endif()

# 1. find_package(concur)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/cmake-build -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX}
    "-DCMAKE_CXX_FLAGS=${san_flags}" "-DCMAKE_EXE_LINKER_FLAGS=${san_flags}")
run(${CMAKE_COMMAND} --build ${WORK_DIR}/cmake-build)
run(${WORK_DIR}/cmake-build/consumer)
message(STATUS "find_package consumer: ${LAST_OUT}")
if(NOT LAST_OUT MATCHES "consumer ok")
  message(FATAL_ERROR "find_package consumer did not finish: ${LAST_OUT}")
endif()
run(${WORK_DIR}/cmake-build/defects)
message(STATUS "issue #9 defect rows: ${LAST_OUT}")
if(NOT LAST_OUT MATCHES "defects ok")
  message(FATAL_ERROR "a defect row of issue #9 failed: ${LAST_OUT}")
endif()

# 2. pkg-config
file(GLOB pcdirs ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
list(JOIN pcdirs ":" pcpath)
set(ENV{PKG_CONFIG_PATH} ${pcpath})
run(pkg-config --cflags --libs concur)
string(STRIP "${LAST_OUT}" pcflags)
separate_arguments(pcflags UNIX_COMMAND "${pcflags}")
separate_arguments(sanlist UNIX_COMMAND "${san_flags}")
run(${CXX} -std=c++20 ${sanlist} ${SOURCE_DIR}/main.cpp ${pcflags} -o ${WORK_DIR}/consumer-pc)
run(${WORK_DIR}/consumer-pc)
message(STATUS "pkg-config consumer: ${LAST_OUT}")
if(NOT LAST_OUT MATCHES "consumer ok")
  message(FATAL_ERROR "pkg-config consumer did not finish: ${LAST_OUT}")
endif()

# 3. concur::mpi, when it was built (-DMPIEXEC): find_package(concur COMPONENTS mpi) and
# pkg-config concur-mpi, each program run by mpirun over 2 ranks.
if(MPIEXEC)
  set(ENV{OMPI_ALLOW_RUN_AS_ROOT} 1)
  set(ENV{OMPI_ALLOW_RUN_AS_ROOT_CONFIRM} 1)
  set(ENV{OMPI_MCA_btl} self,vader)
  set(ENV{OMPI_MCA_btl_vader_single_copy_mechanism} none)
  set(ENV{ASAN_OPTIONS} detect_leaks=0)
  set(mpisrc ${SOURCE_DIR}/../mpi_consumer)
  run(${CMAKE_COMMAND} -S ${mpisrc} -B ${WORK_DIR}/mpi-build -G ${GENERATOR}
      -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX}
      "-DCMAKE_CXX_FLAGS=${san_flags}" "-DCMAKE_EXE_LINKER_FLAGS=${san_flags}")
  run(${CMAKE_COMMAND} --build ${WORK_DIR}/mpi-build)
  run(${MPIEXEC} --oversubscribe -np 2 ${WORK_DIR}/mpi-build/mpi_consumer)
  message(STATUS "find_package(concur COMPONENTS mpi) consumer: ${LAST_OUT}")
  if(NOT LAST_OUT MATCHES "mpi consumer ok")
    message(FATAL_ERROR "mpi consumer did not finish: ${LAST_OUT}")
  endif()
  run(pkg-config --cflags --libs concur-mpi)
  string(STRIP "${LAST_OUT}" pcflags)
  separate_arguments(pcflags UNIX_COMMAND "${pcflags}")
  run(${CXX} -std=c++20 ${sanlist} ${mpisrc}/main.cpp ${pcflags} -o ${WORK_DIR}/mpi-consumer-pc)
  run(${MPIEXEC} --oversubscribe -np 2 ${WORK_DIR}/mpi-consumer-pc)
  message(STATUS "pkg-config concur-mpi consumer: ${LAST_OUT}")
  if(NOT LAST_OUT MATCHES "mpi consumer ok")
    message(FATAL_ERROR "pkg-config mpi consumer did not finish: ${LAST_OUT}")
  endif()
endif()
