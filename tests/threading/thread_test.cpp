// concur::threading::Thread and the module functions: target and subclass styles, names
// (also in /proc), daemon inheritance, ident/native_id, join with timeout, every misuse
// Python reports (CPython's ThreadingExceptionTests), excepthook, repr, dummy threads,
// ~Thread of a running thread, and behaviour at exit (ThreadJoinOnShutdown) checked in a
// re-executed copy of this binary.
// concur-test: timeout=60
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../helpers/run_self.hpp"
#include "concur/multiprocessing.hpp"
#include "concur/threading.hpp"

namespace {
using namespace std::chrono_literals;
namespace th = concur::threading;
using Event = concur::detail::BasicEvent<concur::detail::Scope::Private>;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string comm_of(pid_t tid) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/comm");
  std::string s;
  std::getline(f, s);
  return s;
}

TEST(Thread, TargetStyleRunsWithDecayCopiedArgs) {
  std::string text = "hello";
  std::atomic<int> sum{0};
  std::string seen;
  th::Thread t([&](int a, std::string s) { sum += a; seen = s; }, 41, text);
  text = "changed";  // the thread got its own copy at construction
  t.start();
  t.join();
  EXPECT_EQ(sum.load(), 41);
  EXPECT_EQ(seen, "hello");
}

TEST(Thread, StdRefPassesAReference) {
  int value = 0;
  th::Thread t([](int& v) { v = 7; }, std::ref(value));
  t.start();
  t.join();
  EXPECT_EQ(value, 7);
}

TEST(Thread, OptionsGiveNameAndDaemon) {
  th::Thread t({.name = "worker", .daemon = true}, [] {});
  EXPECT_EQ(t.name(), "worker");
  EXPECT_TRUE(t.daemon());
  t.start();
  t.join();
}

struct Worker : th::Thread {
  explicit Worker(int arg) : Thread({.name = "sub"}), arg_(arg) {}
  ~Worker() override {
    if (ident()) join();
  }
  void run() override {
    seen_name_ = th::current_thread().name();
    result_ = arg_ * 2;
    self_ = &th::current_thread();
  }
  int arg_;
  int result_ = 0;
  std::string seen_name_;
  th::Thread* self_ = nullptr;
};

TEST(Thread, SubclassStyleCallsRun) {
  Worker w(21);
  w.start();
  w.join();
  EXPECT_EQ(w.result_, 42);
  EXPECT_EQ(w.seen_name_, "sub");
  EXPECT_EQ(w.self_, &w);
}

TEST(Thread, BaseThreadWithoutTargetDoesNothing) {
  th::Thread t;
  t.start();
  t.join();
  EXPECT_FALSE(t.is_alive());
}

TEST(Thread, DefaultNamesCountUp) {
  th::Thread a([] {});
  th::Thread b([] {});
  ASSERT_THAT(a.name(), StartsWith("Thread-"));
  ASSERT_THAT(b.name(), StartsWith("Thread-"));
  const long na = std::stol(a.name().substr(7));
  const long nb = std::stol(b.name().substr(7));
  EXPECT_GE(na, 1);
  EXPECT_EQ(nb, na + 1);
  th::Thread named({.name = "x"}, [] {});
  th::Thread c([] {});
  EXPECT_EQ(std::stol(c.name().substr(7)), nb + 1);  // a given name does not use a number
}

TEST(Thread, CurrentThreadInsideTargetIsTheObject) {
  th::Thread* seen = nullptr;
  std::string name;
  th::Thread t({.name = "me"}, [&] {
    seen = &th::current_thread();
    name = th::current_thread().name();
  });
  t.start();
  t.join();
  EXPECT_EQ(seen, &t);
  EXPECT_EQ(name, "me");
}

// CPython ThreadingExceptionTests
TEST(ThreadingExceptionTests, StartTwice) {
  th::Thread t([] {});
  t.start();
  try {
    t.start();
    FAIL() << "no exception";
  } catch (const concur::RuntimeError& e) {
    EXPECT_STREQ(e.what(), "threads can only be started once");
  }
  t.join();
  EXPECT_THROW(t.start(), concur::RuntimeError);  // also after it finished
}

