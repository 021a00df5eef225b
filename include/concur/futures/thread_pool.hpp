// concur/futures/thread_pool.hpp — Python's concurrent.futures.ThreadPoolExecutor.
//
// A pool of up to max_workers threads, started lazily as submissions need them (as Python
// does), named "ThreadPoolExecutor-N_i" (N counts pools from 0 per process, i workers from 0;
// or "<thread_name_prefix>_i"). submit() returns a Future; map() returns a lazy in-order
// result range with a bounded window of tasks in flight; shutdown(wait, cancel_futures);
// the destructor is shutdown(true). A failing initializer breaks the pool: every pending
// future fails with BrokenThreadPool and later submits throw it.
//
// Beyond Python: a task that waits for a future (result(), exception(), wait(),
// as_completed()) while running on a worker of this pool runs other queued tasks of the
// pool meanwhile ("helping"), so a task that submits to its own pool and waits for the
// result never deadlocks the pool, even with max_workers = 1. The waiting task's stack
// grows by the tasks it runs; a task that blocks on something other than a future (a queue,
// a lock) gets no such help.
//
// Lifetime: the executor must outlive the futures' producers, not the futures: futures stay
// valid after the pool is gone. Destroying the executor from one of its own workers is
// undefined (it would join itself); shutdown(true) from a worker throws RuntimeError.
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

namespace concur::futures {

namespace detail {
class PoolCore;
}

class ThreadPoolExecutor {
 public:
  // Python's default: min(32, cpu_count() + 4).
  static int default_max_workers();

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

  // fn over every item of `items`, lazily, results in input order (see
  // detail/executor_map.hpp): `for (auto& r : ex.map(f, v, {.timeout = 2s}))`.
  // At most options.buffersize (default 4 x max_workers) tasks are in flight.
  template <class F, std::ranges::input_range R>
  [[nodiscard]] auto map(F fn, R&& items, MapOptions options = {}) {
    using View = std::views::all_t<R>;
    return detail::MapResult<ThreadPoolExecutor, F, View>(
        *this, std::move(fn), std::views::all(std::forward<R>(items)), options,
        4 * static_cast<std::size_t>(max_workers()));
  }

  // Stops accepting work. cancel_futures: cancels every task not yet started. wait: blocks
  // until every started (and, without cancel_futures, queued) task has finished and the
  // workers have exited. Idempotent; safe from several threads.
  void shutdown(bool wait = true, bool cancel_futures = false);

  int max_workers() const noexcept;
  // "ThreadPoolExecutor-N" or the configured prefix.
  const std::string& thread_name_prefix() const noexcept;
  // Workers started so far (lazily, up to max_workers).
  std::size_t num_threads() const;

 private:
  void push(detail::StateBase* task);
  std::unique_ptr<detail::PoolCore> core_;
};

}  // namespace concur::futures
