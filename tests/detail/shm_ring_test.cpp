// The shared-memory byte ring (detail/shm_ring.hpp) on raw bytes: record framing, PAD at the
// end of the ring, every message size around the inline/big boundary, maxsize, timeouts, the
// big-message area and its page release, a producer/consumer pair across fork, and the
// wait protocol of the two sides under many threads (no lost wake-up).
#include "concur/detail/shm_ring.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "../multiprocessing/fork_util.hpp"
#include "concur/errors.hpp"

namespace {

using concur::detail::Clock;
using concur::detail::RingStatus;
using concur::detail::ShmRing;
using concur::detail::ShmRingConfig;

// A message of n bytes whose content depends on (seed, n): detects torn or shifted bytes.
std::vector<std::byte> pattern(std::size_t n, std::uint32_t seed) {
  std::vector<std::byte> v(n);
  std::uint32_t x = seed * 2654435761u + static_cast<std::uint32_t>(n);
  for (auto& b : v) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::byte>(x >> 24);
  }
  return v;
}

RingStatus put_bytes(ShmRing& r, const std::vector<std::byte>& m, bool block = true,
                     const Clock::time_point* dl = nullptr) {
  return r.put(
      m.size(),
      [&](std::byte* d) {
        if (!m.empty()) std::memcpy(d, m.data(), m.size());
      },
      block, dl);
}
std::optional<std::vector<std::byte>> get_bytes(ShmRing& r, bool block = true,
                                                const Clock::time_point* dl = nullptr) {
  std::optional<std::vector<std::byte>> out;
  if (r.get([&](std::span<const std::byte> s) { out.emplace(s.begin(), s.end()); }, block, dl) !=
      RingStatus::Ok)
    return std::nullopt;
  return out;
}

TEST(ShmRing, FifoAndEmpty) {
  ShmRing r({.capacity = 4096});
  EXPECT_EQ(r.capacity(), 4096u);
  EXPECT_FALSE(get_bytes(r, false).has_value());
  for (std::uint32_t i = 0; i < 20; ++i) ASSERT_EQ(put_bytes(r, pattern(i, i)), RingStatus::Ok);
  EXPECT_EQ(r.qsize(), 20u);
  for (std::uint32_t i = 0; i < 20; ++i) EXPECT_EQ(*get_bytes(r), pattern(i, i));
  EXPECT_EQ(r.qsize(), 0u);
}

// Every size from 0 past the big-message threshold, many times round the ring, so every
// record position relative to the end (PAD of every length) is exercised.
TEST(ShmRing, EverySizeAroundTheBoundaryAndWrap) {
  ShmRing r({.capacity = 4096, .max_message = 1 << 20});
  const std::size_t lim = r.inline_max();
  std::uint32_t seed = 0;
  for (std::size_t n = 0; n <= lim + 80; ++n) {
    // Two messages in flight: the second one lands at varying offsets.
    const auto a = pattern(n, seed++), b = pattern((n * 7) % (lim + 1), seed++);
    ASSERT_EQ(put_bytes(r, a), RingStatus::Ok) << n;
    ASSERT_EQ(put_bytes(r, b), RingStatus::Ok) << n;
    ASSERT_EQ(*get_bytes(r), a) << n;
    ASSERT_EQ(*get_bytes(r), b) << n;
  }
  EXPECT_EQ(r.qsize(), 0u);
}

TEST(ShmRing, FullByBytesAndByMaxsize) {
  ShmRing r({.capacity = 4096, .maxsize = 3});
  const auto m = pattern(100, 1);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(put_bytes(r, m, false), RingStatus::Ok);
  EXPECT_EQ(put_bytes(r, m, false), RingStatus::Unavailable);
  const auto dl = Clock::now() + std::chrono::milliseconds(20);
  EXPECT_EQ(put_bytes(r, m, true, &dl), RingStatus::Unavailable);
  ASSERT_TRUE(get_bytes(r).has_value());
  EXPECT_EQ(put_bytes(r, m, false), RingStatus::Ok);

  ShmRing b({.capacity = 4096});
  const auto big = pattern(b.inline_max(), 2);  // records of exactly a quarter of the ring
  int n = 0;
  while (put_bytes(b, big, false) == RingStatus::Ok) ++n;
  EXPECT_EQ(n, 4);
  const auto dl2 = Clock::now() + std::chrono::milliseconds(20);
  EXPECT_EQ(put_bytes(b, pattern(0, 0), true, &dl2), RingStatus::Unavailable);
  EXPECT_EQ(*get_bytes(b), big);
  EXPECT_EQ(put_bytes(b, pattern(0, 0), false), RingStatus::Ok);
}

TEST(ShmRing, GetTimesOut) {
  ShmRing r({.capacity = 4096});
  const auto dl = Clock::now() + std::chrono::milliseconds(30);
  EXPECT_FALSE(get_bytes(r, true, &dl).has_value());
  EXPECT_GE(Clock::now(), dl);
}

