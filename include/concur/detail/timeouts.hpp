// concur/detail/timeouts.hpp — Python's per-primitive timeout policies, on top of Deadline
// (detail/deadline.hpp), applied once at the top of each call.
//
// Python's rules differ per primitive and are kept: threading Lock/RLock.acquire reject a
// negative timeout (ValueError), Condition/Event/Semaphore/Barrier, queue, futures and
// multiprocessing's SemLock treat it as "do not block". A NaN timeout is ValueError for
// every primitive (CPython: Lock.acquire and Thread.join; its Event/Condition.wait return
// False at once and its Semaphore/Barrier/Queue spin forever on NaN — we do not copy that).
// Thread-safety: pure functions.
#pragma once

#include <chrono>

#include "concur/detail/deadline.hpp"
#include "concur/errors.hpp"

namespace concur::detail {

// What a negative relative timeout means.
enum class NegativeTimeout : bool {
  AsZero,  // do not block (Condition, Event, Semaphore, queue, multiprocessing's locks)
  Reject,  // ValueError (threading Lock/RLock.acquire)
};

// The deadline of a relative timeout under `policy`.
template <NegativeTimeout Policy = NegativeTimeout::AsZero, class Rep, class Period>
Deadline deadline_for(std::chrono::duration<Rep, Period> timeout) {
  if constexpr (Policy == NegativeTimeout::Reject) {
    const Deadline d = Deadline::after(timeout);  // ValueError for NaN first, as CPython
    if (timeout < timeout.zero()) throw ValueError("timeout value must be a non-negative number");
    return d;
  } else {
    return Deadline::after(timeout);
  }
}

// Deadline for Lock/RLock.acquire(timeout): ValueError for a negative timeout, as Python.
template <class Rep, class Period>
Clock::time_point checked_deadline(std::chrono::duration<Rep, Period> timeout) {
  return deadline_for<NegativeTimeout::Reject>(timeout).time_point();
}

// The message Python gives for acquire(blocking=False, timeout=...).
inline constexpr const char* kNonBlockingTimeout =
    "can't specify a timeout for a non-blocking call";

}  // namespace concur::detail
