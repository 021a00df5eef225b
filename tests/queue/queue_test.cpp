// concur::queue — Queue, LifoQueue, PriorityQueue, SimpleQueue: orders, blocking, timeouts,
// task_done/join, shutdown (3.13), move-only items, misuse. Ports CPython test_queue's
// test_basic, test_queue_join, test_queue_task_done, test_negative_timeout_raises_exception
// and the 3.13 shutdown tests.
// concur-test: timeout=60
#include "concur/queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

namespace {
using namespace std::chrono_literals;
namespace q = concur::queue;

template <class Q>
std::vector<int> drain(Q& queue) {
  std::vector<int> out;
  while (!queue.empty()) out.push_back(queue.get());
  return out;
}

TEST(Queue, OrdersFifoLifoPriority) {
  q::Queue<int> fifo;
  q::LifoQueue<int> lifo;
  q::PriorityQueue<int> prio;
  for (int x : {111, 333, 222}) {
    fifo.put(x);
    lifo.put(x);
    prio.put(x);
  }
  EXPECT_EQ(drain(fifo), (std::vector<int>{111, 333, 222}));
  EXPECT_EQ(drain(lifo), (std::vector<int>{222, 333, 111}));
  EXPECT_EQ(drain(prio), (std::vector<int>{111, 222, 333}));
}

TEST(Queue, PriorityQueueSmallestFirstWithPairsAndCustomCompare) {
  q::PriorityQueue<std::pair<int, std::string>> pq;
  pq.put({3, "low"});
  pq.put({1, "high"});
  pq.put({2, "mid"});
  EXPECT_EQ(pq.get().second, "high");
  EXPECT_EQ(pq.get().second, "mid");
  EXPECT_EQ(pq.get().second, "low");
  q::PriorityQueue<int, std::greater<int>> maxq;
  for (int x : {5, 9, 1}) maxq.put(x);
  EXPECT_EQ(maxq.get(), 9);
  EXPECT_EQ(maxq.get(), 5);
  EXPECT_EQ(maxq.get(), 1);
}

TEST(Queue, FifoRingSurvivesWrapAndGrowth) {
  q::Queue<int> fifo;
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < round + 3; ++i) fifo.put(next_in++);
    for (int i = 0; i < round + 1; ++i) ASSERT_EQ(fifo.get(), next_out++);
  }
  while (!fifo.empty()) ASSERT_EQ(fifo.get(), next_out++);
  EXPECT_EQ(next_in, next_out);
}

TEST(Queue, SizesAndFull) {
  q::Queue<int> bounded(2);
  EXPECT_EQ(bounded.maxsize(), 2u);
  EXPECT_TRUE(bounded.empty());
  EXPECT_FALSE(bounded.full());
  bounded.put(1);
  bounded.put(2);
  EXPECT_TRUE(bounded.full());
  EXPECT_EQ(bounded.qsize(), 2u);
  EXPECT_THROW(bounded.put_nowait(3), q::Full);
  EXPECT_FALSE(bounded.try_put(3));
  EXPECT_THROW(bounded.put(3, 20ms), q::Full);
  EXPECT_FALSE(bounded.try_put(3, 10ms));
  q::Queue<int> unbounded;
  for (int i = 0; i < 1000; ++i) unbounded.put_nowait(i);
  EXPECT_FALSE(unbounded.full());
  EXPECT_EQ(unbounded.qsize(), 1000u);
}

TEST(Queue, EmptyRaisesAndTryGetReturnsNullopt) {
  q::Queue<int> queue;
  EXPECT_THROW(queue.get_nowait(), q::Empty);
  EXPECT_THROW(queue.get(20ms), q::Empty);
  EXPECT_EQ(queue.try_get(), std::nullopt);
  EXPECT_EQ(queue.try_get(10ms), std::nullopt);
  try {
    queue.get_nowait();
  } catch (const q::Empty& e) {
    EXPECT_STREQ(e.what(), "queue is empty");
  }
  queue.put(7);
  EXPECT_EQ(queue.try_get(), 7);
}