TEST(ShmRing, ReaderThatThrowsLeavesTheMessage) {
  ShmRing r({.capacity = 4096});
  ASSERT_EQ(put_bytes(r, pattern(10, 3)), RingStatus::Ok);
  EXPECT_THROW(
      r.get([](std::span<const std::byte>) { throw std::runtime_error("no"); }, false, nullptr),
      std::runtime_error);
  EXPECT_EQ(*get_bytes(r, false), pattern(10, 3));
  // And a writer that throws publishes nothing.
  EXPECT_THROW(r.put(
                   8, [](std::byte*) { throw std::runtime_error("no"); }, false, nullptr),
               std::runtime_error);
  EXPECT_EQ(r.qsize(), 0u);
}

TEST(ShmRing, BigMessagesGoThroughAndPagesAreReleased) {
  ShmRing r({.capacity = 4096, .max_message = 8 << 20});
  const auto m = pattern(8 << 20, 9);
  ASSERT_EQ(put_bytes(r, m), RingStatus::Ok);
  EXPECT_EQ(r.big_touched(), m.size());
  // A second big message cannot be put while the first is queued (one big area).
  EXPECT_EQ(put_bytes(r, pattern(5000, 1), false), RingStatus::Unavailable);
  ASSERT_EQ(put_bytes(r, pattern(7, 7)), RingStatus::Ok);  // small ones still can
  EXPECT_EQ(*get_bytes(r), m);
  EXPECT_EQ(r.big_touched(), 0u);
  EXPECT_EQ(*get_bytes(r), pattern(7, 7));
  EXPECT_THROW(put_bytes(r, pattern((8 << 20) + 1, 1)), concur::ValueError);
}

TEST(ShmRing, ProducerAndConsumerAcrossFork) {
  ShmRing r({.capacity = 1 << 16, .max_message = 4 << 20});
  constexpr std::uint32_t kN = 20000;
  const pid_t prod = concur_test::fork_child([&] {
    std::mt19937 rng(1);
    for (std::uint32_t i = 0; i < kN; ++i) {
      std::size_t n = rng() % 64;
      if (i % 1000 == 7) n = 100000 + rng() % 3000000;  // a few big ones
      if (i % 50 == 3) n = r.inline_max() - rng() % 16;
      auto m = pattern(n + 4, i);
      std::memcpy(m.data(), &i, 4);
      if (put_bytes(r, m) != RingStatus::Ok) return 1;
    }
    return 0;
  });
  std::uint32_t expect = 0;
  for (; expect < kN; ++expect) {
    auto m = get_bytes(r);
    ASSERT_TRUE(m.has_value());
    std::uint32_t id;
    std::memcpy(&id, m->data(), 4);
    ASSERT_EQ(id, expect);
    auto p = pattern(m->size(), id);
    std::memcpy(p.data(), &id, 4);
    ASSERT_EQ(*m, p) << id;
  }
  EXPECT_EQ(concur_test::wait_exit(prod), 0);
  EXPECT_EQ(r.qsize(), 0u);
}

// The byte positions wrap at 2^32 (after 4 GiB through one queue) and the counts too: start
// both just below the wrap and send messages of every alignment across it. (A 64-bit add
// of the record size once carried the position's wrap into the count: a phantom message,
// then a queue both full and empty, deadlocked.)
TEST(ShmRing, PositionsAndCountsWrapAt2To32) {
  for (const std::uint64_t start :
       {std::uint64_t{0xfffff000u}, std::uint64_t{0xffffffffu} << 32 | 0xffffff00u}) {
    ShmRing r({.capacity = 4096, .max_message = 1 << 16});
    r.header().head.store(start);
    r.header().tail.store(start);
    r.header().head_cache.store(start);
    r.header().tail_cache.store(start);
    r.header().done.store(static_cast<std::uint32_t>(start >> 32));
    for (std::uint32_t i = 0; i < 400; ++i) {
      const auto a = pattern(i % 300, i), b = pattern((i * 37) % 1200, i + 1);
      ASSERT_EQ(put_bytes(r, a), RingStatus::Ok) << i;
      ASSERT_EQ(put_bytes(r, b), RingStatus::Ok) << i;
      ASSERT_EQ(r.qsize(), 2u) << i;
      ASSERT_EQ(*get_bytes(r, false), a) << i;
      ASSERT_EQ(*get_bytes(r, false), b) << i;
      ASSERT_EQ(r.qsize(), 0u) << i;
      ASSERT_FALSE(get_bytes(r, false).has_value()) << i;
    }
    EXPECT_EQ(r.unfinished(), 800u);
  }
}

