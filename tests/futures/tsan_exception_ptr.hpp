// Included once by each futures test program (it defines a function).
//
// A task's exception lives in an exception_ptr shared by the worker (which may drop the
// future's last reference) and the thread that caught it via result(). libstdc++ counts
// those references with atomics inside the uninstrumented libstdc++.so, so TSan cannot see
// that the catch handler ended before the worker destroyed the exception, and reports the
// destructor as a race. Not our bug: suppress reports whose stack is exception_ptr's release.
#pragma once

#if defined(__SANITIZE_THREAD__)
extern "C" const char* __tsan_default_suppressions() {
  return "race:std::__exception_ptr::exception_ptr::_M_release\n";
}
#endif