TEST(Queue, NegativeTimeoutRaisesValueError) {
  q::Queue<int> queue(1);
  EXPECT_THROW(queue.put(1, -1ms), concur::ValueError);
  EXPECT_THROW(queue.get(-1s), concur::ValueError);
  EXPECT_THROW((void)queue.try_get(-5ms), concur::ValueError);
  EXPECT_THROW((void)queue.try_put(1, -5ms), concur::ValueError);
  try {
    queue.get(-1ms);
  } catch (const concur::ValueError& e) {
    EXPECT_STREQ(e.what(), "'timeout' must be a non-negative number");
  }
  q::SimpleQueue<int> sq;
  EXPECT_THROW(sq.get(-1ms), concur::ValueError);
  EXPECT_EQ(queue.qsize(), 0u);  // nothing was put
}

TEST(Queue, ZeroTimeoutIsANonBlockingTry) {
  q::Queue<int> queue(1);
  EXPECT_THROW(queue.get(0ms), q::Empty);
  queue.put(1, 0ms);
  EXPECT_THROW(queue.put(2, 0ms), q::Full);
  EXPECT_EQ(queue.get(0s), 1);
}

TEST(Queue, BlockedGetReleasedByPut) {
  q::Queue<int> queue;
  std::atomic<int> got{-1};
  std::thread t([&] { got = queue.get(); });
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(got.load(), -1);  // still blocked
  queue.put(42);
  t.join();
  EXPECT_EQ(got.load(), 42);
}

TEST(Queue, BlockedPutReleasedByGet) {
  q::Queue<int> queue(1);
  queue.put(1);
  std::atomic<bool> done{false};
  std::thread t([&] {
    queue.put(2);
    done = true;
  });
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(done.load());
  EXPECT_EQ(queue.get(), 1);
  t.join();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(queue.get(), 2);
}

TEST(Queue, TimedGetSucceedsWhenItemArrivesInTime) {
  q::Queue<std::string> queue;
  std::thread t([&] {
    std::this_thread::sleep_for(20ms);
    queue.put("late");
  });
  EXPECT_EQ(queue.get(10s), "late");
  t.join();
}

TEST(Queue, ManyProducersManyConsumersLoseNothing) {
  constexpr int kProducers = 4, kConsumers = 4, kPer = 20000;
  for (std::size_t maxsize : {std::size_t{0}, std::size_t{8}}) {
    q::Queue<int> queue(maxsize);
    std::atomic<long> sum{0};
    std::atomic<int> count{0};
    std::vector<std::thread> ts;
    for (int c = 0; c < kConsumers; ++c)
      ts.emplace_back([&] {
        for (;;) {
          const int v = queue.get();
          if (v < 0) return;
          sum += v;
          ++count;
        }
      });
    for (int p = 0; p < kProducers; ++p)
      ts.emplace_back([&, p] {
        for (int i = 0; i < kPer; ++i) queue.put(p * kPer + i);
      });
    for (int p = 0; p < kProducers; ++p) ts[kConsumers + p].join();
    for (int c = 0; c < kConsumers; ++c) queue.put(-1);
    for (int c = 0; c < kConsumers; ++c) ts[c].join();
    const long n = long{kProducers} * kPer;
    EXPECT_EQ(count.load(), n);
    EXPECT_EQ(sum.load(), n * (n - 1) / 2);
    EXPECT_TRUE(queue.empty());
  }
}

TEST(Queue, FifoOrderPreservedBetweenTwoThreads) {
  q::Queue<int> queue(16);
  constexpr int kN = 50000;
  std::thread producer([&] {
    for (int i = 0; i < kN; ++i) queue.put(i);
  });
  bool in_order = true;
  for (int i = 0; i < kN; ++i)
    if (queue.get() != i) in_order = false;
  producer.join();
  EXPECT_TRUE(in_order);
}

