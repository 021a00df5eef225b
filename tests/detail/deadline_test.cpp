// Deadline (detail/deadline.hpp): saturating conversions of every duration rep and period
// and of every clock's time_point, NaN rejection, and the forms the syscalls take.
// Run under the dev preset (UBSan) to check that no conversion overflows.
#include "concur/detail/deadline.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>
#include <limits>
#include <ratio>

#include "concur/detail/futex.hpp"
#include "concur/detail/timeouts.hpp"
#include "concur/errors.hpp"

namespace {
using namespace std::chrono_literals;
using concur::ValueError;
using concur::detail::Clock;
using concur::detail::Deadline;
using std::chrono::duration;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// A clock of its own (seconds precision, epoch = steady_clock's), for custom time_points.
struct CoarseClock {
  using rep = std::int32_t;
  using period = std::ratio<1>;
  using duration = std::chrono::duration<rep, period>;
  using time_point = std::chrono::time_point<CoarseClock>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept {
    return time_point(std::chrono::floor<duration>(Clock::now().time_since_epoch()));
  }
};

template <class D>
void expect_forever(D d) {
  SCOPED_TRACE(testing::Message() << "count " << d.count());
  const Deadline dl = Deadline::after(d);
  EXPECT_TRUE(dl.is_forever());
  EXPECT_FALSE(dl.expired());
  EXPECT_EQ(dl.get(), nullptr);
  EXPECT_EQ(dl.remaining(), Clock::duration::max());
  EXPECT_EQ(dl.poll_ms(), -1);
  timespec ts{};
  EXPECT_EQ(dl.futex_timespec(ts), nullptr);
  EXPECT_EQ(dl.relative_timespec(ts), nullptr);
}

template <class D>
void expect_passed(D d) {
  SCOPED_TRACE(testing::Message() << "count " << d.count());
  const Deadline dl = Deadline::after(d);
  EXPECT_FALSE(dl.is_forever());
  EXPECT_TRUE(dl.expired());
  EXPECT_NE(dl.get(), nullptr);
  EXPECT_EQ(dl.remaining(), Clock::duration::zero());
  EXPECT_EQ(dl.poll_ms(), 0);
  timespec ts{1, 1};
  ASSERT_NE(dl.relative_timespec(ts), nullptr);
  EXPECT_EQ(ts.tv_sec, 0);
  EXPECT_EQ(ts.tv_nsec, 0);
}

template <class Rep, class Period>
void extremes_of() {
  using D = duration<Rep, Period>;
  // max() beyond the steady clock's 292 years is forever; a smaller one is kept exactly.
  if (duration<long double, std::nano>(D::max()).count() >= 9.0e18L) {
    expect_forever(D::max());
  } else {
    const Deadline dl = Deadline::after(D::max());
    EXPECT_FALSE(dl.is_forever());
    EXPECT_FALSE(dl.expired());
    EXPECT_LE(dl.remaining(), std::chrono::ceil<std::chrono::nanoseconds>(D::max()));
    EXPECT_GT(dl.remaining(), std::chrono::ceil<std::chrono::nanoseconds>(D::max()) - 10s);
  }
  if constexpr (std::numeric_limits<Rep>::is_signed) {
    expect_passed(D::min());
    expect_passed(-D::max());
    expect_passed(D(-1));
  }
  expect_passed(D::zero());
}

TEST(Deadline, MaxOfEveryIntegralRepAndPeriodIsForever) {
  extremes_of<std::int64_t, std::nano>();
  extremes_of<std::int64_t, std::micro>();
  extremes_of<std::int64_t, std::milli>();
  extremes_of<std::int64_t, std::ratio<1>>();
  extremes_of<std::int64_t, std::ratio<60>>();
  extremes_of<std::int64_t, std::ratio<3600>>();
  extremes_of<std::int64_t, std::ratio<86400 * 365>>();
  extremes_of<std::int32_t, std::ratio<3600>>();
  extremes_of<std::int32_t, std::milli>();
  extremes_of<std::uint64_t, std::ratio<1>>();
  extremes_of<std::uint32_t, std::nano>();
  extremes_of<std::int16_t, std::ratio<2, 3>>();
  extremes_of<std::int64_t, std::pico>();  // finer than the clock
  extremes_of<std::int64_t, std::atto>();
  extremes_of<std::int64_t, std::ratio<7, 1000>>();
  expect_forever(std::chrono::hours::max());
  expect_forever(std::chrono::nanoseconds::max());
}

TEST(Deadline, FloatingRepsSaturate) {
  extremes_of<double, std::ratio<1>>();
  extremes_of<float, std::milli>();
  extremes_of<long double, std::ratio<3600>>();
  expect_forever(duration<double>(kInf));
  expect_forever(duration<float>(std::numeric_limits<float>::infinity()));
  expect_forever(duration<double>(1e300));
  expect_forever(duration<double>(9.3e9));  // just past 2^63 ns
  expect_passed(duration<double>(-kInf));
  expect_passed(duration<double>(-1e300));
  expect_passed(duration<double>(-0.0));
  expect_passed(duration<double>(std::numeric_limits<double>::denorm_min() * -1));
}

TEST(Deadline, NaNIsValueError) {
  EXPECT_THROW(Deadline::after(duration<double>(kNaN)), ValueError);
  EXPECT_THROW(
      Deadline::after(duration<float, std::milli>(std::numeric_limits<float>::quiet_NaN())),
      ValueError);
  EXPECT_THROW(Deadline::after(duration<long double, std::ratio<60>>(kNaN)), ValueError);
  using FTp = std::chrono::time_point<std::chrono::system_clock, duration<double>>;
  EXPECT_THROW(Deadline::at(FTp(duration<double>(kNaN))), ValueError);
  try {
    (void)Deadline::after(duration<double>(kNaN));
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "Invalid value NaN (not a number)");
  }
}