TEST(ShmRing, JoinAccounting) {
  ShmRing r({.capacity = 4096});
  EXPECT_FALSE(r.task_done());
  ASSERT_EQ(put_bytes(r, pattern(1, 1)), RingStatus::Ok);
  ASSERT_EQ(put_bytes(r, pattern(1, 1)), RingStatus::Ok);
  EXPECT_EQ(r.unfinished(), 2u);
  auto dl = Clock::now() + std::chrono::milliseconds(10);
  EXPECT_FALSE(r.join(&dl));
  EXPECT_TRUE(r.task_done());
  EXPECT_TRUE(r.task_done());
  EXPECT_FALSE(r.task_done());
  EXPECT_TRUE(r.join(nullptr));
}

}  // namespace

// Two producers and two consumers (threads: TSan sees every access) on a small bounded ring,
// messages of mixed sizes and some big ones, every put and get blocking with no deadline,
// so both sides sleep and wake thousands of times. Exactly-once, untorn, and no sleep may
// end by the 100 ms re-check instead of a wake-up (a lost wake-up would be rescued by it
// and otherwise go unnoticed).
TEST(ShmRing, ManyThreadsBothSidesSleepNoLostWakeup) {
  ShmRing r({.capacity = 4096, .max_message = 1 << 16, .maxsize = 6});
  constexpr std::uint32_t kPer = 6000, kProducers = 2, kConsumers = 2;
  const std::uint64_t rescues = ShmRing::poll_rescues();
  std::vector<std::atomic<int>> got(kPer * kProducers);
  std::atomic<int> bad{0};
  auto size_of = [](std::uint32_t id) -> std::size_t {
    if (id % 97 == 0) return 5000;  // big path
    return 4 + (id * 37) % 700;
  };
  std::vector<std::thread> ts;
  for (std::uint32_t p = 0; p < kProducers; ++p)
    ts.emplace_back([&, p] {
      for (std::uint32_t i = 0; i < kPer; ++i) {
        const std::uint32_t id = p * kPer + i;
        const std::size_t n = size_of(id);
        const auto st = r.put(
            n,
            [&](std::byte* d) {
              std::memset(d, static_cast<int>(id & 0xff), n);
              std::memcpy(d, &id, 4);
            },
            true, nullptr);
        if (st != RingStatus::Ok) bad.fetch_add(1);
      }
    });
  for (std::uint32_t c = 0; c < kConsumers; ++c)
    ts.emplace_back([&] {
      for (std::uint32_t k = 0; k < kPer * kProducers / kConsumers; ++k) {
        const auto st = r.get(
            [&](std::span<const std::byte> m) {
              std::uint32_t id = 0;
              std::memcpy(&id, m.data(), 4);
              bool ok = id < kPer * kProducers && m.size() == size_of(id);
              for (std::size_t i = 4; ok && i < m.size(); ++i)
                ok = m[i] == static_cast<std::byte>(id & 0xff);
              if (ok) {
                got[id].fetch_add(1);
              } else {
                bad.fetch_add(1);
              }
            },
            true, nullptr);
        if (st != RingStatus::Ok) bad.fetch_add(1);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  for (std::uint32_t id = 0; id < kPer * kProducers; ++id) ASSERT_EQ(got[id].load(), 1) << id;
  EXPECT_EQ(r.qsize(), 0u);
  EXPECT_EQ(ShmRing::poll_rescues(), rescues);
}

// Every wake-up matters when nothing else follows it: a ping-pong of two threads over two
// rings, where the pinger's second put waits for room (maxsize 1) and its get waits for the
// reply, and the ponger pauses before each get so that the other side really goes to sleep.
// A lost wake-up would leave a sleeper to its 100 ms re-check, which poll_rescues() counts.
TEST(ShmRing, PingPongEveryWakeupArrives) {
  ShmRing req({.capacity = 4096, .maxsize = 1}), rep({.capacity = 4096});
  const std::uint64_t rescues = ShmRing::poll_rescues();
  constexpr std::uint32_t kRounds = 400;
  auto put = [](ShmRing& r, std::uint32_t v) {
    return r.put(
        4, [&](std::byte* d) { std::memcpy(d, &v, 4); }, true, nullptr);
  };
  auto get = [](ShmRing& r) {
    std::uint32_t v = ~0u;
    (void)r.get([&](std::span<const std::byte> m) { std::memcpy(&v, m.data(), 4); }, true, nullptr);
    return v;
  };
  std::atomic<int> bad{0};
  std::thread ponger([&] {
    for (std::uint32_t i = 0; i < kRounds; ++i) {
      ::usleep(100);
      const std::uint32_t a = get(req);
      ::usleep(100);
      const std::uint32_t b = get(req);
      if (a != 2 * i || b != 2 * i + 1) bad.fetch_add(1);
      if (put(rep, a + b) != RingStatus::Ok) bad.fetch_add(1);
    }
  });
  for (std::uint32_t i = 0; i < kRounds; ++i) {
    ASSERT_EQ(put(req, 2 * i), RingStatus::Ok);
    ASSERT_EQ(put(req, 2 * i + 1), RingStatus::Ok);  // waits for room
    ASSERT_EQ(get(rep), 4 * i + 1) << i;             // waits for the reply
  }
  ponger.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(ShmRing::poll_rescues(), rescues);
}