TEST(Queue, TaskDoneAndJoin) {
  q::Queue<int> queue;
  std::atomic<int> processed{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 3; ++w)
    workers.emplace_back([&] {
      for (;;) {
        const int v = queue.get();
        if (v < 0) {
          queue.task_done();
          return;
        }
        std::this_thread::sleep_for(100us);
        processed += v;
        queue.task_done();
      }
    });
  for (int i = 1; i <= 100; ++i) queue.put(i);
  queue.join();
  EXPECT_EQ(processed.load(), 5050);  // join returned only after every task_done
  EXPECT_EQ(queue.unfinished_tasks(), 0u);
  for (int w = 0; w < 3; ++w) queue.put(-1);
  queue.join();
  for (auto& t : workers) t.join();
}

TEST(Queue, ExtraTaskDoneRaisesValueError) {
  q::Queue<int> queue;
  EXPECT_THROW(queue.task_done(), concur::ValueError);
  queue.put(1);
  (void)queue.get();
  queue.task_done();
  try {
    queue.task_done();
    FAIL() << "expected ValueError";
  } catch (const concur::ValueError& e) {
    EXPECT_STREQ(e.what(), "task_done() called too many times");
  }
  queue.join();  // returns at once: nothing unfinished
}

TEST(Queue, TimedJoin) {
  q::Queue<int> queue;
  queue.put(1);
  EXPECT_FALSE(queue.join(20ms));
  (void)queue.get();
  queue.task_done();
  EXPECT_TRUE(queue.join(0ms));
  EXPECT_THROW((void)queue.join(-1ms), concur::ValueError);
}

TEST(QueueShutdown, PutRaisesGetDrainsThenRaises) {
  q::Queue<int> queue;
  queue.put(1);
  queue.put(2);
  EXPECT_FALSE(queue.is_shutdown());
  queue.shutdown();
  EXPECT_TRUE(queue.is_shutdown());
  EXPECT_THROW(queue.put(3), q::ShutDown);
  EXPECT_THROW(queue.put_nowait(3), q::ShutDown);
  EXPECT_THROW(queue.put(3, 10ms), q::ShutDown);
  EXPECT_FALSE(queue.try_put(3));
  EXPECT_EQ(queue.get(), 1);
  EXPECT_EQ(queue.get_nowait(), 2);
  EXPECT_THROW(queue.get(), q::ShutDown);
  EXPECT_THROW(queue.get_nowait(), q::ShutDown);
  EXPECT_THROW(queue.get(10ms), q::ShutDown);
  EXPECT_EQ(queue.try_get(), std::nullopt);
  queue.shutdown();  // idempotent
  try {
    queue.get();
  } catch (const q::ShutDown& e) {
    EXPECT_STREQ(e.what(), "queue is shut down");
  }
}

TEST(QueueShutdown, ImmediateDiscardsItemsAndReleasesJoin) {
  q::Queue<int> queue;
  for (int i = 0; i < 5; ++i) queue.put(i);
  (void)queue.get();
  queue.task_done();
  (void)queue.get();  // taken, not yet done
  queue.shutdown(true);
  EXPECT_EQ(queue.qsize(), 0u);
  EXPECT_THROW(queue.get(), q::ShutDown);
  EXPECT_EQ(queue.unfinished_tasks(), 1u);  // only the one taken and not done
  queue.task_done();
  queue.join();
}

TEST(QueueShutdown, WakesBlockedGettersPuttersAndJoiners) {
  q::Queue<int> queue(1);
  queue.put(0);
  std::atomic<int> shut_puts{0}, shut_gets{0};
  std::thread putter([&] {
    try {
      queue.put(1);
    } catch (const q::ShutDown&) {
      ++shut_puts;
    }
  });
  q::Queue<int> empty_queue;
  std::vector<std::thread> getters;
  for (int i = 0; i < 3; ++i)
    getters.emplace_back([&] {
      try {
        (void)empty_queue.get();
      } catch (const q::ShutDown&) {
        ++shut_gets;
      }
    });
  std::atomic<bool> joined{false};
  std::thread joiner([&] {
    queue.join();
    joined = true;
  });
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(shut_puts.load() + shut_gets.load(), 0);
  EXPECT_FALSE(joined.load());
  queue.shutdown(true);  // discards item 0 -> join released; putter raises
  empty_queue.shutdown();
  putter.join();
  joiner.join();
  for (auto& t : getters) t.join();
  EXPECT_EQ(shut_puts.load(), 1);
  EXPECT_EQ(shut_gets.load(), 3);
  EXPECT_TRUE(joined.load());
}

