// concur/detail/timeouts.hpp — turning the timeouts of the public synchronization API into
// steady-clock deadlines, once, at the top of each call.
//
// Python's rules differ per primitive and are kept: Lock/RLock.acquire reject a negative
// timeout (ValueError), Condition/Event/Semaphore/Barrier treat it as "do not block".
// Thread-safety: pure functions.
#pragma once

#include <chrono>

#include "concur/detail/futex.hpp"
#include "concur/errors.hpp"

namespace concur::detail {

// Deadline for Lock/RLock.acquire(timeout): ValueError for a negative timeout, as Python.
template <class Rep, class Period>
Clock::time_point checked_deadline(std::chrono::duration<Rep, Period> timeout) {
  if (timeout < timeout.zero()) throw ValueError("timeout value must be a non-negative number");
  return deadline_after(timeout);
}

// The steady-clock deadline matching an absolute time on any clock (the remaining time is
// read once, so system-clock jumps after the call do not move it).
template <class C, class D>
Clock::time_point to_steady_deadline(std::chrono::time_point<C, D> abs) noexcept {
  if constexpr (std::is_same_v<C, Clock>) {
    return std::chrono::ceil<Clock::duration>(abs);
  } else {
    return deadline_after(abs - C::now());
  }
}

// The message Python gives for acquire(blocking=False, timeout=...).
inline constexpr const char* kNonBlockingTimeout = "can't specify a timeout for a non-blocking call";

}  // namespace concur::detail
