// multiprocessing::Queue, JoinableQueue and SimpleQueue: Python's semantics (FIFO, maxsize,
// Full/Empty, timeouts, close, task_done/join) across processes, exactly-once delivery with
// many producers and consumers, messages of every size around the ring's boundary and a
// 64 MiB one, type tags. Fault injection (SIGKILL) is in queues_kill_test.cpp.
#include "concur/multiprocessing/queues.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../helpers/codec_types.hpp"
#include "concur/multiprocessing.hpp"
#include "fork_util.hpp"

namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;
using concur_test::fork_child;
using concur_test::wait_exit;

namespace {

// A zeroed array of n T in MAP_SHARED memory, for children to report into.
template <class T>
struct SharedArray {
  explicit SharedArray(std::size_t n) : n_(n) {
    void* p =
        ::mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    p_ = static_cast<T*>(p);
  }
  ~SharedArray() { ::munmap(p_, n_ * sizeof(T)); }
  T& operator[](std::size_t i) { return p_[i]; }
  std::size_t n_;
  T* p_;
};

TEST(MpQueue, FifoQsizeEmptyFull) {
  mp::Queue<int> q(3);
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.full());
  EXPECT_EQ(q.maxsize(), 3u);
  q.put(1);
  q.put(2);
  q.put(3);
  EXPECT_EQ(q.qsize(), 3u);
  EXPECT_TRUE(q.full());
  EXPECT_THROW(q.put_nowait(4), concur::queue::Full);
  EXPECT_FALSE(q.try_put(4));
  EXPECT_THROW(q.put(4, 10ms), concur::queue::Full);
  EXPECT_FALSE(q.try_put(4, 10ms));
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(q.get_nowait(), 2);
  EXPECT_EQ(*q.try_get(), 3);
  EXPECT_THROW(q.get_nowait(), concur::queue::Empty);
  EXPECT_THROW(q.get(10ms), concur::queue::Empty);
  EXPECT_FALSE(q.try_get().has_value());
  EXPECT_FALSE(q.try_get(10ms).has_value());
}

TEST(MpQueue, StringsAndFifoPerProducerAcrossProcesses) {
  mp::Queue<std::string> q;
  constexpr int kN = 3000;
  std::vector<pid_t> kids;
  for (int p = 0; p < 3; ++p)
    kids.push_back(fork_child([&q, p] {
      for (int i = 0; i < kN; ++i) q.put(std::to_string(p) + ":" + std::to_string(i));
      return 0;
    }));
  int next[3] = {0, 0, 0};
  for (int k = 0; k < 3 * kN; ++k) {
    const std::string s = q.get();
    const int p = s[0] - '0';
    ASSERT_EQ(s, std::to_string(p) + ":" + std::to_string(next[p])) << "FIFO per producer";
    ++next[p];
  }
  for (pid_t k : kids) EXPECT_EQ(wait_exit(k), 0);
  EXPECT_TRUE(q.empty());
}

// Python: a timeout <= 0 does not wait; NaN is rejected; hours::max() waits forever.
TEST(MpQueue, Timeouts) {
  mp::Queue<int> q(1);
  EXPECT_THROW(q.get(-1s), concur::queue::Empty);
  EXPECT_THROW(q.get(0s), concur::queue::Empty);
  EXPECT_THROW(q.get(std::chrono::duration<double>(std::nan(""))), concur::ValueError);
  EXPECT_THROW((void)q.try_get(std::chrono::duration<double>(std::nan(""))), concur::ValueError);
  q.put(1);
  EXPECT_THROW(q.put(2, -5ms), concur::queue::Full);
  EXPECT_THROW(q.put(2, std::chrono::duration<double>(std::nan(""))), concur::ValueError);
  EXPECT_EQ(q.get(std::chrono::hours::max()), 1);
  // A forever-get is released by a put from another process.
  const pid_t kid = fork_child([&q] {
    std::this_thread::sleep_for(30ms);
    q.put(7);
    return 0;
  });
  EXPECT_EQ(q.get(std::chrono::hours::max()), 7);
  EXPECT_EQ(wait_exit(kid), 0);
  // A forever-put is released by a get from another process.
  q.put(8);
  const pid_t kid2 = fork_child([&q] {
    std::this_thread::sleep_for(30ms);
    return q.get() == 8 ? 0 : 1;
  });
  q.put(9, std::chrono::duration<double>(std::numeric_limits<double>::infinity()));
  EXPECT_EQ(wait_exit(kid2), 0);
  EXPECT_EQ(q.get(), 9);
}