TEST(QueueShutdown, RaceWithProducersAndConsumersAccountsForEveryItem) {
  for (int round = 0; round < 20; ++round) {
    q::Queue<int> queue(4);
    std::atomic<int> put_ok{0}, got{0};
    std::vector<std::thread> ts;
    for (int p = 0; p < 2; ++p)
      ts.emplace_back([&] {
        try {
          for (int i = 0;; ++i) {
            queue.put(i);
            ++put_ok;
          }
        } catch (const q::ShutDown&) {
        }
      });
    for (int c = 0; c < 2; ++c)
      ts.emplace_back([&] {
        try {
          for (;;) {
            (void)queue.get();
            ++got;
          }
        } catch (const q::ShutDown&) {
        }
      });
    std::this_thread::sleep_for(2ms);
    queue.shutdown(false);
    for (auto& t : ts) t.join();
    EXPECT_EQ(put_ok.load(), got.load());  // non-immediate: everything put is got
    EXPECT_TRUE(queue.empty());
  }
}

TEST(Queue, MoveOnlyItems) {
  q::Queue<std::unique_ptr<int>> queue(1);
  queue.put(std::make_unique<int>(5));
  auto extra = std::make_unique<int>(6);
  EXPECT_THROW(queue.put_nowait(std::move(extra)), q::Full);
  ASSERT_NE(extra, nullptr);  // a failed put does not take the item
  EXPECT_EQ(*extra, 6);
  EXPECT_FALSE(queue.try_put(std::move(extra)));
  ASSERT_NE(extra, nullptr);
  auto got = queue.get();
  EXPECT_EQ(*got, 5);
  EXPECT_TRUE(queue.try_put(std::move(extra)));
  EXPECT_EQ(extra, nullptr);
  auto again = queue.try_get();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(**again, 6);
  q::LifoQueue<std::unique_ptr<int>> lifo;
  lifo.put(std::make_unique<int>(1));
  lifo.put(std::make_unique<int>(2));
  EXPECT_EQ(*lifo.get(), 2);
  q::PriorityQueue<std::unique_ptr<int>,
                   decltype([](const auto& a, const auto& b) { return *a < *b; })>
      pq;
  pq.put(std::make_unique<int>(9));
  pq.put(std::make_unique<int>(3));
  EXPECT_EQ(*pq.get(), 3);
  q::Queue<std::unique_ptr<int>> shut;
  shut.shutdown();
  auto keep = std::make_unique<int>(1);
  EXPECT_THROW(shut.put(std::move(keep)), q::ShutDown);
  EXPECT_NE(keep, nullptr);
}

// Counts live objects so we can check that discarded and leftover items are destroyed.
struct Tracked {
  static inline std::atomic<int> live{0};
  int v;
  explicit Tracked(int x) : v(x) { ++live; }
  Tracked(const Tracked& o) : v(o.v) { ++live; }
  Tracked(Tracked&& o) noexcept : v(o.v) { ++live; }
  Tracked& operator=(const Tracked&) = default;
  ~Tracked() { --live; }
};

TEST(Queue, ItemsAreDestroyedByShutdownAndDestructor) {
  {
    q::Queue<Tracked> queue;
    for (int i = 0; i < 40; ++i) queue.put(Tracked(i));  // forces growth of the ring
    EXPECT_EQ(Tracked::live.load(), 40);
    EXPECT_EQ(queue.get().v, 0);
    queue.shutdown(true);
    EXPECT_EQ(Tracked::live.load(), 0);
    q::Queue<Tracked> other;
    for (int i = 0; i < 10; ++i) other.put(Tracked(i));
  }
  EXPECT_EQ(Tracked::live.load(), 0);
}

