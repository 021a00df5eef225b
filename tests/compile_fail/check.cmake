# Compiles SOURCE (-DCXX -DSOURCE -DINCLUDE) and passes if the compiler refuses it with every
# message SOURCE lists on a `// expect: <text>` line.
execute_process(COMMAND ${CXX} -std=c++20 -fsyntax-only -I${INCLUDE} ${SOURCE}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
file(STRINGS ${SOURCE} expects REGEX "^// expect: ")
foreach(line IN LISTS expects)
  string(REGEX REPLACE "^// expect: " "" text "${line}")
  string(FIND "${out}${err}" "${text}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "missing diagnostic \"${text}\" in:\n${err}")
  endif()
endforeach()
message(STATUS "refused with every expected message")
