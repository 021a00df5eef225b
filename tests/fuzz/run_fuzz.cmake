# Runs one libFuzzer target for a bounded number of inputs (ctest -R fuzz).
#   -DFUZZER=<binary> -DCORPUS=<committed seeds> -DWORK=<scratch dir> -DRUNS=<n>
# The seed is fixed so a failure reproduces; new inputs and crash artifacts go to WORK.
# Allocations over 64 MiB count as failures: no input of at most 4 KiB justifies one.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus)
execute_process(
  COMMAND ${FUZZER} -runs=${RUNS} -seed=1 -max_len=4096 -max_total_time=60
          -malloc_limit_mb=64 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
          -artifact_prefix=${WORK}/ ${WORK}/corpus ${CORPUS}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (exit ${rc}); the input is in ${WORK}/")
endif()
