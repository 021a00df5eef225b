// ThreadPoolExecutor's engine: the task queue (an intrusive FIFO of future states guarded
// by one futex lock), the workers, shutdown, the broken state and the helping wait.
#include "concur/futures/thread_pool.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <new>
#include <thread>
#include <vector>

#include "concur/detail/cond_word.hpp"
#include "concur/detail/fork.hpp"
#include "concur/detail/futex.hpp"
#include "concur/detail/runtime.hpp"
#include "concur/threading/thread.hpp"

namespace concur::futures {

namespace detail {

namespace {

// Spin rounds an idle worker polls the queue before it sleeps. Waking a sleeping worker
// costs 12-16 us round trip here (bench/README.md) while a submit seen by a spinning worker
// costs ~0.2 us; 2000 rounds of `pause` (~20-40 us at 10-20 ns each) cover the gap between
// two submits of a producer loop, yet give the CPU back quickly when the pool goes idle.
constexpr int kWorkerSpin = 2000;
constexpr int kWorkerSpinMin = 32;

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
    static PoolRegistry* r = [] {
      auto* p = new PoolRegistry;  // never destroyed: used from the exit hook
      instance_.store(p, std::memory_order_release);
      return p;
    }();
    return *r;
  }
  // The registry if one was made (a program without pools does not get one by forking).
  static PoolRegistry* existing() noexcept { return instance_.load(std::memory_order_acquire); }
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
  // Fork protocol (rank kPools): the registry lock and every pool's locks are held across
  // fork; in the child every inherited pool is emptied (see PoolCore::fork_child).
  void fork_prepare() noexcept;
  void fork_parent() noexcept;
  void fork_child() noexcept;

 private:
  PoolRegistry() {
    concur::detail::register_exit_hook(concur::detail::kExitJoinThreads - 10,
                                       [] { get().shutdown_all(); });
  }
  static inline std::atomic<PoolRegistry*> instance_{nullptr};
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

  // submit(): lock-free. One exchange links the task; a FUTEX_WAKE only if a worker sleeps.
  void push(StateBase* task) {
    // pushing_ lets shutdown() wait for submits that passed the checks below (Dekker with
    // shutdown_: both seq_cst), so no task is left behind in a pool whose workers exited.
    pushing_.fetch_add(1, std::memory_order_seq_cst);
    struct Done {
      PoolCore* self;
      ~Done() {
        // The last submit to leave a pool being shut down wakes the workers that wait for
        // it (exiting() needs pushing_ == 0).
        if (self->pushing_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
            (self->shutdown_.load(std::memory_order_seq_cst) ||
             self->broken_.load(std::memory_order_seq_cst)))
          self->poke();
      }
    } done{this};
    if (broken_.load(std::memory_order_seq_cst)) throw BrokenThreadPool(broken_message());
    if (shutdown_.load(std::memory_order_seq_cst))
      throw RuntimeError("cannot schedule new futures after shutdown");
    link(task);
    if (sleepers_.load(std::memory_order_seq_cst) != 0) wake_one();
    // Python's _adjust_thread_count: start a worker while none is idle, up to max_workers.
    // (reserved_ first: it stops changing once the pool is full, while idle_ changes with
    // every task and would cost the submitting thread a cache miss per submit.)
    if (reserved_.load(std::memory_order_relaxed) < max_workers_ &&
        idle_.load(std::memory_order_relaxed) == 0) {
      int r = reserved_.load(std::memory_order_relaxed);
      while (r < max_workers_ &&
             !reserved_.compare_exchange_weak(r, r + 1, std::memory_order_relaxed)) {
      }
      if (r < max_workers_) {
        try {
          start_worker();
        } catch (...) {
          // The task is queued already and cannot be unlinked. With other workers alive they
          // will run it; with none, its future fails with the error that prevented a worker
          // (Python raises it from submit and leaves the work item queued forever).
          if (started_.load(std::memory_order_relaxed) == 0) {
            try {
              task->set_exception(std::current_exception());
            } catch (...) {
            }
          }
        }
      }
    }
  }