TEST(ThreadingExceptionTests, JoinUnstarted) {
  th::Thread t([] {});
  try {
    t.join();
    FAIL() << "no exception";
  } catch (const concur::RuntimeError& e) {
    EXPECT_STREQ(e.what(), "cannot join thread before it is started");
  }
  EXPECT_THROW((void)t.join(10ms), concur::RuntimeError);
}

TEST(ThreadingExceptionTests, JoinCurrentThread) {
  std::string msg;
  bool timed_threw = false;
  th::Thread t([&] {
    try {
      th::current_thread().join();
    } catch (const concur::RuntimeError& e) {
      msg = e.what();
    }
    try {
      (void)th::current_thread().join(1ms);
    } catch (const concur::RuntimeError&) {
      timed_threw = true;
    }
  });
  t.start();
  t.join();
  EXPECT_EQ(msg, "cannot join current thread");
  EXPECT_TRUE(timed_threw);
  EXPECT_THROW(th::main_thread().join(), concur::RuntimeError);  // we are the main thread
}

TEST(ThreadingExceptionTests, DaemonizeActiveThread) {
  Event go;
  th::Thread t([&] { go.wait(); });
  t.set_daemon(true);  // fine before start
  EXPECT_TRUE(t.daemon());
  t.start();
  try {
    t.set_daemon(false);
    FAIL() << "no exception";
  } catch (const concur::RuntimeError& e) {
    EXPECT_STREQ(e.what(), "cannot set daemon status of active thread");
  }
  go.set();
  t.join();
  EXPECT_THROW(t.set_daemon(false), concur::RuntimeError);  // still "started" once stopped
  EXPECT_THROW(th::main_thread().set_daemon(true), concur::RuntimeError);
}

TEST(Thread, DaemonInheritedFromCreatingThread) {
  EXPECT_FALSE(th::current_thread().daemon());
  th::Thread plain([] {});
  EXPECT_FALSE(plain.daemon());
  bool inner_daemon = false, inner_explicit = true;
  th::Thread d({.daemon = true}, [&] {
    th::Thread inner([] {});
    th::Thread explicit_no({.daemon = false}, [] {});
    inner_daemon = inner.daemon();
    inner_explicit = explicit_no.daemon();
  });
  d.start();
  d.join();
  EXPECT_TRUE(inner_daemon);
  EXPECT_FALSE(inner_explicit);
}

TEST(Thread, IdentAndNativeId) {
  th::Thread t([] {});
  EXPECT_FALSE(t.ident().has_value());
  EXPECT_FALSE(t.native_id().has_value());
  std::uint64_t inside_ident = 0;
  pid_t inside_tid = 0;
  th::Thread u([&] {
    inside_ident = th::get_ident();
    inside_tid = th::get_native_id();
  });
  u.start();
  ASSERT_TRUE(u.ident().has_value());
  ASSERT_TRUE(u.native_id().has_value());
  const auto id = *u.ident();
  const auto nid = *u.native_id();
  u.join();
  EXPECT_EQ(id, inside_ident);
  EXPECT_EQ(nid, inside_tid);
  EXPECT_NE(nid, ::getpid());
  EXPECT_EQ(u.ident(), id);  // kept after the thread ended, as in Python
  EXPECT_EQ(th::main_thread().native_id(), ::getpid());
  EXPECT_EQ(th::get_native_id(), ::getpid());
  EXPECT_EQ(th::main_thread().ident(), th::get_ident());
}

TEST(Thread, JoinWithTimeoutAndIsAlive) {
  Event go;
  th::Thread t([&] { go.wait(); });
  EXPECT_FALSE(t.is_alive());
  t.start();
  EXPECT_TRUE(t.is_alive());
  EXPECT_FALSE(t.join(50ms));
  EXPECT_FALSE(t.join(-1s));  // negative: no wait
  EXPECT_TRUE(t.is_alive());
  go.set();
  EXPECT_TRUE(t.join(30s));
  EXPECT_FALSE(t.is_alive());
  EXPECT_TRUE(t.join(0ms));
  t.join();  // joining again is fine
}

