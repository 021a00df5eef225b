// concur/detail/deadline.hpp — the one deadline type behind every timed call.
//
// A Deadline is a point on the steady clock (CLOCK_MONOTONIC) or "forever". It is built
// once, at the top of a timed call, from the caller's timeout — any std::chrono duration
// (integral or floating Rep, any period) or any clock's time_point — and every conversion
// saturates: a timeout too large for the steady clock's nanoseconds (hours::max(),
// nanoseconds::max(), +inf, time_point<C, seconds>::max(), ...) is "forever", never an
// overflow (the arithmetic is done in 128 bits or long double, so it is UBSan-clean for
// every input). A negative timeout (or a past time_point) is a deadline that has already
// passed; whether a negative relative timeout is an error is the caller's Python policy
// (detail/timeouts.hpp). A NaN timeout is ValueError("Invalid value NaN (not a number)"),
// CPython's message for Lock.acquire and Thread.join.
//
// The waits take it in the form their syscall wants: an absolute CLOCK_MONOTONIC timespec
// (FUTEX_WAIT_BITSET) or nullptr for forever; a relative timespec for ppoll/epoll_pwait2 or
// nullptr; int milliseconds rounded up for poll/epoll_wait, -1 for forever.
// Thread-safety: a value type; pure functions except for reading the clocks.
#pragma once

#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <limits>
#include <ratio>
#include <type_traits>

#include "concur/errors.hpp"

namespace concur::detail {

using Clock = std::chrono::steady_clock;

inline constexpr const char* kNaNTimeout = "Invalid value NaN (not a number)";

// Deadline's arithmetic: 128-bit integers, so no product or difference overflows.
__extension__ typedef __int128 DeadlineWide;
inline constexpr std::int64_t kNsMax = std::numeric_limits<std::int64_t>::max();
inline constexpr std::int64_t kNsMin = std::numeric_limits<std::int64_t>::min();

constexpr std::int64_t clamp_ns(DeadlineWide v) noexcept {
  return v > kNsMax ? kNsMax : v < kNsMin ? kNsMin : static_cast<std::int64_t>(v);
}

// d in nanoseconds, rounded toward +infinity and clamped to int64 (kNsMax/kNsMin stand for
// "too large"/"too small"). ValueError for NaN.
template <class Rep, class Period>
std::int64_t ceil_ns(std::chrono::duration<Rep, Period> d) {
  if constexpr (std::chrono::treat_as_floating_point_v<Rep>) {
    const long double v = std::chrono::duration<long double, std::nano>(d).count();
    if (std::isnan(v)) throw ValueError(kNaNTimeout);
    // 2^63 is exact in long double; ceil(v) < 2^63 fits in int64.
    if (v >= static_cast<long double>(kNsMax)) return kNsMax;
    if (v <= static_cast<long double>(kNsMin)) return kNsMin;
    return static_cast<std::int64_t>(std::ceil(v));
  } else {
    using R = std::ratio_divide<Period, std::nano>;
    static_assert(R::num > 0 && R::den > 0);
    const DeadlineWide c = static_cast<DeadlineWide>(d.count());
    // |c| < 2^64 and R::num < 2^63: the product fits in 128 bits.
    const DeadlineWide scaled = c * static_cast<DeadlineWide>(R::num);
    const DeadlineWide den = static_cast<DeadlineWide>(R::den);
    DeadlineWide q = scaled / den;
    if (scaled % den > 0) ++q;
    return clamp_ns(q);
  }
}

class Deadline {
 public:
  // Already passed (an expired deadline: waits do not block).
  Deadline() noexcept : tp_(Clock::now()) {}
  // A steady-clock point; Clock::time_point::max() is forever.
  explicit Deadline(Clock::time_point tp) noexcept : tp_(tp) {}

  static Deadline forever() noexcept { return Deadline(Clock::time_point::max()); }

  // `timeout` from now; <= 0 is already passed, too large is forever. ValueError for NaN.
  template <class Rep, class Period>
  static Deadline after(std::chrono::duration<Rep, Period> timeout) {
    const std::int64_t ns = ceil_ns(timeout);
    const Clock::time_point now = Clock::now();
    if (ns <= 0) return Deadline(now);
    const std::int64_t since = ns_since_epoch(now);
    if (ns >= kNsMax - since) return forever();
    return Deadline(now + Clock::duration(ns));
  }