TEST(SimpleQueue, UnboundedFifo) {
  q::SimpleQueue<int> sq;
  EXPECT_TRUE(sq.empty());
  for (int i = 0; i < 100; ++i) sq.put(i);
  sq.put_nowait(100);
  sq.put(101, 1s);  // block/timeout ignored, as in Python
  EXPECT_EQ(sq.qsize(), 102u);
  for (int i = 0; i <= 101; ++i) ASSERT_EQ(sq.get(), i);
  EXPECT_THROW(sq.get_nowait(), q::Empty);
  EXPECT_THROW(sq.get(10ms), q::Empty);
  EXPECT_EQ(sq.try_get(), std::nullopt);
  EXPECT_EQ(sq.try_get(1ms), std::nullopt);
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    sq.put(9);
  });
  EXPECT_EQ(sq.get(), 9);
  t.join();
  q::SimpleQueue<std::unique_ptr<int>> moq;
  moq.put(std::make_unique<int>(3));
  EXPECT_EQ(*moq.get(), 3);
}

TEST(Queue, BoundedLifoAndPriorityQueues) {
  q::LifoQueue<int> lifo(2);
  lifo.put(1);
  lifo.put(2);
  EXPECT_TRUE(lifo.full());
  EXPECT_THROW(lifo.put_nowait(3), q::Full);
  EXPECT_EQ(lifo.get(), 2);
  q::PriorityQueue<int> pq(2);
  pq.put(5);
  pq.put(4);
  EXPECT_THROW(pq.put(1, 5ms), q::Full);
  EXPECT_EQ(pq.get(), 4);
  pq.put(1);
  EXPECT_EQ(pq.get(), 1);
  EXPECT_EQ(pq.get(), 5);
  pq.shutdown();
  EXPECT_THROW(pq.get(), q::ShutDown);
  EXPECT_THROW(pq.put(1), q::ShutDown);
}

TEST(Queue, TimedPutSucceedsWhenRoomAppears) {
  q::Queue<int> queue(1);
  queue.put(1);
  std::thread t([&] {
    std::this_thread::sleep_for(20ms);
    (void)queue.get();
  });
  EXPECT_TRUE(queue.try_put(2, 10s));
  t.join();
  EXPECT_EQ(queue.get(), 2);
  std::thread t2([&] {
    std::this_thread::sleep_for(20ms);
    (void)queue.get();
  });
  queue.put(3);
  queue.put(4, 10s);  // blocks until t2 takes 3
  t2.join();
  EXPECT_EQ(queue.get(), 4);
}

TEST(Queue, PriorityAndLifoUnderConcurrencyLoseNothing) {
  q::PriorityQueue<int> pq(8);
  q::LifoQueue<int> lifo(8);
  constexpr int kN = 20000;
  std::atomic<long> sum_p{0}, sum_l{0};
  std::vector<std::thread> ts;
  ts.emplace_back([&] {
    for (int i = 1; i <= kN; ++i) pq.put(i);
  });
  ts.emplace_back([&] {
    for (int i = 1; i <= kN; ++i) lifo.put(i);
  });
  ts.emplace_back([&] {
    for (int i = 0; i < kN; ++i) sum_p += pq.get();
  });
  ts.emplace_back([&] {
    for (int i = 0; i < kN; ++i) sum_l += lifo.get();
  });
  for (auto& t : ts) t.join();
  EXPECT_EQ(sum_p.load(), long{kN} * (kN + 1) / 2);
  EXPECT_EQ(sum_l.load(), long{kN} * (kN + 1) / 2);
}

TEST(QueueShutdown, TimedGetterAndPutterSeeShutDownNotTimeout) {
  q::Queue<int> empty_q;
  q::Queue<int> full_q(1);
  full_q.put(0);
  std::atomic<int> shut{0};
  std::thread g([&] {
    try {
      (void)empty_q.get(30s);
    } catch (const q::ShutDown&) {
      ++shut;
    }
  });
  std::thread p([&] {
    try {
      full_q.put(1, 30s);
    } catch (const q::ShutDown&) {
      ++shut;
    }
  });
  std::this_thread::sleep_for(20ms);
  empty_q.shutdown();
  full_q.shutdown();
  g.join();
  p.join();
  EXPECT_EQ(shut.load(), 2);
  EXPECT_EQ(full_q.get(), 0);  // non-immediate: the item is still there
}

}  // namespace