TEST(Thread, ManyJoinersAtOnce) {
  Event go;
  th::Thread t([&] { go.wait(); });
  t.start();
  std::atomic<int> joined{0};
  std::vector<std::thread> joiners;
  for (int i = 0; i < 4; ++i)
    joiners.emplace_back([&, i] {
      if (i % 2) t.join(); else (void)t.join(30s);
      EXPECT_FALSE(t.is_alive());
      ++joined;
    });
  go.set();
  for (auto& j : joiners) j.join();
  EXPECT_EQ(joined.load(), 4);
}

TEST(Thread, MainThreadAndCurrentThread) {
  EXPECT_EQ(th::main_thread().name(), "MainThread");
  EXPECT_EQ(&th::current_thread(), &th::main_thread());
  EXPECT_TRUE(th::main_thread().is_alive());
  EXPECT_FALSE(th::main_thread().daemon());
  th::Thread* main_seen = nullptr;
  th::Thread t([&] { main_seen = &th::main_thread(); });
  t.start();
  t.join();
  EXPECT_EQ(main_seen, &th::main_thread());
}

TEST(Thread, ActiveCountAndEnumerate) {
  const std::size_t before = th::active_count();
  Event go;
  th::Thread t({.name = "listed"}, [&] { go.wait(); });
  t.start();
  EXPECT_EQ(th::active_count(), before + 1);
  auto all = th::enumerate();
  ASSERT_EQ(all.size(), before + 1);
  EXPECT_EQ(all.front(), &th::main_thread());
  EXPECT_NE(std::find(all.begin(), all.end(), &t), all.end());
  go.set();
  t.join();
  EXPECT_EQ(th::active_count(), before);
  all = th::enumerate();
  EXPECT_EQ(std::find(all.begin(), all.end(), &t), all.end());
}

TEST(Thread, ForeignThreadGetsDummy) {
  const std::size_t before = th::active_count();
  std::string name, repr;
  bool daemon = false;
  std::size_t during = 0;
  th::Thread* p1 = nullptr;
  th::Thread* p2 = nullptr;
  std::thread s([&] {
    p1 = &th::current_thread();
    p2 = &th::current_thread();
    name = p1->name();
    daemon = p1->daemon();
    during = th::active_count();
    repr = th::to_string(*p1);
  });
  s.join();
  EXPECT_THAT(name, StartsWith("Dummy-"));
  EXPECT_EQ(p1, p2);
  EXPECT_TRUE(daemon);
  EXPECT_EQ(during, before + 1);
  EXPECT_THAT(repr, StartsWith("<_DummyThread(Dummy-"));
  EXPECT_THAT(repr, HasSubstr("started daemon"));
  EXPECT_EQ(th::active_count(), before);  // removed when that thread exited
}

TEST(Thread, ThreadsCreatedByADummyAreDaemon) {
  bool daemon = false;
  std::thread s([&] {
    th::Thread t([] {});
    daemon = t.daemon();  // Python: a _DummyThread is daemonic, and the flag is inherited
  });
  s.join();
  EXPECT_TRUE(daemon);
}

struct Thrower : th::Thread {
  Thrower() : Thread({.name = "thrower"}) {}
  void run() override { throw concur::KeyError("missing"); }
};

TEST(Excepthook, SubclassRunExceptionToo) {
  std::string type, name;
  th::set_excepthook([&](const th::ExceptHookArgs& a) {
    type = a.exc_type;
    name = a.thread->name();
  });
  Thrower t;
  t.start();
  t.join();
  th::set_excepthook({});
  EXPECT_EQ(type, "concur::KeyError");
  EXPECT_EQ(name, "thrower");
}

TEST(Excepthook, GetReturnsInstalledOrDefault) {
  EXPECT_TRUE(static_cast<bool>(th::get_excepthook()));
  int calls = 0;
  th::set_excepthook([&](const th::ExceptHookArgs&) { ++calls; });
  th::get_excepthook()(th::ExceptHookArgs{});
  th::set_excepthook({});
  EXPECT_EQ(calls, 1);
  testing::internal::CaptureStderr();
  th::ExceptHookArgs args;
  args.exc_type = "X";
  args.what = "y";
  th::get_excepthook()(args);  // the default again; no thread given: the caller's name
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "Exception in thread MainThread:\nX: y\n");
}