TEST(Deadline, OrdinaryTimeoutsRoundUpNotDown) {
  const auto before = Clock::now();
  const Deadline d = Deadline::after(duration<double>(0.25));
  const auto after = Clock::now();
  EXPECT_GE(d.time_point(), before + 250ms);
  EXPECT_LE(d.time_point(), after + 250ms);
  EXPECT_FALSE(d.expired());
  EXPECT_LE(d.remaining(), 250ms);
  EXPECT_GT(d.remaining(), 0ns);
  // A positive timeout below the clock's resolution still waits (rounded up to 1 ns).
  const auto t0 = Clock::now();
  const Deadline tiny = Deadline::after(duration<std::int64_t, std::pico>(1));
  EXPECT_GT(tiny.time_point(), t0);
  EXPECT_GT(Deadline::after(duration<double, std::nano>(0.001)).time_point(), t0);
}

TEST(Deadline, PollMillisecondsRoundUpAndCap) {
  EXPECT_EQ(Deadline::forever().poll_ms(), -1);
  const int ms = Deadline::after(1500us).poll_ms();
  EXPECT_GE(ms, 1);
  EXPECT_LE(ms, 2);
  EXPECT_EQ(Deadline::after(1ns).poll_ms() <= 1, true);
  // Far but finite: capped at INT_MAX ms (24.8 days), never negative.
  EXPECT_EQ(Deadline::after(std::chrono::hours(24 * 365 * 50)).poll_ms(), INT_MAX);
  EXPECT_EQ(Deadline::after(-1s).poll_ms(), 0);
}

TEST(Deadline, TimespecForms) {
  timespec ts{};
  const Deadline d = Deadline::after(2500ms);
  const timespec* abs = d.futex_timespec(ts);
  ASSERT_EQ(abs, &ts);
  timespec mono{};
  ASSERT_EQ(clock_gettime(CLOCK_MONOTONIC, &mono), 0);
  const long long abs_ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;
  const long long mono_ns = mono.tv_sec * 1000000000LL + mono.tv_nsec;
  EXPECT_GT(abs_ns, mono_ns);
  EXPECT_LE(abs_ns, mono_ns + 2500000000LL);
  EXPECT_GE(ts.tv_nsec, 0);
  EXPECT_LT(ts.tv_nsec, 1000000000L);
  timespec rel{};
  ASSERT_EQ(d.relative_timespec(rel), &rel);
  EXPECT_LE(rel.tv_sec, 2);
  EXPECT_GE(rel.tv_sec, 0);
  EXPECT_LT(rel.tv_nsec, 1000000000L);
  // A steady point before the epoch becomes {0, 0}, never a negative timespec.
  const Deadline past = Deadline::at(Clock::time_point::min());
  ASSERT_EQ(past.futex_timespec(ts), &ts);
  EXPECT_EQ(ts.tv_sec, 0);
  EXPECT_EQ(ts.tv_nsec, 0);
  EXPECT_TRUE(past.expired());
  EXPECT_EQ(past.remaining(), 0ns);
}

template <class TP>
void expect_at_forever(TP t) {
  const Deadline d = Deadline::at(t);
  EXPECT_TRUE(d.is_forever());
  EXPECT_EQ(d.get(), nullptr);
}
template <class TP>
void expect_at_passed(TP t) {
  const Deadline d = Deadline::at(t);
  EXPECT_FALSE(d.is_forever());
  EXPECT_TRUE(d.expired());
  EXPECT_EQ(d.remaining(), 0ns);
}

