// ThreadPoolExecutor's engine: the task queue (an intrusive FIFO of future states guarded
// by one futex lock), the workers, shutdown, the broken state and the helping wait.
#include "concur/futures/thread_pool.hpp"

#include "concur/detail/cond_word.hpp"
#include "concur/detail/futex.hpp"
#include "concur/detail/runtime.hpp"
#include "concur/threading/thread.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace concur::futures {

namespace detail {

namespace {

// Spin rounds an idle worker polls the queue before it sleeps. Waking a sleeping worker
// costs 12-16 us round trip here (bench/README.md) while a submit seen by a spinning worker
// costs ~0.2 us; 2000 rounds of `pause` (~20-40 us at 10-20 ns each) cover the gap between
// two submits of a producer loop, yet give the CPU back quickly when the pool goes idle.
constexpr int kWorkerSpin = 2000;

std::atomic<unsigned> g_pool_counter{0};

}  // namespace

class PoolCore;

// Live pools, so that process exit can shut them down before threading joins the
// (non-daemon) workers: Python's concurrent.futures.thread._python_exit, registered with
// threading._register_atexit so it runs before the join. Without it a pool that is never
// destroyed (a static, a leak) would make exit wait forever for its idle workers.
class PoolRegistry {
 public:
  static PoolRegistry& get() {
    static PoolRegistry* r = new PoolRegistry;  // never destroyed: used from the exit hook
    return *r;
  }
  void add(PoolCore* p) {
    lock_.lock();
    try {
      pools_.push_back(p);
    } catch (...) {
      lock_.unlock();
      throw;
    }
    lock_.unlock();
  }
  void remove(PoolCore* p) noexcept {
    lock_.lock();
    std::erase(pools_, p);
    lock_.unlock();
  }
  void shutdown_all() noexcept;

 private:
  PoolRegistry() {
    concur::detail::register_exit_hook(concur::detail::kExitJoinThreads - 10,
                                       [] { get().shutdown_all(); });
  }
  concur::detail::BasicLock<concur::detail::Scope::Private> lock_;
  std::vector<PoolCore*> pools_;
};

class PoolCore final : public WaitHelper {
 public:
  PoolCore(int max_workers, ExecutorOptions opts)
      : max_workers_(max_workers), initializer_(std::move(opts.initializer)) {
    prefix_ = opts.thread_name_prefix.empty()
                  ? "ThreadPoolExecutor-" + std::to_string(g_pool_counter.fetch_add(1))
                  : std::move(opts.thread_name_prefix);
    PoolRegistry::get().add(this);
  }
  ~PoolCore() { PoolRegistry::get().remove(this); }

  void push(StateBase* task) {
    lock_.lock();
    if (!broken_.empty()) {
      const std::string msg = broken_;
      lock_.unlock();
      throw BrokenThreadPool(msg);
    }
    if (shutdown_) {
      lock_.unlock();
      throw RuntimeError("cannot schedule new futures after shutdown");
    }
    append_locked(task);
    // Python's _adjust_thread_count: grow while no idle worker can take this task. The slot
    // is reserved under the lock so shutdown() knows a thread is being started.
    const bool spawn = reserved_ < max_workers_ && queued_ > idle_.load(std::memory_order_relaxed);
    if (spawn) {
      ++reserved_;
      spawning_.fetch_add(1, std::memory_order_relaxed);
    }
    const int n = idle_cond_.prepare_notify(1);
    lock_.unlock();
    idle_cond_.wake(n);
    if (spawn) adjust_thread_count();
  }