  void shutdown(bool wait, bool cancel_futures) {
    shutdown_.store(true, std::memory_order_seq_cst);
    // Submits that passed their check finish linking (and starting a worker) first.
    while (pushing_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
    StateBase* cancelled = nullptr;
    if (cancel_futures) cancelled = drain();
    poke();
    // Cancel outside the pool's locks (cancel takes each future's lock and runs callbacks).
    while (cancelled) {
      StateBase* next = cancelled->next_.load(std::memory_order_relaxed);
      (void)cancelled->cancel();
      cancelled->release();
      cancelled = next;
    }
    if (!wait) return;
    if (tls_wait_helper == this) throw RuntimeError("cannot join current thread");
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

  // WaitHelper: runs queued tasks until ready() or the deadline.
  bool help_until(ReadyFn ready, const Clock::time_point* deadline) override {
    for (;;) {
      if (ready()) return true;
      if (StateBase* t = try_pop()) {
        run_task(t);
        continue;
      }
      if (!sleep_unless([&] { return ready() || !looks_empty(); }, deadline)) return ready();
    }
  }
  // Wakes every sleeping worker and helper so they re-check their conditions.
  void poke() noexcept override {
    sleep_lock_.lock();
    const int n = idle_cond_.prepare_notify_all();
    sleepers_.store(idle_cond_.waiters(), std::memory_order_relaxed);
    sleep_lock_.unlock();
    idle_cond_.wake(n);
  }

  // Fork protocol, with the registry lock held. Lock order inside a pool: threads, consumer,
  // sleep (normal code never nests them the other way; threads_lock_ is held across
  // Thread::start, which takes threading's locks: rank kThreading, prepared later).
  // join_lock_ is NOT held across fork: shutdown(wait) holds it while it joins workers,
  // which may be the very thread that forks.
  void fork_prepare() noexcept {
    threads_lock_.lock();
    cons_lock_.lock();
    sleep_lock_.lock();
  }
  void fork_parent() noexcept {
    sleep_lock_.unlock();
    cons_lock_.unlock();
    threads_lock_.unlock();
  }
  // In the child: the pool has no worker (only the forking thread exists), and the queued
  // tasks belong to the parent, whose workers run them: the child's copy forgets them
  // (leaked, never run, never released: their futures are the parent's). Submits the
  // parent had in flight do not exist here either. What remains is an empty pool: a submit
  // in the child starts a worker of the child's own; exit and shutdown wait for nothing
  // inherited (the parent's workers are finished, unjoinable threads in the child's
  // threading registry, so joining them returns at once).
  void fork_child() noexcept {
    head_ = &stub_;
    stub_.next_.store(nullptr, std::memory_order_relaxed);
    tail_.store(&stub_, std::memory_order_relaxed);
    pushing_.store(0, std::memory_order_relaxed);
    idle_.store(0, std::memory_order_relaxed);
    spinner_.store(false, std::memory_order_relaxed);
    reserved_.store(0, std::memory_order_relaxed);
    started_.store(0, std::memory_order_relaxed);
    (void)idle_cond_.prepare_notify_all();  // count out the parent's sleepers, no syscall
    sleepers_.store(0, std::memory_order_relaxed);
    // The one lock the child re-creates: a parent thread may hold it across a join (see
    // above); nobody can hold it here. A futex word: all-zero is unlocked.
    ::new (&join_lock_) concur::detail::BasicLock<concur::detail::Scope::Private>();
    sleep_lock_.unlock();
    cons_lock_.unlock();
    threads_lock_.unlock();
  }

  int max_workers() const noexcept { return max_workers_; }
  const std::string& prefix() const noexcept { return prefix_; }
  std::size_t num_threads() const {
    return static_cast<std::size_t>(started_.load(std::memory_order_relaxed));
  }

 private:
  // ---- the task queue: Vyukov's intrusive MPSC list (producers: one exchange, no lock);
  // consumers (workers, helpers, shutdown) serialize on cons_lock_.
  void link(StateBase* t) noexcept {
    t->next_.store(nullptr, std::memory_order_relaxed);
    StateBase* prev = tail_.exchange(t, std::memory_order_seq_cst);
    prev->next_.store(t, std::memory_order_release);
  }
  // With cons_lock_ held. nullptr if empty or a producer is between its two steps.
  StateBase* pop_locked() noexcept {
    StateBase* head = head_;
    StateBase* next = head->next_.load(std::memory_order_acquire);
    if (head == &stub_) {
      if (!next) return nullptr;
      head_ = next;
      head = next;
      next = next->next_.load(std::memory_order_acquire);
    }
    if (next) {
      head_ = next;
      return head;
    }
    if (tail_.load(std::memory_order_acquire) != head) return nullptr;  // push in progress
    link(&stub_);
    next = head->next_.load(std::memory_order_acquire);
    if (next) {
      head_ = next;
      return head;
    }
    return nullptr;
  }
  // Pops one task; spins through the (two-instruction) window of a producer mid-push.
  StateBase* try_pop() noexcept {
    for (int spins = 0;; ++spins) {
      cons_lock_.lock();
      StateBase* t = pop_locked();
      cons_lock_.unlock();
      if (t || looks_empty()) return t;
      if (spins < 64)
        concur::detail::cpu_relax();
      else
        std::this_thread::yield();  // the producer was preempted between its two steps
    }
  }
  // True when nothing is queued (may be briefly wrong while a pop is in progress).
  bool looks_empty() const noexcept {
    return tail_.load(std::memory_order_seq_cst) == &stub_ &&
           stub_.next_.load(std::memory_order_acquire) == nullptr;
  }
  // Takes every queued task (as a list linked through next_).
  StateBase* drain() noexcept {
    StateBase* first = nullptr;
    StateBase* last = nullptr;
    while (StateBase* t = try_pop()) {
      t->next_.store(nullptr, std::memory_order_relaxed);
      if (last)
        last->next_.store(t, std::memory_order_relaxed);
      else
        first = t;
      last = t;
    }
    return first;
  }

  // ---- sleeping: an event count. A sleeper publishes itself in sleepers_ (seq_cst) and
  // then re-checks the queue; a producer links (seq_cst) and then reads sleepers_: one of
  // them sees the other, so no wake-up is lost, and a producer makes a syscall only when
  // somebody sleeps. CondWord (under sleep_lock_) counts woken sleepers out at once.
  template <class Cond>
  bool sleep_unless(Cond wake_now, const Clock::time_point* deadline) {
    sleep_lock_.lock();
    sleepers_.store(idle_cond_.waiters() + 1, std::memory_order_seq_cst);
    if (wake_now()) {
      sleepers_.store(idle_cond_.waiters(), std::memory_order_relaxed);
      sleep_lock_.unlock();
      return true;
    }
    const bool in_time = idle_cond_.wait(sleep_lock_, deadline);
    sleepers_.store(idle_cond_.waiters(), std::memory_order_relaxed);
    sleep_lock_.unlock();
    return in_time;
  }
  void wake_one() noexcept {
    sleep_lock_.lock();
    const int n = idle_cond_.prepare_notify(1);
    sleepers_.store(idle_cond_.waiters(), std::memory_order_relaxed);
    sleep_lock_.unlock();
    idle_cond_.wake(n);
  }

  static void run_task(StateBase* t) noexcept {
    t->run();
    t->release();
  }

  // Starts the worker push() reserved a slot for (pushing_ is held: shutdown waits).
  void start_worker() {
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
      reserved_.fetch_sub(1, std::memory_order_relaxed);
      throw;
    }
    threads_lock_.unlock();
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

  // Blocks for the next task; nullptr once the pool is shut down and drained, or broken.
  // A worker counts as idle (for push()'s decision to start another) from here until it has
  // a task, spinning included, as Python's idle semaphore counts it. Only one idle worker
  // spins at a time; the others sleep at once (two spinners on this 2-core machine would
  // take the CPU from the thread that submits).
  StateBase* next_task() noexcept {
    idle_.fetch_add(1, std::memory_order_relaxed);
    struct Busy {
      std::atomic<std::size_t>& n;
      ~Busy() { n.fetch_sub(1, std::memory_order_relaxed); }
    } busy{idle_};
    bool expected = false;
    if (spinner_.compare_exchange_strong(expected, true, std::memory_order_relaxed)) {
      // Adaptive: a spin that found work doubles the next budget, one that did not halves
      // it (down to kWorkerSpinMin), so a pool whose submitter is slow or descheduled (a
      // loaded machine) stops burning the CPU that submitter needs. No sched_yield here: on
      // a loaded machine one yield parked the worker for ~280 us (strace), which doubled the
      // submit().result() latency.
      const int budget = spin_budget_.load(std::memory_order_relaxed);
      bool found = false;
      for (int i = 0; i < budget; ++i) {
        if (!looks_empty()) {
          found = true;
          break;
        }
        concur::detail::cpu_relax();
      }
      spin_budget_.store(
          found ? std::min(budget * 2, kWorkerSpin) : std::max(budget / 2, kWorkerSpinMin),
          std::memory_order_relaxed);
      spinner_.store(false, std::memory_order_seq_cst);
    }
    for (;;) {
      if (StateBase* t = try_pop()) return t;
      if (exiting()) return nullptr;
      (void)sleep_unless([&] { return !looks_empty() || exiting(); }, nullptr);
    }
  }
  bool exiting() const noexcept {
    if (broken_.load(std::memory_order_seq_cst)) return true;
    return shutdown_.load(std::memory_order_seq_cst) &&
           pushing_.load(std::memory_order_seq_cst) == 0 && looks_empty();
  }

  std::string broken_message() const {
    return "A thread initializer failed, the thread pool is not usable anymore";
  }

  // Python's _initializer_failed: the pool is broken, every queued future fails.
  void initializer_failed() noexcept {
    broken_.store(true, std::memory_order_seq_cst);
    while (pushing_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
    StateBase* pending = drain();
    poke();
    while (pending) {
      StateBase* next = pending->next_.load(std::memory_order_relaxed);
      try {
        pending->set_exception(std::make_exception_ptr(BrokenThreadPool(broken_message())));
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

  // Producer side (submitting threads), consumer side, sleep state, the often-written idle
  // count and the read-mostly flags each on their own cache lines.
  alignas(64) std::atomic<StateBase*> tail_{&stub_};  // read by idle workers
  alignas(64) std::atomic<int> pushing_{0};           // touched by submitters only
  alignas(64) concur::detail::BasicLock<concur::detail::Scope::Private> cons_lock_;
  StateBase* head_ = &stub_;  // guarded by cons_lock_
  StateBase stub_;            // the MPSC list's permanent node (never run)
  alignas(64) std::atomic<std::uint32_t> sleepers_{0};  // mirror of idle_cond_.waiters()
  concur::detail::BasicLock<concur::detail::Scope::Private> sleep_lock_;
  concur::detail::CondWord<concur::detail::Scope::Private> idle_cond_;
  std::atomic<bool> spinner_{false};
  std::atomic<int> spin_budget_{kWorkerSpin};
  // Workers waiting for work. Only a heuristic for starting threads: relaxed.
  alignas(64) std::atomic<std::size_t> idle_{0};
  alignas(64) std::atomic<bool> shutdown_{false};
  std::atomic<bool> broken_{false};
  std::atomic<int> reserved_{0};  // workers started or being started
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

void PoolRegistry::fork_prepare() noexcept {
  lock_.lock();
  for (PoolCore* p : pools_) p->fork_prepare();
}

void PoolRegistry::fork_parent() noexcept {
  for (PoolCore* p : pools_) p->fork_parent();
  lock_.unlock();
}

void PoolRegistry::fork_child() noexcept {
  for (PoolCore* p : pools_) p->fork_child();
  lock_.unlock();
}

namespace {
// The registry seen by prepare, used by parent/child of the same fork (glibc runs the
// handlers of one fork at a time).
PoolRegistry* g_forking_registry = nullptr;
[[maybe_unused]] const bool g_fork_registered =
    (concur::detail::register_fork_handler(concur::detail::ForkRank::kPools,
                                           {.prepare =
                                                []() noexcept {
                                                  g_forking_registry = PoolRegistry::existing();
                                                  if (g_forking_registry)
                                                    g_forking_registry->fork_prepare();
                                                },
                                            .parent =
                                                []() noexcept {
                                                  if (g_forking_registry)
                                                    g_forking_registry->fork_parent();
                                                },
                                            .child =
                                                []() noexcept {
                                                  if (g_forking_registry)
                                                    g_forking_registry->fork_child();
                                                }}),
     true);
}  // namespace

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

void ThreadPoolExecutor::push(detail::StateBase* task) {
  core_->push(task);
}

int ThreadPoolExecutor::max_workers() const noexcept {
  return core_->max_workers();
}

const std::string& ThreadPoolExecutor::thread_name_prefix() const noexcept {
  return core_->prefix();
}

std::size_t ThreadPoolExecutor::num_threads() const {
  return core_->num_threads();
}

}  // namespace concur::futures