TEST(Thread, NamesReachTheOs) {
  Event named, go;
  pid_t tid = 0;
  th::Thread t({.name = "a-very-long-thread-name"}, [&] {
    tid = th::get_native_id();
    named.set();
    go.wait();
  });
  t.start();
  named.wait();
  EXPECT_EQ(comm_of(tid), "a-very-long-thr");  // first 15 bytes
  t.set_name("renamed");
  EXPECT_EQ(t.name(), "renamed");
  EXPECT_EQ(comm_of(tid), "renamed");
  go.set();
  t.join();
  t.set_name("after");  // no OS thread any more: only the object changes
  EXPECT_EQ(t.name(), "after");
}

TEST(Thread, SetNameFromInsideReachesOs) {
  std::string comm;
  th::Thread t([&] {
    th::current_thread().set_name("inside");
    comm = comm_of(th::get_native_id());
  });
  t.start();
  t.join();
  EXPECT_EQ(comm, "inside");
  EXPECT_EQ(t.name(), "inside");
}

TEST(Thread, Repr) {
  Event go;
  th::Thread t({.name = "r"}, [&] { go.wait(); });
  EXPECT_EQ(th::to_string(t), "<Thread(r, initial)>");
  t.start();
  const std::string id = std::to_string(*t.ident());
  EXPECT_EQ(th::to_string(t), "<Thread(r, started " + id + ")>");
  go.set();
  t.join();
  std::ostringstream os;
  os << t;
  EXPECT_EQ(os.str(), "<Thread(r, stopped " + id + ")>");
  th::Thread d({.name = "d", .daemon = true}, [] {});
  EXPECT_EQ(th::to_string(d), "<Thread(d, initial daemon)>");
  EXPECT_EQ(th::to_string(th::main_thread()),
            "<_MainThread(MainThread, started " + std::to_string(th::get_ident()) + ")>");
  Worker w(1);
  EXPECT_EQ(th::to_string(w), "<Worker(sub, initial)>");
}

TEST(Excepthook, ReceivesTypeWhatAndThreadAndJoinDoesNotRethrow) {
  std::vector<th::ExceptHookArgs> got;
  std::mutex mu;
  th::set_excepthook([&](const th::ExceptHookArgs& a) {
    std::lock_guard g(mu);
    got.push_back(a);
  });
  th::Thread t({.name = "bad"}, [] { throw concur::ValueError("bad value"); });
  t.start();
  EXPECT_NO_THROW(t.join());
  th::Thread u([] { throw 42; });
  u.start();
  u.join();
  th::set_excepthook({});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].exc_type, "concur::ValueError");
  EXPECT_EQ(got[0].what, "bad value");
  EXPECT_EQ(got[0].thread, &t);
  EXPECT_THROW(std::rethrow_exception(got[0].exc_value), concur::ValueError);
  EXPECT_EQ(got[1].exc_type, "unknown exception");
  EXPECT_EQ(got[1].thread, &u);
  EXPECT_FALSE(t.is_alive());
}

TEST(Excepthook, DefaultPrintsToStderr) {
  testing::internal::CaptureStderr();
  th::Thread t({.name = "boom-thread"}, [] { throw std::out_of_range("index 9"); });
  t.start();
  t.join();
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, "Exception in thread boom-thread:\nstd::out_of_range: index 9\n");
}

TEST(Excepthook, FailingHookFallsBackToDefault) {
  th::set_excepthook([](const th::ExceptHookArgs&) { throw std::runtime_error("hook broke"); });
  testing::internal::CaptureStderr();
  th::Thread t({.name = "w"}, [] { throw std::logic_error("first"); });
  t.start();
  t.join();
  const std::string err = testing::internal::GetCapturedStderr();
  th::set_excepthook({});
  EXPECT_EQ(err,
            "Exception in threading.excepthook:\nstd::runtime_error: hook broke\n"
            "Exception in thread w:\nstd::logic_error: first\n");
}

