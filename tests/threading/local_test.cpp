// concur::threading::Local<T>: one value per thread and per Local object, default-constructed
// (or by the factory) on first use, has_value(), reset(), destroyed at thread exit and when
// the Local dies (counted with an instance counter; ASan checks for leaks).
// concur-test: timeout=60
#include "concur/threading/local.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "concur/threading/thread.hpp"

namespace {
namespace th = concur::threading;

std::atomic<int> live{0};
struct Counted {
  Counted() { ++live; }
  explicit Counted(int v) : value(v) { ++live; }
  Counted(const Counted& o) : value(o.value) { ++live; }
  ~Counted() { --live; }
  int value = 0;
};

TEST(Local, PerThreadValues) {
  th::Local<int> local;
  EXPECT_FALSE(local.has_value());
  local.get() = 0;
  EXPECT_TRUE(local.has_value());
  std::vector<int> seen_before(5, -1), seen_after(5, -1);
  std::vector<char> had(5, 1);  // not vector<bool>: its bits share words across threads
  std::vector<std::unique_ptr<th::Thread>> ts;
  for (int i = 0; i < 5; ++i)
    ts.push_back(std::make_unique<th::Thread>([&, i] {
      had[static_cast<std::size_t>(i)] = local.has_value();
      seen_before[static_cast<std::size_t>(i)] = local.get();  // a fresh int{} = 0
      local.get() = i + 1;
      seen_after[static_cast<std::size_t>(i)] = *local;
    }));
  for (auto& t : ts) t->start();
  for (auto& t : ts) t->join();
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(had[static_cast<std::size_t>(i)]);
    EXPECT_EQ(seen_before[static_cast<std::size_t>(i)], 0);
    EXPECT_EQ(seen_after[static_cast<std::size_t>(i)], i + 1);
  }
  EXPECT_EQ(local.get(), 0);  // the main thread's value untouched
}

TEST(Local, PerLocalObject) {
  th::Local<std::string> a, b;
  a.get() = "a";
  b->assign("b");
  EXPECT_EQ(a.get(), "a");
  EXPECT_EQ(*b, "b");
  {
    th::Local<std::string> c;
    EXPECT_FALSE(c.has_value());
    c.get() = "c";
  }
  th::Local<std::string> d;  // a new Local never sees an old one's value
  EXPECT_FALSE(d.has_value());
  EXPECT_EQ(d.get(), "");
}

TEST(Local, ValuesDestroyedAtThreadExit) {
  th::Local<Counted> local;
  const int before = live.load();
  th::Thread t([&] {
    local->value = 5;
    EXPECT_EQ(live.load(), before + 1);
  });
  t.start();
  t.join();  // join returns after the thread's thread_local destruction
  EXPECT_EQ(live.load(), before);
  std::thread s([&] { local.get().value = 6; });  // any thread, not only concur's
  s.join();
  EXPECT_EQ(live.load(), before);
}

TEST(Local, ValuesDestroyedWhenLocalDies) {
  const int before = live.load();
  std::atomic<bool> stop{false}, filled{false};
  std::thread s;
  {
    th::Local<Counted> local;
    local.get();
    s = std::thread([&] {
      local.get().value = 1;
      filled = true;
      while (!stop.load()) std::this_thread::yield();
    });
    while (!filled.load()) std::this_thread::yield();
    EXPECT_EQ(live.load(), before + 2);
  }  // both values (main's and the still-running thread's) destroyed here
  EXPECT_EQ(live.load(), before);
  stop = true;
  s.join();
  EXPECT_EQ(live.load(), before);
}

TEST(Local, ResetAndFactory) {
  th::Local<Counted> local([] { return Counted(42); });
  EXPECT_EQ(local.get().value, 42);
  local->value = 1;
  local.reset();
  EXPECT_FALSE(local.has_value());
  EXPECT_EQ(local.get().value, 42);
  local.reset();
  local.reset();  // harmless without a value
}

TEST(Local, ManyLocalsManyThreads) {
  const int before = live.load();
  {
    std::vector<std::unique_ptr<th::Local<Counted>>> locals;
    for (int i = 0; i < 20; ++i) locals.push_back(std::make_unique<th::Local<Counted>>());
    std::vector<std::thread> ts;
    std::atomic<int> errors{0};
    for (int t = 0; t < 4; ++t)
      ts.emplace_back([&, t] {
        for (int round = 0; round < 100; ++round)
          for (int i = 0; i < 20; ++i) {
            auto& v = locals[static_cast<std::size_t>(i)]->get();
            if (round == 0) v.value = t * 100 + i;
            else if (v.value != t * 100 + i) ++errors;
          }
      });
    for (auto& s : ts) s.join();
    EXPECT_EQ(errors.load(), 0);
    for (int i = 0; i < 10; ++i) locals[static_cast<std::size_t>(i)]->get();
    EXPECT_EQ(live.load(), before + 10);
  }
  EXPECT_EQ(live.load(), before);
}

}  // namespace
