// ThreadPoolExecutor's engine: the task queue (an intrusive FIFO of future states guarded
// by one futex lock), the workers, shutdown, the broken state, the idle tokens and the
// compensating workers started while workers block in future waits.
#include "concur/futures/thread_pool.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <new>
#include <thread>
#include <vector>

#include "concur/detail/condition.hpp"
#include "concur/detail/fork.hpp"
#include "concur/detail/futex.hpp"
#include "concur/detail/runtime.hpp"
#include "concur/threading/thread.hpp"

namespace concur::detail {

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

// One worker thread's view of its pool, for the futures code (tls_worker).
struct WorkerSlot final : WorkerHooks {
  explicit WorkerSlot(PoolCore* p) noexcept : pool(p) {}
  void begin_blocking() noexcept override;
  void end_blocking() noexcept override;
  void task_finishing() noexcept override;
  PoolCore* pool;
  bool idle = false;  // counted in the pool's idle_ (and given it a token)
};

// The pool worker this thread is (nullptr elsewhere), to refuse joining itself.
thread_local PoolCore* t_pool = nullptr;

class PoolCore final : public std::enable_shared_from_this<PoolCore> {
 public:
  PoolCore(int max_workers, futures::ExecutorOptions opts)
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
    if (broken_.load(std::memory_order_seq_cst)) throw futures::BrokenThreadPool(broken_message());
    if (shutdown_.load(std::memory_order_seq_cst))
      throw RuntimeError("cannot schedule new futures after shutdown");
    // Python's _adjust_thread_count: an idle worker's token, else start a worker while fewer
    // than max_workers are runnable. live_ and blocked_ come first: they stop changing once
    // the pool is full, while the tokens change with every idle period. The token is
    // claimed before the task is linked: a worker that takes the task at once must find
    // its token claimed, or it would drop it as unclaimed (leave_idle) and this submit
    // would start a second worker.
    const bool claimed = runnable() < max_workers_ && take_token();
    link(task);
    if (sleepers_.load(std::memory_order_seq_cst) != 0) wake_one();
    if (claimed) return;
    // Read again after linking (seq_cst): Dekker with begin_blocking(), which counts itself
    // blocked and then looks at the queue, so one of the two sees the other.
    if (runnable() >= max_workers_ || take_token()) return;
    try {
      grow();
    } catch (...) {
      // The task is queued already and cannot be unlinked. With other workers alive they
      // will run it; with none, its future fails with the error that prevented a worker
      // (Python raises it from submit and leaves the work item queued forever).
      if (live_.load(std::memory_order_seq_cst) == 0) {
        try {
          task->set_exception(std::current_exception());
        } catch (...) {
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
    if (t_pool == this) throw RuntimeError("cannot join current thread");
    join_lock_.lock();
    try {
      // Until none is left: a worker blocked in a wait may still start a compensating one
      // to run the queue it waits on.
      for (;;) {
        std::vector<std::unique_ptr<threading::Thread>> ts;
        threads_lock_.lock();
        ts.swap(threads_);
        threads_lock_.unlock();
        if (ts.empty()) break;
        for (auto& t : ts) t->join();
      }
    } catch (...) {
      join_lock_.unlock();
      throw;
    }
    join_lock_.unlock();
  }

  // The executor's destructor: shutdown(true), except on one of the pool's own workers,
  // which cannot join itself and must not join the others (they may be waiting for the very
  // task that runs this): there the pool shuts down without waiting; the workers (which own
  // the core) finish the queued tasks and exit, and the process's exit join waits for them.
  void release_from_executor() noexcept {
    try {
      shutdown(t_pool != this, false);
    } catch (...) {
    }
  }

  // Wakes every sleeping worker so they re-check their conditions.
  void poke() noexcept {
    sleep_lock_.lock();
    concur::detail::Wakeups n = idle_cond_.prepare_notify_all();
    sleepers_.store(idle_cond_.waiters(), std::memory_order_relaxed);
    sleep_lock_.unlock();
    n.issue();
  }

  // ---- compensation (WorkerSlot's hooks) ----
  void begin_blocking() noexcept {
    blocked_.fetch_add(1, std::memory_order_seq_cst);
    // Every runnable worker busy and work queued: start one more (bounded), so that a task
    // waiting for a queued task of its own pool does not wait forever.
    if (!looks_empty() && idle_.load(std::memory_order_seq_cst) == 0 && runnable() < max_workers_) {
      try {
        grow();
      } catch (...) {
        // No thread to be had: the wait goes on; an existing worker may still free up.
      }
    }
  }
  void end_blocking() noexcept {
    blocked_.fetch_sub(1, std::memory_order_seq_cst);
    // A compensating worker sleeping idle is one too many now: wake it to retire.
    if (runnable() > max_workers_ && idle_.load(std::memory_order_seq_cst) > 0) poke();
  }
  void enter_idle(WorkerSlot& w) noexcept {
    w.idle = true;
    idle_.fetch_add(1, std::memory_order_seq_cst);
    tokens_.fetch_add(1, std::memory_order_seq_cst);  // Python's _idle_semaphore.release()
  }
  void leave_idle(WorkerSlot& w) noexcept {
    w.idle = false;
    const int idle = idle_.fetch_sub(1, std::memory_order_seq_cst) - 1;
    // A worker that took a task nobody claimed its token for leaves the token behind:
    // never let the tokens exceed the idle workers (else a later submit would count on a
    // worker that is busy).
    int t = tokens_.load(std::memory_order_relaxed);
    while (t > idle && !tokens_.compare_exchange_weak(t, t - 1, std::memory_order_seq_cst)) {
    }
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
    tokens_.store(0, std::memory_order_relaxed);
    live_.store(0, std::memory_order_relaxed);
    blocked_.store(0, std::memory_order_relaxed);
    idle_cond_.reset_after_fork();  // the parent's sleepers do not exist here
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
    return static_cast<std::size_t>(live_.load(std::memory_order_relaxed));
  }

 private:
  // Workers that can take a task: alive and not blocked in a future wait.
  int runnable() const noexcept {
    return live_.load(std::memory_order_seq_cst) - blocked_.load(std::memory_order_seq_cst);
  }
  // Python's _idle_semaphore.acquire(timeout=0).
  bool take_token() noexcept {
    int t = tokens_.load(std::memory_order_seq_cst);
    while (t > 0)
      if (tokens_.compare_exchange_weak(t, t - 1, std::memory_order_seq_cst)) return true;
    return false;
  }

  // ---- the task queue: Vyukov's intrusive MPSC list (producers: one exchange, no lock);
  // consumers (workers, shutdown) serialize on cons_lock_.
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

 public:
  // True when nothing is queued (may be briefly wrong while a pop is in progress).
  bool looks_empty() const noexcept {
    return tail_.load(std::memory_order_seq_cst) == &stub_ &&
           stub_.next_.load(std::memory_order_acquire) == nullptr;
  }

 private:
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
  // somebody sleeps. BasicCondition (under sleep_lock_) pops woken sleepers at once.
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
    concur::detail::Wakeups n = idle_cond_.prepare_notify(1);
    sleepers_.store(idle_cond_.waiters(), std::memory_order_relaxed);
    sleep_lock_.unlock();
    n.issue();
  }

  static void run_task(StateBase* t) noexcept {
    t->run();
    t->release();
  }

  // Starts a worker if the pool may still grow: fewer than max_workers runnable and fewer
  // than max_workers + kMaxCompensating alive. Under threads_lock_, so that racing callers
  // (submits, blocking workers) start one worker, not one each. Also after shutdown (the
  // queue still runs), but not once the pool is broken or its workers are exiting.
  void grow() {
    threads_lock_.lock();
    try {
      const int live = live_.load(std::memory_order_seq_cst);
      if (live - blocked_.load(std::memory_order_seq_cst) < max_workers_ &&
          live < max_workers_ + futures::ThreadPoolExecutor::kMaxCompensating && !exiting()) {
        // Reap workers that retired, so a long-lived pool does not accumulate them.
        std::erase_if(threads_, [](const std::unique_ptr<threading::Thread>& t) {
          if (t->is_alive()) return false;
          t->join();
          return true;
        });
        // Non-daemon, as in Python 3.9+: the exit hook above stops the pool, then threading's
        // exit join waits for the workers to finish the queued work. The thread owns a
        // reference to the core: a pool whose executor is gone (even destroyed by one of its
        // own tasks) lives until its last worker is done with it.
        auto t = std::make_unique<threading::Thread>(
            threading::ThreadOptions{.name = prefix_ + "_" + std::to_string(started_),
                                     .daemon = false},
            [self = shared_from_this()]() mutable {
              const std::shared_ptr<PoolCore> keep = std::move(self);
              keep->worker();
            });
        threads_.reserve(threads_.size() + 1);
        live_.fetch_add(1, std::memory_order_seq_cst);
        try {
          t->start();
        } catch (...) {
          live_.fetch_sub(1, std::memory_order_seq_cst);
          throw;
        }
        threads_.push_back(std::move(t));
        ++started_;
      }
    } catch (...) {
      threads_lock_.unlock();
      throw;
    }
    threads_lock_.unlock();
  }

  // An idle worker beyond max_workers runnable (a compensating one, after the wait it
  // stood in for ended) leaves. True: this worker retires (no longer counted live).
  bool retire() noexcept {
    if (runnable() <= max_workers_) return false;
    threads_lock_.lock();
    const bool go = runnable() > max_workers_;
    if (go) live_.fetch_sub(1, std::memory_order_seq_cst);
    threads_lock_.unlock();
    return go;
  }

  void worker() noexcept {
    WorkerSlot slot(this);
    if (initializer_) {
      try {
        initializer_();
      } catch (...) {
        log_error("Exception in initializer:", std::current_exception(), true);
        initializer_failed();
        live_.fetch_sub(1, std::memory_order_seq_cst);
        return;
      }
    }
    t_pool = this;
    tls_worker = &slot;
    bool retired = false;
    while (StateBase* t = next_task(slot, retired)) run_task(t);
    tls_worker = nullptr;
    t_pool = nullptr;
    if (!retired) live_.fetch_sub(1, std::memory_order_seq_cst);
  }

  // Blocks for the next task; nullptr once the pool is shut down and drained, broken, or
  // this worker retires (retired = true). A worker counts as idle (idle_, and a token for
  // push()) from the moment it finds the queue empty — or, when the queue is empty as its
  // task finishes, from just before the task's result is published (task_finishing) — until
  // it has a task. Only one idle worker spins at a time; the others sleep at once (two
  // spinners on this 2-core machine would take the CPU from the thread that submits).
  StateBase* next_task(WorkerSlot& w, bool& retired) noexcept {
    if (StateBase* t = try_pop()) {
      if (w.idle) leave_idle(w);
      return t;
    }
    if (!w.idle) enter_idle(w);
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
      if (StateBase* t = try_pop()) {
        leave_idle(w);
        return t;
      }
      if (exiting() || (retired = retire())) {
        leave_idle(w);
        return nullptr;
      }
      (void)sleep_unless([&] { return !looks_empty() || exiting() || runnable() > max_workers_; },
                         nullptr);
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
        pending->set_exception(
            std::make_exception_ptr(futures::BrokenThreadPool(broken_message())));
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
  // counts and the read-mostly flags each on their own cache lines.
  alignas(64) std::atomic<StateBase*> tail_{&stub_};  // read by idle workers
  alignas(64) std::atomic<int> pushing_{0};           // touched by submitters only
  alignas(64) concur::detail::BasicLock<concur::detail::Scope::Private> cons_lock_;
  StateBase* head_ = &stub_;  // guarded by cons_lock_
  StateBase stub_;            // the MPSC list's permanent node (never run)
  alignas(64) std::atomic<std::uint32_t> sleepers_{0};  // mirror of idle_cond_.waiters()
  concur::detail::BasicLock<concur::detail::Scope::Private> sleep_lock_;
  concur::detail::BasicCondition<concur::detail::Scope::Private> idle_cond_;
  std::atomic<bool> spinner_{false};
  std::atomic<int> spin_budget_{kWorkerSpin};
  // Idle workers, and Python's idle semaphore (tokens_ <= idle_: each token is an idle
  // worker no submit has claimed yet).
  alignas(64) std::atomic<int> idle_{0};
  std::atomic<int> tokens_{0};
  // Read-mostly: they change when a worker starts, retires, or blocks in a future wait.
  alignas(64) std::atomic<int> live_{0};  // workers started (or starting), not yet gone
  std::atomic<int> blocked_{0};           // of those, blocked in a future wait
  std::atomic<bool> shutdown_{false};
  std::atomic<bool> broken_{false};
  concur::detail::BasicLock<concur::detail::Scope::Private> threads_lock_;
  concur::detail::BasicLock<concur::detail::Scope::Private> join_lock_;
  std::vector<std::unique_ptr<threading::Thread>> threads_;  // guarded by threads_lock_
  int started_ = 0;  // workers ever started (for names); guarded by threads_lock_
};

void WorkerSlot::begin_blocking() noexcept {
  pool->begin_blocking();
}
void WorkerSlot::end_blocking() noexcept {
  pool->end_blocking();
}
void WorkerSlot::task_finishing() noexcept {
  // Idle from now if nothing is queued: a submit made after seeing this result must find
  // the token (three sequential submit().result() calls use one worker, as in Python).
  if (!idle && pool->looks_empty()) pool->enter_idle(*this);
}

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

}  // namespace concur::detail

namespace concur::futures {

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
    : core_(std::make_shared<detail::PoolCore>(checked_workers(max_workers, options),
                                               std::move(options))) {}

ThreadPoolExecutor::ThreadPoolExecutor(ExecutorOptions options)
    : ThreadPoolExecutor(default_max_workers(), std::move(options)) {}

ThreadPoolExecutor::~ThreadPoolExecutor() {
  core_->release_from_executor();
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