TEST(Thread, DestroyingRunningTargetThreadLetsItFinish) {
  Event go, done;
  std::atomic<bool> ran{false};
  std::string name_after;
  th::Thread* current_after = nullptr;
  const std::size_t before = th::active_count();
  {
    th::Thread t({.name = "orphan"}, [&] {
      go.wait();
      name_after = th::current_thread().name();
      current_after = &th::current_thread();
      ran = true;
      done.set();
    });
    t.start();
  }  // ~Thread while the thread is blocked: it is adopted, not joined, not killed
  EXPECT_EQ(th::active_count(), before + 1);
  go.set();
  done.wait();
  EXPECT_TRUE(ran.load());
  EXPECT_EQ(name_after, "orphan");
  EXPECT_NE(current_after, nullptr);
  for (int i = 0; i < 2000 && th::active_count() != before; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(th::active_count(), before);
}

std::atomic<bool> slow_worker_finished{false};
// run() uses no member, so it may outlive the derived part (see thread.hpp's banner).
struct SlowWorker : th::Thread {
  void run() override {
    std::this_thread::sleep_for(50ms);
    slow_worker_finished = true;
  }
};

TEST(Thread, DestroyingRunningSubclassThreadJoinsIt) {
  {
    SlowWorker w;
    w.start();
  }  // ~Thread joins; the subclass's run() ran even if the thread started late
  EXPECT_TRUE(slow_worker_finished.load());
}

TEST(Thread, ThreadsRunInParallelAndAllResultsArrive) {
  constexpr int kThreads = 8;
  std::vector<long> results(kThreads);
  std::vector<std::unique_ptr<th::Thread>> ts;
  for (int i = 0; i < kThreads; ++i)
    ts.push_back(std::make_unique<th::Thread>([&results, i] {
      long s = 0;
      for (int k = 0; k <= 1000 * i; ++k) s += k;
      results[static_cast<std::size_t>(i)] = s;
    }));
  for (auto& t : ts) t->start();
  for (auto& t : ts) t->join();
  for (int i = 0; i < kThreads; ++i) {
    const long n = 1000L * i;
    EXPECT_EQ(results[static_cast<std::size_t>(i)], n * (n + 1) / 2);
  }
}

TEST(Thread, StackSize) {
  EXPECT_EQ(th::stack_size(), 0u);
  try {
    (void)th::stack_size(1000);
    FAIL() << "no exception";
  } catch (const concur::ValueError& e) {
    EXPECT_STREQ(e.what(), "size not valid: 1000 bytes");
  }
  EXPECT_EQ(th::stack_size(256 * 1024), 0u);
  std::size_t seen = 0;
  th::Thread t([&] {
    pthread_attr_t attr;
    pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstacksize(&attr, &seen);
    pthread_attr_destroy(&attr);
  });
  t.start();
  t.join();
  EXPECT_EQ(th::stack_size(0), 256u * 1024);
  EXPECT_GE(seen, 256u * 1024);  // sanitizers add their own reserve on top
  EXPECT_LT(seen, 8u << 20);     // and not the 8 MiB default
}

TEST(Thread, StartFailureIsRuntimeErrorAndRetryable) {
  const std::size_t before = th::active_count();
  (void)th::stack_size(std::size_t{1} << 46);  // 64 TiB: no stack can be mapped
  std::atomic<int> ran{0};
  th::Thread t([&] { ++ran; });
  try {
    t.start();
    FAIL() << "no exception";
  } catch (const concur::RuntimeError& e) {
    EXPECT_STREQ(e.what(), "can't start new thread");
  }
  (void)th::stack_size(0);
  EXPECT_FALSE(t.is_alive());
  EXPECT_FALSE(t.ident().has_value());
  EXPECT_EQ(th::active_count(), before);
  t.start();  // a failed start did not count
  t.join();
  EXPECT_EQ(ran.load(), 1);
}

TEST(Thread, RegistryUnderConcurrentStartsAndEnumerates) {
  const std::size_t before = th::active_count();
  std::atomic<bool> stop{false};
  std::atomic<long> ran{0};
  std::thread observer([&] {
    // Only the list itself: the creators destroy their Thread objects right after join, so
    // dereferencing another thread's pointer here would be a use-after-free by contract.
    while (!stop.load()) {
      for (th::Thread* t : th::enumerate()) EXPECT_NE(t, nullptr);
      EXPECT_GE(th::active_count(), 1u);
    }
  });
  std::vector<std::thread> creators;
  for (int c = 0; c < 3; ++c)
    creators.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        th::Thread t([&] { ++ran; });
        t.start();
        if (i % 2) t.join(); else (void)t.join(std::chrono::seconds(30));
      }
    });
  for (auto& c : creators) c.join();
  stop = true;
  observer.join();
  EXPECT_EQ(ran.load(), 300);
  EXPECT_EQ(th::active_count(), before);
}

