// concur/futures/thread_pool.hpp — Python's concurrent.futures.ThreadPoolExecutor.
//
// A pool of up to max_workers threads, started lazily as submissions need them (as Python
// does: a submit starts a worker unless an idle one has not been claimed yet, Python's idle
// semaphore), named "ThreadPoolExecutor-N_i" (N counts pools from 0 per process, i workers
// from 0; or "<thread_name_prefix>_i"). submit() returns a Future; map() submits every item
// at once (Python 3.14's default; MapOptions::buffersize bounds the tasks in flight) and
// returns an in-order result range; shutdown(wait, cancel_futures); the destructor is
// shutdown(true). A failing initializer breaks the pool: every pending future fails with
// BrokenThreadPool and later submits throw it.
//
// Every task runs on a worker thread of its own: a task that waits for a future never runs
// other tasks meanwhile. Beyond Python (whose pool deadlocks when every worker waits for a
// queued task): a worker that blocks in a future wait (result(), exception(), wait(),
// as_completed(), on a future of any pool or none) tells its pool; while fewer than
// max_workers workers are not blocked and tasks are queued, the pool starts a compensating
// worker, up to kMaxCompensating workers beyond max_workers. So a task that submits to its
// own pool and waits, nested up to 256 deep, does not deadlock the pool even with
// max_workers = 1; deeper nesting waits (as Python's does at max_workers deep) until a
// timeout of its own, if any. Extra workers retire as soon as they are idle while enough
// others are runnable. Blocking on anything else (a lock, a queue) gets no compensation.
//
// Lifetime: the executor must outlive the futures' producers, not the futures: futures stay
// valid after the pool is gone. The workers share ownership of the pool's state, so the
// executor may be destroyed (its last handle dropped) by one of its own tasks: that shuts
// the pool down without waiting (a worker cannot join itself, and the others may wait for
// the task doing it); the workers finish the queued tasks and exit. shutdown(true) from a
// worker throws RuntimeError("cannot join current thread").
// Thread-safety: every member may be called from any thread.
// Memory ordering: submit() happens-before the task runs; the task's completion
// happens-before the result is observed through its Future.
// Performance: submit() is lock-free — the future's state (one allocation, shared with the
// callable) is linked into an intrusive multi-producer list with one atomic exchange, and a
// FUTEX_WAKE is made only when a worker sleeps and none is already spinning for work.
// Workers take tasks under a futex lock of their own; one idle worker at a time spins
// briefly (adaptive budget, kWorkerSpin) before sleeping. About 80-100 ns of the submitting
// thread's CPU per task on this machine (docs/benchmarks.md).
// When not to use: for CPU-bound fork-join recursion a work-stealing scheduler (oneTBB)
// is faster; this pool is a FIFO with Python's semantics.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <ranges>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "concur/detail/executor_map.hpp"
#include "concur/errors.hpp"
#include "concur/futures/future.hpp"

namespace concur::detail {
class PoolCore;
}

namespace concur::futures {

class ThreadPoolExecutor {
 public:
  // Python's default: min(32, cpu_count() + 4).
  static int default_max_workers();
  // Compensating workers a pool may run beyond max_workers while workers block in future
  // waits (see the banner).
  static constexpr int kMaxCompensating = 256;

  // max_workers <= 0 -> ValueError("max_workers must be greater than 0");
  // options.max_tasks_per_child set -> ValueError (thread pools do not support it).
  // Starts no thread yet.
  explicit ThreadPoolExecutor(int max_workers = default_max_workers(),
                              ExecutorOptions options = {});
  explicit ThreadPoolExecutor(ExecutorOptions options);
  ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
  ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;
  // shutdown(true): waits for every queued and running task.
  ~ThreadPoolExecutor();

  // Schedules fn(args...) (decay-copied, then moved into the call) and returns its Future.
  // RuntimeError("cannot schedule new futures after shutdown") after shutdown();
  // BrokenThreadPool if an initializer failed. One allocation; never blocks. If the OS
  // refuses the pool's first thread, the returned future fails with that error (OSError).
  // Starting a worker is the only slow part (the first submits of a pool).
  template <class F, class... A>
  [[nodiscard]] auto submit(F&& fn, A&&... args) {
    using Raw = std::invoke_result_t<std::decay_t<F>&&, std::decay_t<A>&&...>;
    using R = std::conditional_t<std::is_void_v<Raw>, void, std::remove_cvref_t<Raw>>;
    auto call = [f = std::forward<F>(fn), ... a = std::forward<A>(args)]() mutable -> R {
      if constexpr (std::is_void_v<R>)
        std::invoke(std::move(f), std::move(a)...);
      else
        return std::invoke(std::move(f), std::move(a)...);
    };
    using Task = detail::TaskState<R, decltype(call)>;
    auto* task = new Task(std::move(call));  // two references: fut's and the queue's
    Future<R> fut(task);
    try {
      push(task);
    } catch (...) {
      task->release();
      throw;
    }
    return fut;
  }

  // fn over every item of `items`, results in input order (see detail/executor_map.hpp):
  // `for (auto& r : ex.map(f, v, {.timeout = 2s}))`. Every item is submitted by the call
  // (Python 3.14), unless options.buffersize bounds the tasks in flight.
  template <class F, std::ranges::input_range R>
  [[nodiscard]] auto map(F fn, R&& items, MapOptions options = {}) {
    using View = std::views::all_t<R>;
    return detail::MapResult<ThreadPoolExecutor, F, View>(
        *this, std::move(fn), std::views::all(std::forward<R>(items)), options);
  }

  // Stops accepting work. cancel_futures: cancels every task not yet started. wait: blocks
  // until every started (and, without cancel_futures, queued) task has finished and the
  // workers have exited. Idempotent; safe from several threads.
  void shutdown(bool wait = true, bool cancel_futures = false);

  int max_workers() const noexcept;
  // "ThreadPoolExecutor-N" or the configured prefix.
  const std::string& thread_name_prefix() const noexcept;
  // Workers alive now: started lazily up to max_workers, plus compensating ones while
  // workers block in future waits.
  std::size_t num_threads() const;

 private:
  void push(detail::StateBase* task);
  std::shared_ptr<detail::PoolCore> core_;
};

}  // namespace concur::futures
