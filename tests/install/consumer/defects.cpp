// The outside check of issue #9, built against the installed package only: each row replays
// one defect the issue reproduced from outside and asserts Python's outcome. Prints one
// line per row and "defects ok" when every row held. Rows assert outcomes, never times
// (the bounds below are generous waits for an outcome, not measurements).
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <concur/concur.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace th = concur::threading;
namespace fu = concur::futures;
namespace mp = concur::multiprocessing;
namespace sp = concur::subprocess;
namespace lg = concur::logging;
using namespace std::chrono_literals;

namespace {

const std::chrono::duration<double> kNaN(std::numeric_limits<double>::quiet_NaN());

// Runs fn in a forked child; true if the child exited 0. For rows that need a process of
// their own (closed standard fds, fork from a busy pool).
template <class F>
bool in_child(F fn) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::alarm(60);  // a hang is a failure (SIGALRM), not a stuck check
    int code = 1;
    try {
      code = fn() ? 0 : 1;
    } catch (...) {
      code = 2;
    }
    ::_exit(code);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Forks a child that runs fn with its stderr on a pipe; returns what it wrote there and its
// wait status. fn runs under alarm(60) and ends the child with _exit (its return value).
template <class F>
bool child_stderr(F fn, std::string& err, int& status) {
  int fds[2];
  if (::pipe(fds) != 0) return false;
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::alarm(60);
    ::close(fds[0]);
    ::dup2(fds[1], 2);
    ::close(fds[1]);
    int code = 1;
    try {
      code = fn() ? 0 : 1;
    } catch (...) {
      code = 2;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  ::close(fds[1]);
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      err.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  while (::waitpid(pid, &status, 0) < 0) {
  }
  return true;
}

// True once the (single-threaded) process pid sleeps in futex(2), read from /proc: the
// outcome "it is blocked inside wait()", not a guess by sleeping.
bool blocked_in_futex(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) +
                           "/syscall";
  for (int i = 0; i < 30000; ++i) {
    std::ifstream f(path);
    long nr = -1;
    if (f >> nr && nr == SYS_futex) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

// Timer(hours::max(), f) does not fire at once; cancel() stops it.
bool timer_hours_max() {
  std::atomic<bool> fired{false};
  th::Timer t(std::chrono::hours::max(), [&] { fired = true; });
  t.start();
  std::this_thread::sleep_for(100ms);
  const bool early = fired.load();
  t.cancel();
  t.join();
  return !early && !fired.load();
}

// Popen::wait(hours::max()) waits (Python: returns the code), no "timed out" error.
bool popen_wait_hours_max() {
  sp::Popen p({"true"});
  return p.wait(std::chrono::hours::max()) == 0;
}

// try_lock_until(time_point<system_clock, seconds>::max()) blocks until the holder
// releases, then succeeds (was: false at once).
bool try_lock_until_max() {
  th::Lock lock;
  lock.acquire();
  std::thread releaser([&] {
    std::this_thread::sleep_for(50ms);
    lock.release();
  });
  const bool got = lock.try_lock_until(
      std::chrono::time_point<std::chrono::system_clock, std::chrono::seconds>::max());
  releaser.join();
  if (got) lock.release();
  return got;
}

// A NaN timeout is ValueError (Python: "Invalid value NaN (not a number)").
bool nan_is_value_error() {
  int errors = 0;
  th::Lock lock;
  th::Event ev;
  try {
    (void)lock.acquire(kNaN);
  } catch (const concur::ValueError&) {
    ++errors;
  }
  try {
    (void)ev.wait(kNaN);
  } catch (const concur::ValueError&) {
    ++errors;
  }
  return errors == 2;
}

// Event.set() immediately followed by clear() wakes every waiter (Python wakes all).
bool event_set_clear_wakes_all() {
  th::Event ev;
  std::atomic<int> woken{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 5; ++i)
    ts.emplace_back([&] {
      if (ev.wait(30s)) ++woken;
    });
  std::this_thread::sleep_for(100ms);  // let them block (a late one sees set: also woken)
  ev.set();
  ev.clear();
  for (auto& t : ts) t.join();
  return woken == 5;
}

// run({""}): an OSError whose message names the (empty) file, as Python's `...: ''`
// (which errno depends on PATH: Python says PermissionError when a PATH entry is a
// directory, FileNotFoundError otherwise).
bool run_empty_program() {
  try {
    (void)sp::run({""});
  } catch (const concur::OSError& e) {
    const std::string w = e.what();
    return w.size() >= 4 && w.compare(w.size() - 4, 4, ": ''") == 0;
  }
  return false;
}

// With fds 0-2 closed, a missing program is FileNotFoundError (was returncode 127).
bool spawn_with_stdio_closed() {
  return in_child([] {
    ::close(0);
    ::close(1);
    ::close(2);
    try {
      (void)sp::run({"/nonexistent/concur-defects-program"});
    } catch (const concur::FileNotFoundError&) {
      return true;
    }
    return false;
  });
}

// With shell, executable replaces the shell (and is its $0).
bool shell_and_executable() {
  const auto cp =
      sp::run({"echo $0"}, {.capture_output = true, .shell = true, .executable = "/bin/bash"});
  return cp.out == "/bin/bash\n";
}

// A SharedMemory name containing NUL is ValueError.
bool shm_nul_name() {
  try {
    mp::SharedMemory shm(std::string("concur\0defects", 14), true, 64);
  } catch (const concur::ValueError&) {
    return true;
  }
  return false;
}

// Future's repr names the result type: "state=finished returned int".
bool future_repr() {
  fu::ThreadPoolExecutor ex(1);
  auto f = ex.submit([] { return 42; });
  (void)f.result();
  return f.repr().find("state=finished returned int") != std::string::npos;
}

// Executor.map submits eagerly: a dropped map result still runs every call (3.14).
bool map_eager() {
  std::atomic<int> calls{0};
  {
    fu::ThreadPoolExecutor ex(2);
    (void)ex.map([&](int) { ++calls; }, std::vector<int>(10, 0));
  }  // shutdown(wait): every submitted call has run
  return calls == 10;
}

// Sequential submit().result() calls reuse the idle worker (Python: one thread).
bool idle_reuse() {
  fu::ThreadPoolExecutor ex(4);
  for (int i = 0; i < 3; ++i) (void)ex.submit([] { return 1; }).result();
  return ex.num_threads() == 1;
}

// A task waiting on a future does not run other queued tasks on its own thread: a
// threading::Local set by the waiting task is not overwritten.
bool no_helping_waits() {
  fu::ThreadPoolExecutor ex(1);
  th::Local<int> local;
  auto outer = ex.submit([&] {
    local.get() = 1;
    auto inner = ex.submit([&] {
      local.get() = 2;
      return 0;
    });
    (void)inner.result(30s);
    return local.get();
  });
  return outer.result(30s) == 1;
}

// Dropping the last handle to a pool inside one of its own tasks is not a use-after-free
// and the task's result arrives.
bool drop_pool_in_task() {
  auto* ex = new fu::ThreadPoolExecutor(1);
  std::atomic<bool> ran{false};
  auto f = ex->submit([&] { ran = true; });
  f.result(30s);
  auto g = ex->submit([ex] {
    delete ex;  // shutdown(wait) from inside its own worker
    return 7;
  });
  return ran && g.result(30s) == 7;
}

// A Process started from inside a pool task does not re-run the pool's queued tasks in
// the child (each ran once, in the parent).
bool process_in_pool_task() {
  const pid_t parent = ::getpid();
  std::atomic<int> foreign{0};
  std::atomic<int> ran{0};
  int code = -1;
  {
    fu::ThreadPoolExecutor ex(1);
    auto starter = ex.submit([&] {
      mp::Process p([] {});
      p.start();
      p.join();
      code = p.exitcode().value_or(-1);
    });
    std::vector<fu::Future<void>> queued;
    for (int i = 0; i < 4; ++i)
      queued.push_back(ex.submit([&] {
        if (::getpid() != parent) ++foreign;
        ++ran;
      }));
    starter.result(30s);
    for (auto& q : queued) q.result(30s);
  }
  return code == 0 && ran == 4 && foreign == 0;
}

// A child forked while another thread submits to a pool exits (was: spun in the inherited
// pool's shutdown).
bool fork_from_busy_pool() {
  fu::ThreadPoolExecutor ex(2);
  std::atomic<bool> stop{false};
  std::thread submitter([&] {
    while (!stop) (void)ex.submit([] { return 1; });
  });
  bool ok = true;
  for (int i = 0; i < 20 && ok; ++i) {
    mp::Process p([] {});
    p.start();
    (void)p.join(30s);
    ok = p.exitcode() == 0;
  }
  stop = true;
  submitter.join();
  return ok;
}

// An RLock held by the forking thread is owned by the child: acquire(1s) succeeds and
// release works (Python).
bool rlock_across_fork() {
  th::RLock rl;
  rl.acquire();
  mp::Process p([&] {
    if (!rl.acquire(1s)) mp::exit(3);
    rl.release();
    rl.release();
  });
  p.start();
  (void)p.join(30s);
  rl.release();
  return p.exitcode() == 0;
}

// A SharedMemory segment created in a child outlives the child (the top process owns it).
bool shm_created_in_child() {
  const std::string name = "concur_defects_" + std::to_string(::getpid());
  mp::Process p([&] {
    mp::SharedMemory shm(name, true, 64);
    shm.buf()[0] = std::byte{42};
  });
  p.start();
  (void)p.join(30s);
  bool ok = p.exitcode() == 0;
  try {
    mp::SharedMemory again(name);
    ok = ok && again.buf()[0] == std::byte{42};
    again.unlink();
  } catch (const concur::FileNotFoundError&) {
    ok = false;
  }
  return ok;
}

// Results already submitted are delivered when the executor is shut down while the caller
// iterates (Python delivers all 100).
bool map_on_shutdown() {
  fu::ThreadPoolExecutor ex(2);
  std::vector<int> items(100);
  for (int i = 0; i < 100; ++i) items[static_cast<std::size_t>(i)] = i;
  auto results = ex.map([](int x) { return x; }, items);
  ex.shutdown(false);
  int n = 0;
  long sum = 0;
  for (int v : results) {
    ++n;
    sum += v;
  }
  return n == 100 && sum == 4950;
}

// as_completed over 200k futures delivers each once (it was quadratic).
bool as_completed_200k() {
  fu::ThreadPoolExecutor ex(2);
  std::vector<fu::Future<int>> fs;
  fs.reserve(200000);
  for (int i = 0; i < 200000; ++i) fs.push_back(ex.submit([] { return 1; }));
  long n = 0;
  for (auto& f : fu::as_completed(fs)) n += f.result();
  return n == 200000;
}

// A burst on a warmed-up pool runs on as many workers as tasks (Python starts workers
// while none is idle): 4 tasks that each wait for all 4 at a barrier all pass it.
bool burst_on_warmed_pool() {
  fu::ThreadPoolExecutor ex(4);
  (void)ex.submit([] { return 0; }).result();
  std::this_thread::sleep_for(50ms);  // the worker is idle now
  th::Barrier barrier(4);
  std::vector<fu::Future<bool>> fs;
  for (int i = 0; i < 4; ++i)
    fs.push_back(ex.submit([&] {
      try {
        (void)barrier.wait(30s);
        return true;
      } catch (const th::BrokenBarrierError&) {
        return false;
      }
    }));
  bool ok = true;
  for (auto& f : fs) ok = f.result() && ok;
  return ok;
}

// An mp::Lock acquired in a child that then ends normally stays held (Python's hand-off):
// acquire(100ms) elsewhere is false, and the release from here works.
bool mp_lock_survives_normal_exit() {
  mp::Lock lock;
  mp::Process p([&] { lock.acquire(); });
  p.start();
  (void)p.join(30s);
  const bool held = !lock.acquire(100ms);
  lock.release();
  const bool again = lock.acquire(100ms);
  if (again) lock.release();
  return p.exitcode() == 0 && held && again;
}

// std::exit() from a non-main concur thread ends the process (was: deadlock at exit).
bool exit_from_thread() {
  return in_child([] {
    th::Thread t([] { std::exit(0); });
    t.start();
    t.join();
    return false;  // not reached
  });
}

// Process::start() does not block while another thread sits in std::getline(std::cin).
bool start_beside_getline() {
  return in_child([] {
    int fds[2];
    if (::pipe(fds) != 0) return false;
    ::dup2(fds[0], 0);  // stdin: a pipe nobody writes to (write end kept open)
    std::thread reader([] {
      std::string line;
      std::getline(std::cin, line);
    });
    reader.detach();
    std::this_thread::sleep_for(50ms);  // let it block holding stdin's lock
    mp::Process p([] {});
    p.start();
    (void)p.join(30s);
    std::fflush(stdout);
    ::_exit(p.exitcode() == 0 ? 0 : 1);  // not through exit(): the reader still blocks
  });
}


// Robust list: in a child, a Lock acquired there and released by another thread is then
// destroyed and new Locks take its place (and are used); the child is SIGKILLed while it
// holds `outer`. The kernel's walk still reaches `outer`: acquire(2s) here succeeds and
// owner_died() is reported until consistent() (was: acquire failed, no owner_died()).
bool robust_list_after_foreign_release() {
  mp::Lock outer;
  mp::Event ready;
  mp::Process p([&] {
    outer.acquire();
    std::vector<std::unique_ptr<mp::Lock>> keep;
    for (int round = 0; round < 3; ++round) {
      auto inner = std::make_unique<mp::Lock>();
      inner->acquire();
      std::thread([&] { inner->release(); }).join();  // a non-owner release (Python allows)
      if (round % 2 == 0)
        std::thread([&] { inner.reset(); }).join();  // destroyed by another thread
      else
        inner.reset();  // or by the thread that listed it
      for (int i = 0; i < 6; ++i) {  // new locks in its place, some used
        keep.push_back(std::make_unique<mp::Lock>());
        if (i % 2) {
          keep.back()->acquire();
          keep.back()->release();
        }
      }
    }
    ready.set();
    for (;;) ::pause();
  });
  p.start();
  const bool was_ready = ready.wait(30s);
  p.kill();
  p.join();
  const bool got = outer.acquire(2s);
  const bool died = got && outer.owner_died();
  if (got) {
    outer.consistent();
    outer.release();
  }
  const bool repaired = !outer.owner_died();
  return was_ready && p.exitcode() == -SIGKILL && got && died && repaired;
}

// mp::Barrier(3): a party SIGKILLed inside wait() breaks it — a live waiter with a timeout
// gets BrokenBarrierError (not its timeout, not a release by the dead party's count), so
// does the next one; after reset() the three live parties pass it (was: wedged forever).
bool mp_barrier_party_killed() {
  mp::Barrier b(3);
  auto party = [&b] {  // exit 0: BrokenBarrierError, 1: passed, 2: anything else
    int code = 2;
    try {
      (void)b.wait(30s);
      code = 1;
    } catch (const th::BrokenBarrierError&) {
      code = 0;
    } catch (...) {
    }
    mp::exit(code);
  };
  mp::Process live(party);
  live.start();
  while (b.n_waiting() < 1) std::this_thread::sleep_for(1ms);
  mp::Process dead([&b] { (void)b.wait(); });
  dead.start();
  while (b.n_waiting() < 2) std::this_thread::sleep_for(1ms);  // both inside wait()
  dead.kill();
  dead.join();
  live.join();
  bool broken_here = false;
  try {
    (void)b.wait(10s);
  } catch (const th::BrokenBarrierError&) {
    broken_here = true;
  }
  const bool broken = b.broken();
  b.reset();
  const bool reset_ok = !b.broken();
  mp::Process p1(party), p2(party);
  p1.start();
  p2.start();
  bool passed = false;
  try {
    (void)b.wait(30s);
    passed = true;
  } catch (const th::BrokenBarrierError&) {
  }
  p1.join();
  p2.join();
  return dead.exitcode() == -SIGKILL && live.exitcode() == 0 && broken_here && broken &&
         reset_ok && passed && p1.exitcode() == 1 && p2.exitcode() == 1;
}

// mp::Condition: the oldest waiter is SIGKILLed inside wait(); the next notify(1) wakes the
// live waiter behind it (was: the dead waiter's slot swallowed it).
bool mp_condition_killed_waiter() {
  mp::Condition cond;
  mp::Event in_dead, in_live;
  mp::Process dead([&] {
    cond.acquire();
    in_dead.set();
    cond.wait();
  });
  dead.start();
  if (!in_dead.wait(30s)) return false;
  // Taking the lock here means the child's wait() released it: its slot is registered.
  cond.acquire();
  cond.release();
  mp::Process live([&] {
    cond.acquire();
    in_live.set();
    const bool woken = cond.wait(30s);
    cond.release();
    mp::exit(woken ? 0 : 1);
  });
  live.start();
  if (!in_live.wait(30s)) return false;
  cond.acquire();  // the live waiter is in wait() too
  cond.release();
  const bool asleep = blocked_in_futex(*dead.pid());
  dead.kill();
  dead.join();
  cond.acquire();
  cond.notify(1);
  cond.release();
  live.join();
  return asleep && dead.exitcode() == -SIGKILL && live.exitcode() == 0;
}

// The multiprocessing logger has no handler of its own until log_to_stderr(): basic_config(
// {.level = DEBUG}) alone prints no lifecycle record of a child (was: five per child); after
// a bare log_to_stderr() they appear at the root's level, in Python's "[INFO/Process-N] ..."
// form (Python 3: basicConfig(level=DEBUG); log_to_stderr() prints them).
bool mp_logger_quiet_under_root_debug() {
  std::string err;
  int status = 0;
  const bool forked = child_stderr(
      [] {
        lg::basic_config({.level = lg::Level::DEBUG});  // fd 2: the pipe
        mp::Process quiet([] {});
        quiet.start();
        quiet.join();
        lg::get_logger("other").debug("marker");  // the root's DEBUG still applies to others
        mp::log_to_stderr();
        mp::Process loud([] {});
        loud.start();
        loud.join();
        return quiet.exitcode() == 0 && loud.exitcode() == 0;
      },
      err, status);
  if (!forked || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return false;
  const auto marker = err.find("DEBUG:other:marker");
  if (marker == std::string::npos) return false;
  const std::string before = err.substr(0, marker), after = err.substr(marker);
  return before.find("process") == std::string::npos &&
         after.find("] child process calling self.run()") != std::string::npos &&
         after.find("] process exiting with exitcode 0") != std::string::npos;
}

// Joining a foreign (Dummy) thread raises RuntimeError("cannot join a dummy thread"), with
// or without a timeout (was: blocked until the foreign thread ended).
bool join_dummy_thread() {
  std::atomic<th::Thread*> dummy{nullptr};
  th::Event release;
  std::thread foreign([&] {
    dummy.store(&th::current_thread());
    (void)release.wait(30s);
  });
  while (dummy.load() == nullptr) std::this_thread::sleep_for(1ms);
  int raised = 0;
  try {
    dummy.load()->join();
  } catch (const concur::RuntimeError& e) {
    if (std::string(e.what()) == "cannot join a dummy thread") ++raised;
  }
  try {
    (void)dummy.load()->join(10ms);
  } catch (const concur::RuntimeError&) {
    ++raised;
  }
  release.set();
  foreign.join();
  return raised == 2;
}

// `{ std::lock_guard g(l); l.release(); }`: the guard's noexcept unlock() of the unlocked
// Lock aborts (SIGABRT) with the library's message on stderr (was: std::terminate from an
// exception thrown in a destructor).
bool lock_guard_release_aborts() {
  std::string err;
  int status = 0;
  const bool forked = child_stderr(
      [] {
        const rlimit no_core{0, 0};
        ::setrlimit(RLIMIT_CORE, &no_core);
        {
          th::Lock l;
          std::lock_guard g(l);
          l.release();
        }
        return false;  // not reached
      },
      err, status);
  return forked && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
         err.find("concur: threading::Lock::unlock(): release unlocked lock") != std::string::npos;
}

// Nested waits on ThreadPoolExecutor(1): a task waiting on a future of a task it submitted
// to the same pool completes (a compensating worker runs the inner one, 3 levels deep),
// each level on a thread of its own, and a threading::Local set by the blocked task is
// neither seen nor overwritten by the tasks that run meanwhile.
bool nested_waits_compensate() {
  fu::ThreadPoolExecutor ex(1);
  th::Local<int> local;
  std::mutex m;
  std::set<std::uint64_t> ids;
  std::atomic<int> seen_foreign{0};
  std::function<int(int)> level = [&](int k) -> int {
    {
      std::lock_guard g(m);
      ids.insert(th::get_ident());
    }
    if (local.get() != 0) ++seen_foreign;  // a fresh thread's value
    local.get() = 100 + k;
    const int below = k == 3 ? 0 : ex.submit(level, k + 1).result(30s) + 1;
    if (local.get() != 100 + k) ++seen_foreign;  // overwritten while blocked
    return below;
  };
  const int depth = ex.submit(level, 0).result(30s);
  return depth == 3 && ids.size() == 4 && seen_foreign == 0;
}

}  // namespace

int main() {
  struct Row {
    const char* name;
    bool (*fn)();
  };
  const Row rows[] = {
      {"Timer(hours::max())", timer_hours_max},
      {"Popen::wait(hours::max())", popen_wait_hours_max},
      {"try_lock_until(time_point::max())", try_lock_until_max},
      {"NaN timeout", nan_is_value_error},
      {"Event set/clear", event_set_clear_wakes_all},
      {"run({\"\"})", run_empty_program},
      {"spawn with fds 0-2 closed", spawn_with_stdio_closed},
      {"shell+executable", shell_and_executable},
      {"SharedMemory NUL name", shm_nul_name},
      {"Future repr", future_repr},
      {"map eager", map_eager},
      {"idle reuse", idle_reuse},
      {"helping waits", no_helping_waits},
      {"dropping the pool inside its task", drop_pool_in_task},
      {"Process in a pool task", process_in_pool_task},
      {"fork from a busy pool", fork_from_busy_pool},
      {"RLock across fork", rlock_across_fork},
      {"SharedMemory in a child", shm_created_in_child},
      {"map on shutdown", map_on_shutdown},
      {"as_completed 200k", as_completed_200k},
      {"burst on warmed pool", burst_on_warmed_pool},
      {"mp::Lock across a normal exit", mp_lock_survives_normal_exit},
      {"exit paths: std::exit from a thread", exit_from_thread},
      {"start() vs getline(cin)", start_beside_getline},
      {"robust list: foreign release, destroy, reuse, then SIGKILL", robust_list_after_foreign_release},
      {"mp::Barrier party SIGKILLed in wait()", mp_barrier_party_killed},
      {"mp::Condition waiter SIGKILLed in wait()", mp_condition_killed_waiter},
      {"multiprocessing logger vs root DEBUG", mp_logger_quiet_under_root_debug},
      {"join a Dummy thread", join_dummy_thread},
      {"release() inside lock_guard", lock_guard_release_aborts},
      {"nested waits on a one-worker pool", nested_waits_compensate},
  };
  int failed = 0;
  for (const Row& r : rows) {
    bool ok = false;
    try {
      ok = r.fn();
    } catch (const std::exception& e) {
      std::printf("  (%s threw: %s)\n", r.name, e.what());
    }
    std::printf("%s %s\n", r.name, ok ? "ok" : "FAILED");
    std::fflush(stdout);
    if (!ok) ++failed;
  }
  if (failed) return 1;
  std::printf("defects ok\n");
  return 0;
}