// ---- behaviour at process exit, run in a re-executed copy of this binary ----

const char* child_mode() {
  const char* m = std::getenv("CONCUR_THREAD_CHILD");
  return m ? m : "";
}

void say(const char* s) { (void)!::write(1, s, std::strlen(s)); }

TEST(ThreadChild, Body) {
  const std::string mode = child_mode();
  if (mode.empty()) GTEST_SKIP() << "only runs as a child of the ThreadJoinOnShutdown tests";
  if (mode == "join_on_shutdown") {
    // CPython test_1_join_on_shutdown: main ends, the non-daemon thread still finishes.
    static th::Thread t([] {
      std::this_thread::sleep_for(200ms);
      say("end of thread\n");
    });
    t.start();
    say("end of main\n");
  } else if (mode == "dropped_object") {
    th::Thread t([] {
      std::this_thread::sleep_for(200ms);
      say("end of dropped thread\n");
    });
    t.start();
    say("end of main\n");
  } else if (mode == "daemon") {
    th::Thread t({.daemon = true}, [] {
      std::this_thread::sleep_for(20s);
      say("daemon finished\n");
    });
    t.start();
    say("end of main\n");
  } else if (mode == "exit_call") {
    static th::Thread t([] {
      std::this_thread::sleep_for(200ms);
      say("end of thread\n");
    });
    t.start();
    say("calling exit\n");
    std::exit(3);
  } else if (mode == "exit_from_thread" || mode == "mp_exit_from_thread") {
    // std::exit (or mp::exit) called on a non-main concur thread: the exit join must not
    // wait for the calling thread itself, and still joins the other non-daemon threads.
    // Leaked, not static: exit() on the other thread runs static destructors while main may
    // still be inside start().
    auto* other = new th::Thread([] {
      std::this_thread::sleep_for(100ms);
      say("end of other\n");
    });
    other->start();
    const bool use_mp = mode == "mp_exit_from_thread";
    auto* exiter = new th::Thread([use_mp] {
      say("exiting from a thread\n");
      if (use_mp) concur::multiprocessing::exit(5);
      std::exit(4);
    });
    exiter->start();
    for (;;) ::pause();  // main never returns: the thread's exit ends the program
  } else if (mode == "join_main") {
    // CPython: a non-daemon thread joining the main thread is released once main has
    // returned and the exit join started: "end of main", then "end of thread".
    static th::Thread t([] {
      th::main_thread().join();
      say("end of thread\n");
    });
    t.start();
    std::this_thread::sleep_for(50ms);
    say("end of main\n");
  } else if (mode == "spawns_more") {
    // A non-daemon thread started while the exit join is already waiting is joined too.
    static th::Thread t([] {
      std::this_thread::sleep_for(100ms);
      static th::Thread inner([] {
        std::this_thread::sleep_for(100ms);
        say("end of inner\n");
      });
      inner.start();
      say("end of outer\n");
    });
    t.start();
    say("end of main\n");
  }
}

// Runs a ThreadChild mode that must exit 0 and print "end of main" before "end of thread";
// returns the output and where "end of thread" is.
std::pair<std::string, std::size_t> run_main_then_thread(const char* mode) {
  auto r = concur_test::run_self("ThreadChild.Body", std::string("CONCUR_THREAD_CHILD=") + mode);
  EXPECT_EQ(r.exit_code(), 0) << r.output;
  const auto a = r.output.find("end of main");
  const auto b = r.output.find("end of thread");
  EXPECT_NE(a, std::string::npos) << r.output;
  EXPECT_NE(b, std::string::npos) << r.output;
  EXPECT_LT(a, b) << r.output;
  return {r.output, b};
}

