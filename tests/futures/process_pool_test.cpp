// concur-test: timeout=120
// ProcessPoolExecutor: submit/map/shutdown, exceptions, recycling, initializer failure,
// self-healing after worker crashes. Runs under TSan: the fork server and the workers never
// start threads (the pool's manager thread starts after the fork server is forked).
#include "concur/futures/process_pool.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../multiprocessing/process_util.hpp"
#include "concur/errors.hpp"
#include "concur/logging.hpp"
#include "concur/multiprocessing/process.hpp"
#include "concur/threading/lock.hpp"

namespace fut = concur::futures;
using namespace std::chrono_literals;

namespace {

int square(int x) {
  return x * x;
}
long cube(long x) {
  return x * x * x;
}
std::string greet(std::string who, int n) {
  return "hello " + who + " " + std::to_string(n);
}
int pid_of_worker(int) {
  return ::getpid();
}
int throw_out_of_range(int) {
  throw std::out_of_range("index 7");
}
int throw_value_error(int) {
  throw concur::ValueError("bad value");
}
struct MyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
int throw_mine(int) {
  throw MyError("mine");
}
int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
int die(int how) {
  if (how == 1) ::raise(SIGKILL);
  if (how == 2) {
    ::signal(SIGSEGV, SIG_DFL);  // a sanitizer's handler would turn it into exit(1)
    ::raise(SIGSEGV);
  }
  if (how == 3) ::_exit(3);
  if (how == 4) ::raise(SIGABRT);
  return how;
}

// g_gate points into a shared page made before the pool is built (so the workers, forked from
// the fork server made at construction, share it): [0] opens the gate, [1] counts the tasks
// that have begun waiting at it.
std::atomic<int>* g_gate = nullptr;
int wait_for_gate(int v) {
  g_gate[1].fetch_add(1);  // started
  for (int i = 0; i < 30000 && g_gate->load() == 0; ++i)
    std::this_thread::sleep_for(1ms);  // bounded: never a hang
  return v;
}

struct Point {
  double x = 0, y = 0;
};

// A functor with a codec-serializable capture.
struct Prefix {
  std::string p;
  std::string operator()(const std::string& s) const { return p + s; }
  template <class A>
  void serialize(A& ar) {
    ar(p);
  }
};

template <class T>
std::string error_text(fut::Future<T>& f) {
  try {
    (void)f.result();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ProcessPool, SubmitFunctionsLambdasFunctors) {
  fut::ProcessPoolExecutor ex(2);
  EXPECT_EQ(ex.max_workers(), 2);
  auto a = ex.submit(square, 7);
  auto b = ex.submit(&cube, 3L);
  const int k = 10;
  auto c = ex.submit([k](int x) { return x + k; }, 5);
  auto d = ex.submit(greet, std::string("world"), 3);
  auto e = ex.submit(Prefix{"<<"}, std::string("x"));
  auto f = ex.submit([](Point p) { return p.x + p.y; }, Point{1.5, 2.0});
  auto g = ex.submit([] {});
  auto h = ex.submit(
      [](std::vector<int> v) {
        long s = 0;
        for (int x : v) s += x;
        return s;
      },
      std::vector<int>{1, 2, 3, 4});
  EXPECT_EQ(a.result(), 49);
  EXPECT_EQ(b.result(), 27);
  EXPECT_EQ(c.result(), 15);
  EXPECT_EQ(d.result(), "hello world 3");
  EXPECT_EQ(e.result(), "<<x");
  EXPECT_DOUBLE_EQ(f.result(), 3.5);
  g.result();
  EXPECT_EQ(h.result(), 10);
  // The work really ran in other processes.
  EXPECT_NE(ex.submit(pid_of_worker, 0).result(), ::getpid());
}

TEST(ProcessPool, ExceptionsKeepTheirTypes) {
  fut::ProcessPoolExecutor ex(2);
  auto a = ex.submit(throw_out_of_range, 0);
  auto b = ex.submit(throw_value_error, 0);
  auto c = ex.submit(throw_mine, 0);
  EXPECT_THROW(a.result(), std::out_of_range);
  EXPECT_EQ(error_text(a), "index 7");
  EXPECT_THROW(b.result(), concur::ValueError);
  EXPECT_EQ(error_text(b), "bad value");
  try {
    c.result();
    FAIL();
  } catch (const concur::RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("mine"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("MyError"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ex.submit(square, 3).result(), 9);  // still healthy
}

TEST(ProcessPool, MapOrderChunksEmptyAndTimeouts) {
  fut::ProcessPoolExecutor ex(2);
  std::vector<int> in(1000);
  for (int i = 0; i < 1000; ++i) in[static_cast<std::size_t>(i)] = i;
  for (std::size_t cs : {1, 3, 7, 100, 1000, 5000}) {
    std::vector<int> out;
    for (int r : ex.map(square, in, {.chunksize = cs})) out.push_back(r);
    ASSERT_EQ(out.size(), in.size()) << cs;
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(out[static_cast<std::size_t>(i)], i * i) << cs;
  }
  // A bounded window of chunks in flight.
  std::vector<int> out;
  for (int r : ex.map(square, in, {.chunksize = 10, .buffersize = 2})) out.push_back(r);
  EXPECT_EQ(out.size(), 1000u);
  EXPECT_EQ(out[999], 999 * 999);
  std::vector<int> empty;
  EXPECT_TRUE(ex.map(square, empty).to_vector().empty());
  EXPECT_THROW((void)ex.map(square, in, {.chunksize = 0}), concur::ValueError);
  // A chunk's exception is thrown at its position; earlier results are delivered.
  std::vector<int> mixed{1, 2, 3};
  auto r = ex.map([](int x) { return x == 2 ? throw_value_error(x) : x; }, mixed);
  auto it = r.begin();
  EXPECT_EQ(*it, 1);
  EXPECT_THROW(++it, concur::ValueError);
  // Timeout measured from the call.
  std::vector<int> slow{1500};
  EXPECT_THROW(
      {
        for (int v : ex.map(sleep_ms, slow, {.timeout = 50ms})) (void)v;
      },
      concur::TimeoutError);
}

TEST(ProcessPool, ShutdownCancelFuturesAndAfterShutdown) {
  void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  g_gate = ::new (page) std::atomic<int>[2] { 1, 0 };  // open: the task only counts itself
  fut::ProcessPoolExecutor ex(1);
  auto first = ex.submit([](int ms) { return wait_for_gate(ms) + sleep_ms(ms) - ms; }, 300);
  while (g_gate[1].load() == 0) std::this_thread::yield();  // the worker has begun it
  std::vector<fut::Future<int>> queued;
  for (int i = 0; i < 2000; ++i) queued.push_back(ex.submit(square, i));
  ex.shutdown(true, true);
  EXPECT_EQ(first.result(), 300);
  int cancelled = 0;
  for (std::size_t i = 0; i < queued.size(); ++i) {
    ASSERT_TRUE(queued[i].done());
    if (queued[i].cancelled())
      ++cancelled;
    else
      EXPECT_EQ(queued[i].result(), static_cast<int>(i * i));
  }
  // Also the tasks already written to the worker behind `first` (the send-ahead window) are
  // cancelled: the worker skips them. Only tasks it started after `first` could complete.
  EXPECT_GE(cancelled, 1990);
  EXPECT_THROW((void)ex.submit(square, 1), concur::RuntimeError);
  try {
    (void)ex.submit(square, 1);
  } catch (const concur::RuntimeError& e) {
    EXPECT_STREQ(e.what(), "cannot schedule new futures after shutdown");
  }
  ::munmap(page, 4096);
  g_gate = nullptr;
}

TEST(ProcessPool, ShutdownWithoutCancelRunsEverything) {
  std::vector<fut::Future<int>> fs;
  {
    fut::ProcessPoolExecutor ex(2);
    for (int i = 0; i < 500; ++i) fs.push_back(ex.submit(square, i));
    ex.shutdown(false);
  }  // the destructor waits
  for (int i = 0; i < 500; ++i) EXPECT_EQ(fs[static_cast<std::size_t>(i)].result(), i * i);
}

TEST(ProcessPool, MaxTasksPerChildRecyclesWorkers) {
  fut::ProcessPoolExecutor ex(2, {.max_tasks_per_child = 3});
  std::set<int> pids;
  for (int i = 0; i < 30; ++i) pids.insert(ex.submit(pid_of_worker, i).result());
  EXPECT_GE(pids.size(), 10u);           // 30 tasks, at most 3 per worker process
  EXPECT_EQ(ex.replaced_workers(), 0u);  // recycling is not a crash
  EXPECT_THROW(fut::ProcessPoolExecutor(2, {.max_tasks_per_child = 0}), concur::ValueError);
  EXPECT_THROW(fut::ProcessPoolExecutor(0), concur::ValueError);
}

TEST(ProcessPool, InitializerRunsInEveryWorker) {
  static int g_value = 0;
  fut::ProcessPoolExecutor ex(2, {.initializer = [] { g_value = 42; }});
  for (int i = 0; i < 8; ++i) EXPECT_EQ(ex.submit([](int) { return g_value; }, i).result(), 42);
  EXPECT_EQ(g_value, 0);  // not in the parent
}

TEST(ProcessPool, InitializerFailureBreaksThePool) {
  fut::ProcessPoolExecutor ex(2, {.initializer = [] { throw concur::ValueError("no init"); }});
  // The workers may fail before or after the submit: the error comes from the future or
  // from submit() itself, and names the initializer's exception either way.
  std::string why;
  try {
    auto f = ex.submit(square, 2);
    EXPECT_THROW(f.result(), fut::BrokenProcessPool);
    why = error_text(f);
  } catch (const fut::BrokenProcessPool& e) {
    why = e.what();
  }
  EXPECT_NE(why.find("no init"), std::string::npos) << why;
  EXPECT_THROW((void)ex.submit(square, 2), fut::BrokenProcessPool);
}

TEST(ProcessPool, DeadWorkerFailsOnlyItsTasksAndIsReplaced) {
  struct Case {
    int how;
    const char* text;
  };
  for (Case c : {Case{1, "SIGKILL"}, Case{2, "SIGSEGV"}, Case{3, "exited with code 3"},
                 Case{4, "SIGABRT"}}) {
    fut::ProcessPoolExecutor ex(2);
    std::vector<fut::Future<int>> before, after;
    for (int i = 0; i < 50; ++i) before.push_back(ex.submit(square, i));
    for (auto& f : before) f.wait();
    auto crash = ex.submit(die, c.how);
    for (int i = 0; i < 200; ++i) after.push_back(ex.submit(square, i));
    EXPECT_THROW(crash.result(), fut::BrokenProcessPool);
    const std::string why = error_text(crash);
    EXPECT_NE(why.find(c.text), std::string::npos) << why;
    for (auto& f : before) EXPECT_NO_THROW(f.result());
    int failed = 0;
    for (std::size_t i = 0; i < after.size(); ++i) {
      try {
        EXPECT_EQ(after[i].result(), static_cast<int>(i * i));
      } catch (const fut::BrokenProcessPool&) {
        ++failed;  // only tasks the dead worker had already started
      }
    }
    EXPECT_LE(failed, 512);
    // Healthy afterwards, with a replacement worker.
    for (int i = 0; i < 20; ++i) EXPECT_EQ(ex.submit(square, i).result(), i * i);
    // The replacement is reported by the manager thread just after the failure: wait for it
    // (bounded), then it must be exactly one.
    for (int spin = 0; spin < 10000 && (ex.replaced_workers() < 1 || ex.worker_pids().size() < 2);
         ++spin)
      std::this_thread::sleep_for(1ms);
    EXPECT_EQ(ex.replaced_workers(), 1u);
    EXPECT_EQ(ex.worker_pids().size(), 2u);
  }
}

TEST(ProcessPool, TasksQueuedBehindACrashOnOneWorkerStillRun) {
  fut::ProcessPoolExecutor ex(1);
  // The crash is the first task the worker starts: everything behind it was received
  // but not started, and must run on the replacement.
  auto crash = ex.submit(die, 1);
  std::vector<fut::Future<int>> after;
  for (int i = 0; i < 100; ++i) after.push_back(ex.submit(square, i));
  EXPECT_THROW(crash.result(), fut::BrokenProcessPool);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(after[static_cast<std::size_t>(i)].result(), i * i);
}

// A shared page made before the pool is built: the workers (forked from the fork server,
// itself forked at construction) write into the same page the test reads.
std::atomic<int>* g_running_pid = nullptr;
int publish_pid_then_sleep(int ms) {
  g_running_pid->store(::getpid());
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

TEST(ProcessPool, KilledWorkerFailsOnlyItsRunningTaskNotItsSentAheadBatch) {
  void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  g_running_pid = ::new (page) std::atomic<int>(0);
  {
    fut::ProcessPoolExecutor ex(2);
    // Least-loaded dispatch: the first task goes to one worker, the second to the other,
    // then the batch is sent ahead to both (each already has work).
    auto victim = ex.submit(publish_pid_then_sleep, 5000);
    auto other = ex.submit(sleep_ms, 200);
    std::vector<fut::Future<int>> batch;
    for (int i = 0; i < 64; ++i) batch.push_back(ex.submit(square, i));
    while (g_running_pid->load() == 0) std::this_thread::sleep_for(1ms);
    const int pid = g_running_pid->load();
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    EXPECT_THROW(victim.result(), fut::BrokenProcessPool);
    const std::string why = error_text(victim);
    EXPECT_NE(why.find("SIGKILL"), std::string::npos) << why;
    EXPECT_NE(why.find(std::to_string(pid)), std::string::npos) << why;
    EXPECT_EQ(other.result(), 200);
    // Every task of the batch completes with its value, also the ones that had been written
    // to the killed worker's socket behind its running task (they run on the other worker
    // or on the replacement).
    for (int i = 0; i < 64; ++i) EXPECT_EQ(batch[static_cast<std::size_t>(i)].result(), i * i);
    EXPECT_EQ(ex.submit(square, 9).result(), 81);
  }
  ::munmap(page, 4096);
  g_running_pid = nullptr;
}

// A worker batches its results while further tasks are readable. Tasks it had finished
// before it died keep their results (they are kept in the worker's shared spill area until
// written): only the task that was running fails. Before the spill area, the gate task and
// the 40 squares in front of the crash failed with BrokenProcessPool, for every crash kind.
TEST(ProcessPool, ResultsFinishedBeforeACrashAreKept) {
  void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  for (const int how : {1, 2, 3}) {
    g_gate = ::new (page) std::atomic<int>[2] { 0, 0 };
    fut::ProcessPoolExecutor ex(1);
    auto gate = ex.submit(wait_for_gate, 7);
    while (g_gate[1].load() < 1) std::this_thread::sleep_for(1ms);  // the worker is busy
    std::vector<fut::Future<int>> before, after;
    for (int i = 0; i < 40; ++i) before.push_back(ex.submit(square, i));
    auto crash = ex.submit(die, how);
    for (int i = 0; i < 40; ++i) after.push_back(ex.submit(square, 100 + i));
    // Everything is written ahead to the one worker before it leaves the gate task.
    for (auto& f : after)
      while (!f.running() && !f.done()) std::this_thread::sleep_for(100us);
    g_gate->store(1);
    EXPECT_EQ(gate.result(), 7) << "crash kind " << how;
    for (int i = 0; i < 40; ++i)
      EXPECT_EQ(before[static_cast<std::size_t>(i)].result(), i * i) << "crash kind " << how;
    EXPECT_THROW(crash.result(), fut::BrokenProcessPool);
    const std::string why = error_text(crash);
    const char* expect = how == 1 ? "SIGKILL" : how == 2 ? "SIGSEGV" : "exited with code 3";
    EXPECT_NE(why.find(expect), std::string::npos) << why;
    for (int i = 0; i < 40; ++i)
      EXPECT_EQ(after[static_cast<std::size_t>(i)].result(), (100 + i) * (100 + i));
    EXPECT_EQ(ex.replaced_workers(), 1u);
  }
  ::munmap(page, 4096);
  g_gate = nullptr;
}

TEST(ProcessPool, ShutdownCancelFuturesCancelsTasksSentAheadNotStarted) {
  void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  g_gate = ::new (page) std::atomic<int>[2] { 0, 0 };
  {
    fut::ProcessPoolExecutor ex(2);
    auto a = ex.submit(wait_for_gate, 1);
    auto b = ex.submit(wait_for_gate, 2);
    std::vector<fut::Future<int>> ahead;
    for (int i = 0; i < 200; ++i) ahead.push_back(ex.submit(square, i));
    // Both workers have work: the 200 are written ahead to them (RUNNING, as Python marks
    // the futures it moves to its call queue), none has started.
    for (auto& f : ahead)
      while (!f.running() && !f.done()) std::this_thread::sleep_for(100us);
    for (auto& f : ahead) EXPECT_TRUE(f.running());
    while (g_gate[1].load() < 2) std::this_thread::sleep_for(1ms);  // a and b have started
    ex.shutdown(false, true);
    for (auto& f : ahead) f.wait();  // the manager withdraws them just after shutdown()
    for (auto& f : ahead) {
      EXPECT_TRUE(f.cancelled());
      EXPECT_THROW((void)f.result(), fut::CancelledError);
    }
    EXPECT_TRUE(a.running());  // running tasks are not cancelled
    g_gate->store(1);
    EXPECT_EQ(a.result(), 1);
    EXPECT_EQ(b.result(), 2);
    ex.shutdown(true);
    EXPECT_EQ(ex.replaced_workers(), 0u);
  }
  ::munmap(page, 4096);
  g_gate = nullptr;
}

TEST(ProcessPool, RandomKillsDuringMapAndShutdownNeverHang) {
  std::mt19937 rng(20261202);
  for (int round = 0; round < 12; ++round) {
    std::vector<int> pids;
    {
      fut::ProcessPoolExecutor ex(2);
      std::vector<fut::Future<int>> fs;
      for (int i = 0; i < 400; ++i) fs.push_back(ex.submit(sleep_ms, i % 7 == 0 ? 1 : 0));
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 20));
      auto now = ex.worker_pids();
      if (!now.empty()) ::kill(now[rng() % now.size()], rng() % 2 ? SIGKILL : SIGSEGV);
      const bool cancel = round % 2 && round % 3 == 0;
      if (round % 2) ex.shutdown(false, cancel);
      int ok = 0, broken = 0, cancelled = 0;
      for (auto& f : fs) {
        f.wait();
        if (f.cancelled()) {
          ++cancelled;
          continue;
        }
        try {
          (void)f.result();
          ++ok;
        } catch (const fut::BrokenProcessPool&) {
          ++broken;
        }
      }
      EXPECT_EQ(ok + broken + cancelled, 400);
      // One kill fails at most the one task its worker was running: the tasks it had
      // finished keep their results (also those not written back yet) and the ones it had
      // not started run elsewhere.
      EXPECT_LE(broken, 1) << "round " << round;
      // shutdown(cancel_futures) may cancel every task not begun (also those written ahead
      // to a worker), so only without it must some have run.
      if (!cancel) {
        EXPECT_GT(ok, 0);
        EXPECT_EQ(cancelled, 0);
      }
      pids = ex.worker_pids();
    }
    for (int p : pids) EXPECT_FALSE(ptest::pid_exists(p)) << p;
  }
}

TEST(ProcessPool, NothingLeftBehind) {
  const int fds = ptest::count_fds();
  std::vector<int> pids;
  {
    fut::ProcessPoolExecutor ex(2);
    for (int i = 0; i < 10; ++i) (void)ex.submit(square, i).result();
    auto crash = ex.submit(die, 1);
    crash.wait();
    for (int i = 0; i < 10; ++i) (void)ex.submit(square, i).result();
    pids = ex.worker_pids();
  }
  EXPECT_EQ(ptest::count_fds(), fds);
  EXPECT_FALSE(ptest::has_zombie_child());
  for (int p : pids) EXPECT_FALSE(ptest::pid_exists(p));
}

TEST(ProcessPool, BusyParentWithLockedLocks) {
  // Other threads hold locks and allocate while the pool starts and replaces workers.
  concur::threading::Lock held;
  held.acquire();
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int t = 0; t < 3; ++t)
    busy.emplace_back([&] {
      while (!stop.load()) {
        std::vector<std::string> v(50, std::string(100, 'x'));
        (void)v;
      }
    });
  {
    fut::ProcessPoolExecutor ex(2);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(ex.submit(square, i).result(), i * i);
    auto crash = ex.submit(die, 1);
    crash.wait();
    for (int i = 0; i < 100; ++i) EXPECT_EQ(ex.submit(square, i).result(), i * i);
  }
  stop = true;
  for (auto& t : busy) t.join();
  held.release();
}

TEST(ProcessPool, LogToStderrShowsStartExitAndReplacement) {
  namespace logging = concur::logging;
  ptest::Pipe pipe;
  logging::Logger& lg = concur::multiprocessing::log_to_stderr(logging::Level::INFO);
  lg.set_stream(pipe.w);
  int dead = 0;
  {
    fut::ProcessPoolExecutor ex(1);
    dead = ex.submit(pid_of_worker, 0).result();
    auto crash = ex.submit(die, 1);
    crash.wait();
    EXPECT_EQ(ex.submit(square, 2).result(), 4);
  }
  lg.set_stream(2);
  lg.set_level(logging::Level::NOTSET);
  pipe.close_w();
  const std::string text = pipe.read_all();
  const std::string d = std::to_string(dead);
  EXPECT_NE(text.find("[INFO/MainProcess] ProcessPoolExecutor worker 0 started (pid " + d + ")"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ProcessPoolExecutor worker 0 (pid " + d + ") killed by SIGKILL"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ProcessPoolExecutor worker 0 replaced (pid " + d + " killed by SIGKILL)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("exited with code 0"), std::string::npos) << text;  // the clean exit
}

TEST(ProcessPool, SeveralPoolsAtOnce) {
  // Regression: a second pool's zygote and workers inherited the first pool's descriptor
  // numbers in the fork registry and closed them again after reuse (the workers' sockets):
  // every worker of the second pool died at start, forever.
  fut::ProcessPoolExecutor a(2);
  fut::ProcessPoolExecutor b(2);
  fut::ProcessPoolExecutor c(1);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(a.submit(square, i).result(), i * i);
    EXPECT_EQ(b.submit(square, i).result(), i * i);
    EXPECT_EQ(c.submit(square, i).result(), i * i);
  }
  EXPECT_EQ(b.replaced_workers(), 0u);
  EXPECT_EQ(c.replaced_workers(), 0u);
}

TEST(ProcessPool, WorksWithStdioClosed) {
  // Internal descriptors stay above 0-2: a task writing to stdout (closed here) must not
  // write into the pool's own stream.
  for (int closed : {1, -1}) {  // only stdout (the next free number), or all three
    const int status = ptest::run_copy([closed] {
      if (closed == 1) {
        ::close(1);
      } else {
        ::close(0);
        ::close(1);
        ::close(2);
      }
      bool ok = true;
      {
        fut::ProcessPoolExecutor ex(2);
        for (int i = 0; i < 50; ++i) {
          auto f = ex.submit(
              [](int x) {
                (void)!::write(1, "garbage-on-stdout", 17);
                (void)!::write(2, "garbage-on-stderr", 17);
                return x * x;
              },
              i);
          ok = ok && f.result() == i * i;
        }
        auto crash = ex.submit(die, 1);
        crash.wait();
        ok = ok && ex.submit(square, 9).result() == 81;
      }
      std::_Exit(ok ? 0 : 7);
    });
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), 0) << closed;
  }
}

namespace {
int scribble_on_own_socket(int) {
  // Hostile: write a bogus frame header (length 0x7fffffff) into the worker's own result
  // stream, as a buggy task writing to a descriptor it does not own would.
  const unsigned char bogus[8] = {0xff, 0xff, 0xff, 0x7f, 0x01, 0x02, 0x03, 0x04};
  for (int fd = 3; fd < 64; ++fd) {
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) (void)!::write(fd, bogus, sizeof bogus);
  }
  return 1;
}
}  // namespace

TEST(ProcessPool, HostileBytesInTheResultStreamKillOnlyThatWorker) {
  fut::ProcessPoolExecutor ex(2);
  auto bad = ex.submit(scribble_on_own_socket, 0);
  EXPECT_THROW(bad.result(), fut::BrokenProcessPool);  // bounded: no wait for 2 GiB
  for (int i = 0; i < 50; ++i) EXPECT_EQ(ex.submit(square, i).result(), i * i);
}