  void shutdown(bool wait, bool cancel_futures) {
    StateBase* cancelled = nullptr;
    lock_.lock();
    shutdown_ = true;
    if (cancel_futures) {
      cancelled = head_.load(std::memory_order_relaxed);
      head_.store(nullptr, std::memory_order_relaxed);
      tail_ = nullptr;
      queued_ = 0;
    }
    const int n = idle_cond_.prepare_notify_all();
    lock_.unlock();
    idle_cond_.wake(n);
    // Cancel outside the pool lock (cancel takes each future's lock and runs callbacks).
    while (cancelled) {
      StateBase* next = cancelled->next_;
      (void)cancelled->cancel();
      cancelled->release();
      cancelled = next;
    }
    if (!wait) return;
    if (tls_wait_helper == this)
      throw RuntimeError("cannot join current thread");
    // A submit that passed the shutdown check may still be starting a worker: let it
    // finish, so that worker is joined below (it drains the queue, then exits).
    while (spawning_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    join_lock_.lock();
    std::vector<std::unique_ptr<threading::Thread>> ts;
    threads_lock_.lock();
    ts.swap(threads_);
    threads_lock_.unlock();
    try {
      for (auto& t : ts) t->join();
    } catch (...) {
      join_lock_.unlock();
      throw;
    }
    join_lock_.unlock();
  }

  // WaitHelper: run queued tasks until ready() or the deadline.
  bool help_until(ReadyFn ready, const Clock::time_point* deadline) override {
    for (;;) {
      if (ready()) return true;
      lock_.lock();
      if (StateBase* t = pop_locked()) {
        lock_.unlock();
        run_task(t);
        continue;
      }
      if (ready()) {
        lock_.unlock();
        return true;
      }
      idle_.fetch_add(1, std::memory_order_relaxed);
      const bool in_time = idle_cond_.wait(lock_, deadline);
      idle_.fetch_sub(1, std::memory_order_relaxed);
      const bool empty = head_.load(std::memory_order_relaxed) == nullptr;
      lock_.unlock();
      if (!in_time && empty) return ready();
    }
  }
  void poke() noexcept override {
    lock_.lock();
    const int n = idle_cond_.prepare_notify_all();
    lock_.unlock();
    idle_cond_.wake(n);
  }

  int max_workers() const noexcept { return max_workers_; }
  const std::string& prefix() const noexcept { return prefix_; }
  std::size_t num_threads() const {
    return static_cast<std::size_t>(started_.load(std::memory_order_relaxed));
  }

 private:
  void append_locked(StateBase* t) noexcept {
    t->next_ = nullptr;
    if (tail_)
      tail_->next_ = t;
    else
      head_.store(t, std::memory_order_relaxed);
    tail_ = t;
    ++queued_;
  }
  StateBase* pop_locked() noexcept {
    StateBase* t = head_.load(std::memory_order_relaxed);
    if (!t) return nullptr;
    head_.store(t->next_, std::memory_order_relaxed);
    if (!t->next_) tail_ = nullptr;
    t->next_ = nullptr;
    --queued_;
    return t;
  }
  static void run_task(StateBase* t) noexcept {
    t->run();
    t->release();
  }

  // Starts one more worker if the pool may grow (Python's _adjust_thread_count).
  // Starts the worker push() reserved a slot for.
  void adjust_thread_count() {
    threads_lock_.lock();
    const int i = started_.load(std::memory_order_relaxed);
    try {
      // Non-daemon, as in Python 3.9+: the exit hook above stops the pool, then threading's
      // exit join waits for the workers to finish the queued work.
      auto t = std::make_unique<threading::Thread>(
          threading::ThreadOptions{.name = prefix_ + "_" + std::to_string(i), .daemon = false},
          [this] { worker(); });
      t->start();
      threads_.push_back(std::move(t));
      started_.store(i + 1, std::memory_order_relaxed);
    } catch (...) {
      threads_lock_.unlock();
      lock_.lock();
      --reserved_;
      lock_.unlock();
      spawning_.fetch_sub(1, std::memory_order_release);
      throw;
    }
    threads_lock_.unlock();
    spawning_.fetch_sub(1, std::memory_order_release);
  }

  void worker() noexcept {
    if (initializer_) {
      try {
        initializer_();
      } catch (...) {
        log_error("Exception in initializer:", std::current_exception(), true);
        initializer_failed();
        return;
      }
    }
    tls_wait_helper = this;
    while (StateBase* t = next_task()) run_task(t);
    tls_wait_helper = nullptr;
  }

  // Blocks for the next task; nullptr when the pool is shut down (and drained) or broken.
  // A worker counts as idle (for push()'s decision to start another) from here until it
  // takes a task, spinning included, as Python's idle semaphore counts it.
  StateBase* next_task() noexcept {
    idle_.fetch_add(1, std::memory_order_relaxed);
    for (int i = 0; i < kWorkerSpin; ++i) {
      if (head_.load(std::memory_order_relaxed) != nullptr) break;
      concur::detail::cpu_relax();
    }
    lock_.lock();
    for (;;) {
      if (StateBase* t = pop_locked()) {
        idle_.fetch_sub(1, std::memory_order_relaxed);
        lock_.unlock();
        return t;
      }
      if (shutdown_ || !broken_.empty()) {
        idle_.fetch_sub(1, std::memory_order_relaxed);
        lock_.unlock();
        return nullptr;
      }
      idle_cond_.wait(lock_);
    }
  }

  // Python's _initializer_failed: the pool is broken, every queued future fails.
  void initializer_failed() noexcept {
    StateBase* pending = nullptr;
    std::string msg = "A thread initializer failed, the thread pool is not usable anymore";
    lock_.lock();
    if (broken_.empty()) broken_ = msg;
    pending = head_.load(std::memory_order_relaxed);
    head_.store(nullptr, std::memory_order_relaxed);
    tail_ = nullptr;
    queued_ = 0;
    const int n = idle_cond_.prepare_notify_all();
    lock_.unlock();
    idle_cond_.wake(n);
    while (pending) {
      StateBase* next = pending->next_;
      try {
        pending->set_exception(std::make_exception_ptr(BrokenThreadPool(msg)));
      } catch (...) {
        // Cancelled meanwhile: nothing to report.
      }
      pending->release();
      pending = next;
    }
  }

  const int max_workers_;
  std::function<void()> initializer_;
  std::string prefix_;

  concur::detail::BasicLock<concur::detail::Scope::Private> lock_;
  concur::detail::CondWord<concur::detail::Scope::Private> idle_cond_;
  std::atomic<StateBase*> head_{nullptr};  // written under lock_, polled by spinning workers
  StateBase* tail_ = nullptr;              // guarded by lock_
  std::size_t queued_ = 0;                 // guarded by lock_
  // Workers waiting for work (spinning or asleep). Only a heuristic for starting threads, so
  // relaxed and updated outside the lock.
  std::atomic<std::size_t> idle_{0};
  bool shutdown_ = false;                  // guarded by lock_
  std::string broken_;                     // guarded by lock_
  int reserved_ = 0;                       // workers started or being started; lock_
  std::atomic<int> spawning_{0};           // workers being started right now

  concur::detail::BasicLock<concur::detail::Scope::Private> threads_lock_;
  concur::detail::BasicLock<concur::detail::Scope::Private> join_lock_;
  std::vector<std::unique_ptr<threading::Thread>> threads_;  // guarded by threads_lock_
  std::atomic<int> started_{0};
};

void PoolRegistry::shutdown_all() noexcept {
  lock_.lock();
  for (PoolCore* p : pools_) {
    try {
      p->shutdown(false, false);
    } catch (...) {
    }
  }
  lock_.unlock();
}

}  // namespace detail

int ThreadPoolExecutor::default_max_workers() {
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  const long cpus = n > 0 ? n : 1;
  return static_cast<int>(std::min<long>(32, cpus + 4));
}

namespace {
int checked_workers(int max_workers, const ExecutorOptions& options) {
  if (max_workers <= 0) throw ValueError("max_workers must be greater than 0");
  if (options.max_tasks_per_child)
    throw ValueError("max_tasks_per_child is not supported by ThreadPoolExecutor");
  return max_workers;
}
}  // namespace

ThreadPoolExecutor::ThreadPoolExecutor(int max_workers, ExecutorOptions options)
    : core_(std::make_unique<detail::PoolCore>(checked_workers(max_workers, options),
                                               std::move(options))) {}

ThreadPoolExecutor::ThreadPoolExecutor(ExecutorOptions options)
    : ThreadPoolExecutor(default_max_workers(), std::move(options)) {}

ThreadPoolExecutor::~ThreadPoolExecutor() {
  try {
    core_->shutdown(true, false);
  } catch (...) {
    // Only "cannot join current thread" can get here (destroyed from its own worker).
  }
}

void ThreadPoolExecutor::shutdown(bool wait, bool cancel_futures) {
  core_->shutdown(wait, cancel_futures);
}

void ThreadPoolExecutor::push(detail::StateBase* task) { core_->push(task); }

int ThreadPoolExecutor::max_workers() const noexcept { return core_->max_workers(); }

const std::string& ThreadPoolExecutor::thread_name_prefix() const noexcept {
  return core_->prefix();
}

std::size_t ThreadPoolExecutor::num_threads() const { return core_->num_threads(); }

}  // namespace concur::futures