TEST(ThreadJoinOnShutdown, NonDaemonThreadStillRunsAfterMainEnds) {
  const auto [out, b] = run_main_then_thread("join_on_shutdown");
  // the thread ended after gtest had finished main's work
  EXPECT_LT(out.find("PASSED"), b) << out;
}

TEST(ThreadJoinOnShutdown, DroppedThreadObjectIsStillJoined) {
  auto r = concur_test::run_self("ThreadChild.Body", "CONCUR_THREAD_CHILD=dropped_object");
  EXPECT_EQ(r.exit_code(), 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("end of dropped thread"));
}

TEST(ThreadJoinOnShutdown, DaemonThreadIsNotWaitedFor) {
  auto r = concur_test::run_self("ThreadChild.Body", "CONCUR_THREAD_CHILD=daemon");
  EXPECT_EQ(r.exit_code(), 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("end of main"));
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("daemon finished")));
}

TEST(ThreadJoinOnShutdown, ExitCallJoinsToo) {
  auto r = concur_test::run_self("ThreadChild.Body", "CONCUR_THREAD_CHILD=exit_call");
  EXPECT_EQ(r.exit_code(), 3) << r.output;
  EXPECT_LT(r.output.find("calling exit"), r.output.find("end of thread")) << r.output;
  EXPECT_NE(r.output.find("end of thread"), std::string::npos) << r.output;
}

// The thread that calls exit() is never joined (nothing can join it: the process ends on
// it), which ThreadSanitizer reports as a thread leak and turns into exit code 66.
void allow_unjoined_exit_thread() {
#if defined(__SANITIZE_THREAD__)
  const char* old = std::getenv("TSAN_OPTIONS");
  std::string opts = old ? std::string(old) + " " : std::string();
  ::setenv("TSAN_OPTIONS", (opts + "report_thread_leaks=0").c_str(), 1);
#endif
}

TEST(ThreadJoinOnShutdown, ExitFromANonMainThread) {
  allow_unjoined_exit_thread();
  auto r = concur_test::run_self("ThreadChild.Body", "CONCUR_THREAD_CHILD=exit_from_thread");
  EXPECT_EQ(r.exit_code(), 4) << r.output;
  EXPECT_THAT(r.output, HasSubstr("exiting from a thread"));
  EXPECT_THAT(r.output, HasSubstr("end of other"));
}

TEST(ThreadJoinOnShutdown, MpExitFromANonMainThread) {
  allow_unjoined_exit_thread();
  auto r = concur_test::run_self("ThreadChild.Body", "CONCUR_THREAD_CHILD=mp_exit_from_thread");
  EXPECT_EQ(r.exit_code(), 5) << r.output;
  EXPECT_THAT(r.output, HasSubstr("end of other"));
}

TEST(ThreadJoinOnShutdown, ThreadJoiningMainEndsAfterMain) {
  (void)run_main_then_thread("join_main");
}

// Python 3.13: joining a _DummyThread raises RuntimeError("cannot join a dummy thread")
// (3.11 asserted). Before: join() blocked until the foreign thread ended.
TEST(ThreadDummy, JoinRaisesInsteadOfBlocking) {
  std::atomic<th::Thread*> dummy{nullptr};
  th::Event release;
  std::thread foreign([&] {
    dummy.store(&th::current_thread());
    (void)release.wait(5s);
  });
  while (dummy.load() == nullptr) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(dummy.load()->is_alive());
  try {
    dummy.load()->join();
    ADD_FAILURE() << "join() of a dummy thread returned";
  } catch (const concur::RuntimeError& e) {
    EXPECT_STREQ(e.what(), "cannot join a dummy thread");
  }
  EXPECT_THROW((void)dummy.load()->join(10ms), concur::RuntimeError);
  release.set();
  foreign.join();
}

TEST(ThreadJoinOnShutdown, ThreadsStartedDuringShutdownAreJoined) {
  auto r = concur_test::run_self("ThreadChild.Body", "CONCUR_THREAD_CHILD=spawns_more");
  EXPECT_EQ(r.exit_code(), 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("end of outer"));
  EXPECT_THAT(r.output, HasSubstr("end of inner"));
}

}  // namespace