TEST(MpQueue, CloseThenUseIsValueError) {
  mp::Queue<int> q;
  q.put(1);
  mp::Queue<int> copy = q;
  const pid_t kid = fork_child([&q] {
    // Closed in the parent after the fork: this process's handle is still open.
    std::this_thread::sleep_for(30ms);
    q.put(2);
    return 0;
  });
  q.close();
  EXPECT_TRUE(copy.closed());
  try {
    q.put(3);
    FAIL();
  } catch (const concur::ValueError& e) {
    const std::string w = e.what();
    EXPECT_EQ(w.rfind("Queue <concur::multiprocessing::Queue object at 0x", 0), 0u) << w;
    EXPECT_NE(w.find("> is closed"), std::string::npos) << w;
  }
  EXPECT_THROW(q.get(), concur::ValueError);
  EXPECT_THROW(q.get_nowait(), concur::ValueError);
  EXPECT_THROW(q.put_nowait(1), concur::ValueError);
  EXPECT_THROW((void)q.try_get(), concur::ValueError);
  EXPECT_THROW((void)q.try_put(1), concur::ValueError);
  EXPECT_EQ(wait_exit(kid), 0);
  EXPECT_EQ(q.qsize(), 2u);  // qsize works after close, as in Python
  q.join_thread();
  q.cancel_join_thread();

  mp::JoinableQueue<int> j;
  j.close();
  try {
    j.put(1);
    FAIL();
  } catch (const concur::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("JoinableQueue object at"), std::string::npos);
  }
  EXPECT_THROW(j.task_done(), concur::ValueError);  // "too many times", as Python
  j.join();

  mp::SimpleQueue<int> s;
  s.close();
  EXPECT_THROW(s.put(1), concur::OSError);
  EXPECT_THROW(s.get(), concur::OSError);
  EXPECT_THROW((void)s.empty(), concur::OSError);
}

TEST(MpQueue, ManyProducersManyConsumersExactlyOnce) {
  constexpr int kProducers = 4, kConsumers = 3, kPer = 20000, kTotal = kProducers * kPer;
  mp::Queue<std::uint64_t> q(1000, {.capacity = 1 << 14});
  SharedArray<std::atomic<std::uint32_t>> seen(kTotal);
  SharedArray<std::atomic<std::uint64_t>> sums(kConsumers);
  std::vector<pid_t> kids;
  for (int c = 0; c < kConsumers; ++c)
    kids.push_back(fork_child([&, c] {
      std::uint64_t last[kProducers] = {};
      for (;;) {
        const std::uint64_t v = q.get();
        if (v == ~std::uint64_t{0}) return 0;
        const std::uint64_t p = v >> 32, i = v & 0xffffffffu;
        if (p >= kProducers || i >= kPer) return 3;
        if (i + 1 <= last[p]) return 4;  // FIFO per producer, seen by each consumer
        last[p] = i + 1;
        seen[p * kPer + i].fetch_add(1);
        sums[c].fetch_add(v);
      }
    }));
  std::vector<pid_t> prods;
  for (int p = 0; p < kProducers; ++p)
    prods.push_back(fork_child([&, p] {
      for (std::uint64_t i = 0; i < kPer; ++i) q.put(std::uint64_t(p) << 32 | i);
      return 0;
    }));
  for (pid_t k : prods) EXPECT_EQ(wait_exit(k), 0);
  for (int c = 0; c < kConsumers; ++c) q.put(~std::uint64_t{0});
  for (pid_t k : kids) EXPECT_EQ(wait_exit(k), 0);
  std::uint64_t expect = 0, got = 0;
  for (int p = 0; p < kProducers; ++p)
    for (std::uint64_t i = 0; i < kPer; ++i) {
      ASSERT_EQ(seen[p * kPer + i].load(), 1u) << p << ":" << i;
      expect += std::uint64_t(p) << 32 | i;
    }
  for (int c = 0; c < kConsumers; ++c) got += sums[c].load();
  EXPECT_EQ(got, expect);
  EXPECT_TRUE(q.empty());
}

// CPython _TestQueue.test_task_done: 4 worker processes, items marked done, join returns.
TEST(MpQueue, JoinableQueueAcrossFourProcesses) {
  mp::JoinableQueue<int> q;
  SharedArray<std::atomic<int>> total(1);
  std::vector<std::unique_ptr<mp::Process>> workers;
  for (int w = 0; w < 4; ++w)
    workers.push_back(std::make_unique<mp::Process>([&q, &total] {
      for (;;) {
        const int v = q.get();
        if (v < 0) {
          q.task_done();
          return;
        }
        std::this_thread::sleep_for(1ms);
        total[0].fetch_add(v);
        q.task_done();
      }
    }));
  for (auto& w : workers) w->start();
  for (int i = 1; i <= 100; ++i) q.put(i);
  q.join();
  EXPECT_EQ(total[0].load(), 5050);  // join returned only after every task_done
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  for (int w = 0; w < 4; ++w) q.put(-1);
  EXPECT_TRUE(q.join(10s));
  for (auto& w : workers) {
    w->join();
    EXPECT_EQ(w->exitcode(), 0);
  }
  EXPECT_THROW(q.task_done(), concur::ValueError);
  q.put(1);
  EXPECT_FALSE(q.join(10ms));
  EXPECT_FALSE(q.join(0s));
}

