// The outside check of issue #9, built against the installed package only: each row replays
// one defect the issue reproduced from outside and asserts Python's outcome. Prints one
// line per row and "defects ok" when every row held. Rows assert outcomes, never times
// (the bounds below are generous waits for an outcome, not measurements).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <concur/concur.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace th = concur::threading;
namespace fu = concur::futures;
namespace mp = concur::multiprocessing;
namespace sp = concur::subprocess;
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