  // An absolute time on any clock. A steady-clock time is kept as it is; another clock's
  // time is turned into the time left on it, read once now (so later jumps of that clock do
  // not move the deadline, as CPython's waits do). The clock's time_point::max() (any
  // precision), or anything beyond the steady clock's range, is forever. ValueError for NaN.
  template <class C, class D>
  static Deadline at(std::chrono::time_point<C, D> t) {
    const std::int64_t since = ceil_ns(t.time_since_epoch());
    if (since == kNsMax) return forever();
    if constexpr (std::is_same_v<C, Clock>) {
      if (since == kNsMin) return Deadline(Clock::time_point::min());
      return Deadline(Clock::time_point(Clock::duration(since)));
    } else {
      const std::int64_t now = ceil_ns(C::now().time_since_epoch());
      const auto left = clamp_ns(static_cast<DeadlineWide>(since) - now);
      return after(std::chrono::nanoseconds(left));
    }
  }

  bool is_forever() const noexcept { return tp_ == Clock::time_point::max(); }
  bool expired() const noexcept { return !is_forever() && Clock::now() >= tp_; }
  // Time left: zero once passed, Clock::duration::max() for forever.
  Clock::duration remaining() const noexcept {
    if (is_forever()) return Clock::duration::max();
    const std::int64_t now = ns_since_epoch(Clock::now());
    const std::int64_t at = ns_since_epoch(tp_);
    return Clock::duration(at <= now ? 0 : clamp_ns(DeadlineWide{at} - now));
  }
  // The steady-clock point (time_point::max() for forever).
  Clock::time_point time_point() const noexcept { return tp_; }
  // For the futex-core waits that take `const Clock::time_point*`: nullptr for forever.
  const Clock::time_point* get() const noexcept { return is_forever() ? nullptr : &tp_; }

  // FUTEX_WAIT_BITSET's absolute CLOCK_MONOTONIC time in `ts`, or nullptr for forever.
  // A point at or before the clock's epoch is {0, 0} (already passed).
  const timespec* futex_timespec(timespec& ts) const noexcept {
    if (is_forever()) return nullptr;
    const std::int64_t ns = ns_since_epoch(tp_);
    ts = ns <= 0 ? timespec{0, 0} : split(ns);
    return &ts;
  }
  // ppoll/epoll_pwait2/sigtimedwait's relative time in `ts` ({0, 0} once passed), or
  // nullptr for forever.
  const timespec* relative_timespec(timespec& ts) const noexcept {
    if (is_forever()) return nullptr;
    ts = split(remaining().count());
    return &ts;
  }
  // poll/epoll_wait's timeout: the time left in milliseconds rounded up (so a wait never
  // returns before the deadline), capped at INT_MAX; -1 for forever.
  int poll_ms() const noexcept {
    if (is_forever()) return -1;
    const std::int64_t ns = remaining().count();
    const std::int64_t ms = ns / 1000000 + (ns % 1000000 != 0 ? 1 : 0);
    return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
  }

  friend bool operator==(const Deadline& a, const Deadline& b) noexcept { return a.tp_ == b.tp_; }
  friend auto operator<=>(const Deadline& a, const Deadline& b) noexcept { return a.tp_ <=> b.tp_; }

 private:
  static std::int64_t ns_since_epoch(Clock::time_point tp) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
  }
  static timespec split(std::int64_t ns) noexcept {
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(ns / 1000000000);
    ts.tv_nsec = static_cast<long>(ns % 1000000000);
    return ts;
  }
  Clock::time_point tp_;
};

// A duration as saturated nanoseconds, rounded up (nanoseconds::max() for "too long", so
// Deadline::after of it is forever). ValueError for NaN. For code that must keep a timeout
// until later (Timer measures its interval from the moment its thread runs).
template <class Rep, class Period>
std::chrono::nanoseconds saturating_ns(std::chrono::duration<Rep, Period> d) {
  return std::chrono::nanoseconds(ceil_ns(d));
}

// Earlier names, kept for code written against them: the steady-clock point of
// Deadline::after / Deadline::at (time_point::max() for forever).
template <class Rep, class Period>
Clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) {
  return Deadline::after(d).time_point();
}
template <class C, class D>
Clock::time_point to_steady_deadline(std::chrono::time_point<C, D> abs) {
  return Deadline::at(abs).time_point();
}

}  // namespace concur::detail
