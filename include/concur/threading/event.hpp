// concur/threading/event.hpp — threading::Event (Python's threading.Event).
//
// A manual-reset flag: set() wakes every waiter, wait() returns at once while the flag is
// set, clear() resets it. wait(timeout) returns the flag (false only on timeout).
// Cost: is_set() is one load; set() issues FUTEX_WAKE only when a thread sleeps.
// Lifetime: destroy only when nobody waits. Not copyable or movable.
// Thread-safety: all members from any thread. Memory ordering: what a thread did before
// set() is visible to every thread whose wait()/is_set() returned true because of it.
#pragma once

#include <chrono>

#include "concur/detail/futex.hpp"
#include "concur/detail/timeouts.hpp"

namespace concur::threading {

class Event {
 public:
  Event() noexcept = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  // Whether the flag is set. Never blocks.
  bool is_set() const noexcept { return ev_.is_set(); }
  // Sets the flag and wakes all waiters.
  void set() noexcept { ev_.set(); }
  // Resets the flag; later wait()s block until the next set().
  void clear() noexcept { ev_.clear(); }
  // Blocks until the flag is set; returns true.
  bool wait() noexcept { return ev_.wait(nullptr); }
  // Blocks at most `timeout` (<= 0: do not block; hours::max(): forever); returns the flag.
  // ValueError for NaN (CPython returns False at once).
  template <class Rep, class Period>
  [[nodiscard]] bool wait(std::chrono::duration<Rep, Period> timeout) {
    return ev_.wait(detail::deadline_for(timeout).get());
  }
  // Like wait(timeout) with an absolute time on any clock.
  template <class C, class D>
  [[nodiscard]] bool wait_until(std::chrono::time_point<C, D> t) {
    return ev_.wait(detail::Deadline::at(t).get());
  }

 private:
  detail::BasicEvent<detail::Scope::Private> ev_;
};

}  // namespace concur::threading
