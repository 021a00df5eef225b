// concur::queue timeouts and exception safety: hours::max()/nanoseconds::max()/inf block
// "forever" (until another thread's put/get/task_done releases them), NaN and negative
// timeouts are ValueError; an item whose move throws inside get stays queued and the
// count stays exact (regression: the item was lost and qsize() left one too high).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "../helpers/forever.hpp"
#include "concur/errors.hpp"
#include "concur/queue.hpp"

namespace {
using namespace std::chrono_literals;
namespace q = concur::queue;
using concur::ValueError;
using concur_test::expect_blocks_until_released;
using concur_test::kInf;
using concur_test::kNaNSeconds;
using std::chrono::hours;

template <class Q>
void blocks_forever() {
  Q queue(1);
  expect_blocks_until_released([&] { return queue.get(hours::max()) == 1; }, [&] { queue.put(1); });
  expect_blocks_until_released([&] { return queue.try_get(std::chrono::nanoseconds::max()) == 2; },
                               [&] { queue.put(2); });
  queue.put(3);
  expect_blocks_until_released(
      [&] {
        queue.put(4, hours::max());
        return true;
      },
      [&] { EXPECT_EQ(queue.get(), 3); });
  expect_blocks_until_released(
      [&] { return queue.try_put(5, std::chrono::duration<double>(kInf)); },
      [&] { EXPECT_EQ(queue.get(), 4); });
  EXPECT_EQ(queue.get(), 5);
  for (int i = 0; i < 5; ++i) queue.task_done();
  queue.put(6);
  expect_blocks_until_released([&] { return queue.join(hours::max()); },
                               [&] {
                                 (void)queue.get();
                                 queue.task_done();
                               });
}

TEST(QueueTimeouts, MaxTimeoutsBlockUntilReleased) {
  blocks_forever<q::Queue<int>>();
  blocks_forever<q::LifoQueue<int>>();
  blocks_forever<q::PriorityQueue<int>>();
  q::SimpleQueue<int> s;
  expect_blocks_until_released([&] { return s.get(hours::max()) == 7; }, [&] { s.put(7); });
  expect_blocks_until_released([&] { return s.try_get(hours::max()) == 8; }, [&] { s.put(8); });
}

TEST(QueueTimeouts, NaNAndNegativeAreValueError) {
  q::Queue<int> queue(1);
  EXPECT_THROW((void)queue.get(kNaNSeconds), ValueError);
  EXPECT_THROW((void)queue.try_get(kNaNSeconds), ValueError);
  EXPECT_THROW(queue.put(1, kNaNSeconds), ValueError);
  EXPECT_THROW((void)queue.try_put(1, kNaNSeconds), ValueError);
  EXPECT_THROW((void)queue.join(kNaNSeconds), ValueError);
  EXPECT_THROW((void)queue.get(hours::min()), ValueError);
  EXPECT_THROW(queue.put(1, std::chrono::duration<double>(-kInf)), ValueError);
  EXPECT_EQ(queue.qsize(), 0u);  // nothing was put
  q::SimpleQueue<int> s;
  EXPECT_THROW((void)s.get(kNaNSeconds), ValueError);
  EXPECT_THROW((void)s.try_get(kNaNSeconds), ValueError);
}

// An item whose move constructor throws on the n-th move after arm(n).
struct Fragile {
  static inline int countdown = 0;  // 0: disarmed
  static void arm(int n) { countdown = n; }
  int v = 0;
  explicit Fragile(int x) : v(x) {}
  Fragile(const Fragile&) = delete;
  Fragile& operator=(const Fragile&) = delete;
  Fragile(Fragile&& o) : v(o.v) {
    if (countdown > 0 && --countdown == 0) throw std::runtime_error("move failed");
  }
  Fragile& operator=(Fragile&& o) {
    if (countdown > 0 && --countdown == 0) throw std::runtime_error("move failed");
    v = o.v;
    return *this;
  }
  bool operator<(const Fragile& o) const { return v < o.v; }
};

// Whatever move inside try_get throws, the item is either delivered or still queued with
// the count exact — never lost.
template <class Q>
void move_throw_loses_nothing() {
  for (int n = 1; n <= 3; ++n) {
    SCOPED_TRACE(testing::Message() << "throw on move " << n);
    Q queue;
    queue.put(Fragile(10 + n));
    Fragile::arm(n);
    int got = -1;
    bool threw = false;
    try {
      const std::optional<Fragile> r = queue.try_get();  // initialized in place: no move here
      if (r) got = r->v;
    } catch (const std::runtime_error&) {
      threw = true;
    }
    Fragile::arm(0);
    if (threw) {
      EXPECT_EQ(queue.qsize(), 1u) << "the item was lost or the count is wrong";
      const auto again = queue.try_get();
      ASSERT_TRUE(again.has_value());
      EXPECT_EQ(again->v, 10 + n);
    } else {
      EXPECT_EQ(got, 10 + n);
    }
    EXPECT_EQ(queue.qsize(), 0u);
    EXPECT_TRUE(queue.empty());
    // The queue still works: a blocking get on an empty queue times out, not returns junk.
    EXPECT_FALSE(queue.try_get(1ms).has_value());
  }
  // get(): the move out of the queue throwing leaves the item queued.
  Q queue;
  queue.put(Fragile(99));
  Fragile::arm(1);
  EXPECT_THROW((void)queue.get(), std::runtime_error);
  Fragile::arm(0);
  EXPECT_EQ(queue.qsize(), 1u);
  EXPECT_EQ(queue.get().v, 99);
}

TEST(QueueTimeouts, ItemWhoseMoveThrowsInGetStaysQueued) {
  move_throw_loses_nothing<q::Queue<Fragile>>();
  move_throw_loses_nothing<q::LifoQueue<Fragile>>();
  move_throw_loses_nothing<q::SimpleQueue<Fragile>>();
}

TEST(QueueTimeouts, PriorityItemWhoseMoveThrowsInGetStaysQueued) {
  q::PriorityQueue<Fragile> queue;
  for (int x : {5, 1, 3}) queue.put(Fragile(x));
  Fragile::arm(1);
  EXPECT_ANY_THROW((void)queue.try_get());
  Fragile::arm(0);
  EXPECT_EQ(queue.qsize(), 3u);
  std::vector<int> out;
  while (auto x = queue.try_get()) out.push_back(x->v);
  EXPECT_EQ(out, (std::vector<int>{1, 3, 5}));
}

// Every move get()/get_nowait()/get(timeout) makes may throw: the item is then still queued
// (at the head), qsize() and unfinished_tasks() exact, join() still works (regression: the
// move into get()'s return value ran after the item had left the queue, so the item was
// lost and unfinished_tasks() stayed one too high: join() never returned).
template <class Q>
void every_get_move_may_throw() {
  for (int form = 0; form < 3; ++form) {
    for (int n = 1; n <= 4; ++n) {
      SCOPED_TRACE(testing::Message() << "form " << form << ", throw on move " << n);
      Q queue;
      queue.put(Fragile(10 + n));
      Fragile::arm(n);
      int got = -1;
      bool threw = false;
      try {
        Fragile r = form == 0 ? queue.get() : form == 1 ? queue.get_nowait() : queue.get(1s);
        got = r.v;
      } catch (const std::runtime_error&) {
        threw = true;
      }
      Fragile::arm(0);
      if (threw) {
        ASSERT_EQ(queue.qsize(), 1u) << "the item was lost";
        EXPECT_EQ(queue.get_nowait().v, 10 + n);
      } else {
        EXPECT_EQ(got, 10 + n);
      }
      EXPECT_EQ(queue.qsize(), 0u);
      if constexpr (requires { queue.unfinished_tasks(); }) {
        EXPECT_EQ(queue.unfinished_tasks(), 1u);
        queue.task_done();
        EXPECT_TRUE(queue.join(1s));
      }
    }
  }
}

TEST(QueueTimeouts, EveryMoveOfGetMayThrowNothingLost) {
  every_get_move_may_throw<q::Queue<Fragile>>();
  every_get_move_may_throw<q::LifoQueue<Fragile>>();
  every_get_move_may_throw<q::PriorityQueue<Fragile>>();
  every_get_move_may_throw<q::SimpleQueue<Fragile>>();
}

// put: a move into the queue that throws leaves the queue as it was (nothing stored,
// counts unchanged) and the caller's item intact.
template <class Q>
void every_put_move_may_throw() {
  for (int n = 1; n <= 3; ++n) {
    SCOPED_TRACE(testing::Message() << "throw on move " << n);
    Q queue;
    queue.put(Fragile(1));
    Fragile item(7);
    Fragile::arm(n);
    bool threw = false;
    try {
      queue.put(std::move(item));
    } catch (const std::runtime_error&) {
      threw = true;
    }
    Fragile::arm(0);
    EXPECT_EQ(item.v, 7);
    EXPECT_EQ(queue.qsize(), threw ? 1u : 2u);
    if constexpr (requires { queue.unfinished_tasks(); }) {
      EXPECT_EQ(queue.unfinished_tasks(), threw ? 1u : 2u);
    }
    std::vector<int> out;
    while (auto x = queue.try_get()) out.push_back(x->v);
    std::sort(out.begin(), out.end());
    EXPECT_EQ(out, threw ? std::vector<int>{1} : (std::vector<int>{1, 7}));
  }
}

TEST(QueueTimeouts, MoveThatThrowsInPutLeavesQueueUnchanged) {
  every_put_move_may_throw<q::Queue<Fragile>>();
  every_put_move_may_throw<q::LifoQueue<Fragile>>();
  every_put_move_may_throw<q::PriorityQueue<Fragile>>();
  every_put_move_may_throw<q::SimpleQueue<Fragile>>();
}

}  // namespace