TEST(Deadline, TimePointsOfEveryClockAndPrecision) {
  using std::chrono::system_clock;
  using std::chrono::time_point;
  expect_at_forever(Clock::time_point::max());
  expect_at_forever(time_point<Clock, std::chrono::seconds>::max());
  expect_at_forever(time_point<Clock, std::chrono::hours>::max());
  expect_at_forever(time_point<Clock, duration<double>>::max());
  expect_at_forever(time_point<Clock, duration<double>>(duration<double>(kInf)));
  expect_at_forever(system_clock::time_point::max());
  expect_at_forever(time_point<system_clock, std::chrono::seconds>::max());
  expect_at_forever(time_point<system_clock, std::chrono::minutes>::max());
  expect_at_forever(time_point<system_clock, duration<float>>::max());
  // int32 seconds: 68 years after the steady epoch, far but not beyond the clock.
  EXPECT_GT(Deadline::at(CoarseClock::time_point::max()).remaining(),
            std::chrono::hours(24 * 365 * 60));

  expect_at_passed(Clock::time_point::min());
  expect_at_passed(time_point<Clock, std::chrono::seconds>::min());
  expect_at_passed(time_point<Clock, std::chrono::hours>::min());
  expect_at_passed(system_clock::time_point::min());
  expect_at_passed(time_point<system_clock, std::chrono::seconds>::min());
  expect_at_passed(time_point<system_clock, duration<double>>(duration<double>(-kInf)));
  expect_at_passed(CoarseClock::time_point::min());
  expect_at_passed(system_clock::now() - 1s);
  expect_at_passed(Clock::now());

  // Ordinary points of other clocks become the time left on them.
  const Deadline s = Deadline::at(system_clock::now() + 3s);
  EXPECT_FALSE(s.is_forever());
  EXPECT_GT(s.remaining(), 2s);
  EXPECT_LE(s.remaining(), 3s);
  const Deadline c = Deadline::at(CoarseClock::now() + std::chrono::duration<std::int32_t>(5));
  EXPECT_GT(c.remaining(), 3s);
  EXPECT_LE(c.remaining(), 6s);
  const auto steady = Clock::now() + 1h;
  EXPECT_EQ(Deadline::at(steady).time_point(), steady);
  EXPECT_EQ(Deadline::at(std::chrono::ceil<std::chrono::seconds>(steady)).time_point(),
            std::chrono::ceil<std::chrono::seconds>(steady));
}

TEST(Deadline, ForeverAndOrdering) {
  const Deadline f = Deadline::forever();
  EXPECT_TRUE(f.is_forever());
  EXPECT_EQ(f.time_point(), Clock::time_point::max());
  EXPECT_EQ(Deadline(Clock::time_point::max()), f);
  EXPECT_LT(Deadline::after(1s), f);
  EXPECT_LT(Deadline::after(-1s), Deadline::after(1s));
  EXPECT_FALSE(Deadline::after(1h).expired());
  EXPECT_EQ(concur::detail::saturating_ns(std::chrono::hours::max()),
            std::chrono::nanoseconds::max());
  EXPECT_EQ(concur::detail::saturating_ns(std::chrono::hours::min()),
            std::chrono::nanoseconds::min());
  EXPECT_EQ(concur::detail::saturating_ns(duration<double>(1.5e-9)), 2ns);
  EXPECT_THROW(concur::detail::saturating_ns(duration<double>(kNaN)), ValueError);
}

TEST(Deadline, FutexWaitHonoursForeverAndPassed) {
  std::atomic<std::uint32_t> word{0};
  using concur::detail::Scope;
  // Passed: returns false at once (no sleep).
  const Deadline past = Deadline::after(-1h);
  EXPECT_FALSE(concur::detail::futex_wait(&word, 0, Scope::Private, past.get()));
  const Deadline min = Deadline::at(Clock::time_point::min());
  EXPECT_FALSE(concur::detail::futex_wait(&word, 0, Scope::Private, min.get()));
  // A changed value returns true at once even with a forever deadline (nothing to wait for).
  const Clock::time_point max = Clock::time_point::max();
  EXPECT_TRUE(concur::detail::futex_wait(&word, 1, Scope::Private, &max));
}

TEST(Timeouts, PoliciesOnTopOfDeadline) {
  using concur::detail::deadline_for;
  using concur::detail::NegativeTimeout;
  EXPECT_THROW(deadline_for<NegativeTimeout::Reject>(-1s), ValueError);
  EXPECT_THROW(deadline_for<NegativeTimeout::Reject>(std::chrono::hours::min()), ValueError);
  EXPECT_THROW(deadline_for<NegativeTimeout::Reject>(duration<double>(-kInf)), ValueError);
  EXPECT_THROW(deadline_for<NegativeTimeout::Reject>(duration<double>(kNaN)), ValueError);
  EXPECT_THROW(deadline_for<NegativeTimeout::AsZero>(duration<double>(kNaN)), ValueError);
  EXPECT_TRUE(deadline_for<NegativeTimeout::AsZero>(-1s).expired());
  EXPECT_TRUE(deadline_for<NegativeTimeout::AsZero>(std::chrono::hours::min()).expired());
  EXPECT_TRUE(deadline_for<NegativeTimeout::Reject>(0s).expired());
  EXPECT_TRUE(deadline_for<NegativeTimeout::Reject>(std::chrono::hours::max()).is_forever());
  EXPECT_TRUE(deadline_for<NegativeTimeout::AsZero>(duration<double>(kInf)).is_forever());
}

}  // namespace