// A 64 MiB message through a default queue (1 MiB ring), from another process.
TEST(MpQueue, SixtyFourMiBThroughADefaultQueue) {
  mp::Queue<std::string> q;
  constexpr std::size_t kBig = std::size_t{64} << 20;
  const pid_t kid = fork_child([&q] {
    std::string s(kBig, '\0');
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i * 131 + (i >> 20));
    q.put(s);
    q.put("after");
    return 0;
  });
  const std::string got = q.get();
  ASSERT_EQ(got.size(), kBig);
  for (std::size_t i = 0; i < got.size(); i += 4093)
    ASSERT_EQ(got[i], static_cast<char>(i * 131 + (i >> 20))) << i;
  EXPECT_EQ(q.get(), "after");
  EXPECT_EQ(wait_exit(kid), 0);
}

// Strings of every length around the inline/big boundary of a 4 KiB ring, consumed in
// another process while the ring wraps many times.
TEST(MpQueue, EverySizeAroundTheRingBoundary) {
  mp::Queue<std::string> q(0, {.capacity = 4096, .max_message = 1 << 16});
  constexpr std::size_t kMax = 4096 + 64;
  const pid_t kid = fork_child([&q] {
    for (std::size_t n = 0; n <= kMax; ++n) {
      const std::string s = q.get();
      if (s.size() != n) return 1;
      for (std::size_t i = 0; i < n; ++i)
        if (s[i] != static_cast<char>('a' + (i + n) % 26)) return 2;
    }
    return 0;
  });
  for (std::size_t n = 0; n <= kMax; ++n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i + n) % 26);
    q.put(s);
  }
  EXPECT_EQ(wait_exit(kid), 0);
  EXPECT_THROW(q.put(std::string(1 << 16, 'x')), concur::ValueError);  // over max_message
}

TEST(MpQueue, TypeMismatchIsTypeErrorAndConsumesTheMessage) {
  mp::Queue<int> q;
  namespace codec = concur::detail::codec;
  const double d = 2.5;
  std::vector<std::byte> m(codec::encoded_size(d));
  codec::encode_to(d, m.data());
  q.put_bytes(m);
  q.put(5);
  EXPECT_THROW(q.get(), concur::TypeError);
  EXPECT_EQ(q.get(), 5);  // the mismatched message was consumed
  // Same size, other type: the tag tells them apart.
  const float f = 1.5f;
  std::vector<std::byte> mf(codec::encoded_size(f));
  codec::encode_to(f, mf.data());
  q.put_bytes(mf);
  EXPECT_THROW((void)q.try_get(), concur::TypeError);
  EXPECT_TRUE(q.empty());
  // Bytes that are not a message at all: DecodeError (a ValueError), consumed too.
  q.put_bytes(std::vector<std::byte>(3, std::byte{1}));
  EXPECT_THROW(q.get(), concur::ValueError);
  EXPECT_TRUE(q.empty());
  // The byte layer forwards a message unchanged.
  q.put(42);
  mp::Queue<int> r;
  r.put_bytes(q.get_bytes());
  EXPECT_EQ(r.get(), 42);
  EXPECT_THROW(r.get_bytes(0s), concur::queue::Empty);
}

TEST(MpQueue, SimpleQueue) {
  mp::SimpleQueue<std::string> q;
  EXPECT_TRUE(q.empty());
  const pid_t kid = fork_child([&q] {
    q.put("Hello world");
    return 0;
  });
  EXPECT_EQ(q.get(), "Hello world");
  EXPECT_EQ(wait_exit(kid), 0);
  EXPECT_THROW(q.get(5ms), concur::queue::Empty);
  EXPECT_FALSE(q.try_get().has_value());
}

// Threads of one process and other processes share a queue.
TEST(MpQueue, ThreadsAndProcessesTogether) {
  mp::Queue<int> q(16);
  const pid_t kid = fork_child([&q] {
    long sum = 0;
    for (int i = 0; i < 4000; ++i) sum += q.get();
    return sum == 4L * (999 * 1000 / 2) ? 0 : 1;
  });
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&q] {
      for (int i = 0; i < 1000; ++i) q.put(i);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(wait_exit(kid), 0);
}

}  // namespace

namespace {

// The codec's type families through a cross-process queue, nested.
TEST(MpQueue, CodecTypesAcrossProcesses) {
  using Point = codec_test::Record;  // a cereal-style user type
  using Msg = std::map<std::string, std::vector<std::optional<Point>>>;
  mp::Queue<Msg> q;
  Msg m{
      {"a", {Point{1, 2.5, "one"}, std::nullopt}}, {"b", {}}, {std::string(3000, 'k'), {Point{}}}};
  const pid_t kid = fork_child([&] {
    q.put(m);
    q.put(Msg{});
    return 0;
  });
  EXPECT_EQ(q.get(), m);
  EXPECT_EQ(q.get(), Msg{});
  EXPECT_EQ(wait_exit(kid), 0);
}

}  // namespace
