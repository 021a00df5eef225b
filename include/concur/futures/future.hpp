// concur/futures/future.hpp — Python's concurrent.futures.Future, wait() and as_completed().
//
// Future<T> is a copyable handle over a reference-counted shared state (like Python's
// Future object: every copy sees the same state). The consumer side is Python's: result(),
// exception(), cancel(), cancelled(), running(), done(), add_done_callback(). The producer
// side is Python's "for executors only" API, public here so that any producer can complete
// a future: set_running_or_notify_cancel(), set_result(), set_exception(). That is also how
// the process pool completes a future from another process's reply: it keeps a Future<T>
// handle and calls set_result(decoded value) / set_exception(...) from its reader thread;
// there is no second future type.
//
// States: PENDING -> RUNNING -> FINISHED, or PENDING -> CANCELLED (-> CANCELLED_AND_NOTIFIED
// when the executor sees it). Differences from Python, on purpose:
//  * A cancelled future counts as done for wait()/as_completed() as soon as cancel()
//    returns (Python waits until the executor dequeues it), so waiting on a cancelled task
//    never stalls behind a busy pool.
//  * A waiting thread never runs other work meanwhile (no "helping": a task's locks,
//    thread-locals and timeouts stay its own). A thread-pool worker that blocks in a wait
//    (result(), exception(), wait(), as_completed()) tells its pool, which may start a
//    compensating worker (bounded; see thread_pool.hpp), so a task that submits to its own
//    pool and waits for the result does not deadlock it.
//  * result() of a move-only T moves the value out: the first call gets it, later calls
//    throw InvalidStateError("result already retrieved"). Copyable T is copied each call.
//  * A future is waitable from any number of threads; wait()/as_completed() accept any
//    range of futures (std::vector, std::span, ...).
//
// Lifetime: the shared state lives while any handle or a queued task refers to it (waiters
// unregister before they return). Callbacks run on the thread that completes or cancels it, or at
// once on the thread that adds them to a done future; an exception escaping a callback is
// logged ("exception calling callback for <Future ...>") and not propagated.
// Thread-safety: every member may be called concurrently on the same or different handles.
// Memory ordering: set_result/set_exception happen-before any result()/exception()/done()
// that observes the future finished, and before the callbacks run.
// Performance: a future is one allocation (the task's state and its callable share it when
// submitted to an executor; 56 bytes for a capture-less task). Its state is one 32-bit word
// with two flags: "listeners" (callbacks or wait()/as_completed() waiters registered) and
// "sleepers" (a result() caller sleeps on the word). Without them, completing a future is one
// compare-exchange; with sleepers it adds one FUTEX_WAKE on the word itself; only with
// listeners does it take the state's lock. result() spins briefly (adaptive) before it
// sleeps, since a short task often finishes within the 12-16 us a sleep/wake would cost.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>
#include <vector>

#include "concur/detail/condition.hpp"
#include "concur/detail/futex.hpp"
#include "concur/errors.hpp"

namespace concur::futures {

template <class T>
class Future;

// When wait() returns (Python's FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED).
enum class ReturnWhen { FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED };

// Keyword arguments shared by ThreadPoolExecutor and ProcessPoolExecutor (this member
// order). A thread pool rejects max_tasks_per_child with ValueError.
struct ExecutorOptions {
  std::function<void()> initializer{};  // run once in every worker; throws -> broken pool
  std::optional<std::size_t> max_tasks_per_child{};  // process pools only
  std::string thread_name_prefix{};                  // "" -> "ThreadPoolExecutor-N"
};

// Keyword arguments of Executor::map (this member order).
struct MapOptions {
  // Deadline for the whole map, measured from the call (Python's timeout).
  std::optional<std::chrono::nanoseconds> timeout{};
  // Items per task: used by process pools, ignored by the thread pool (as in Python).
  std::size_t chunksize = 1;
  // Python 3.14's buffersize (cpython#74028): nullopt submits every item when map() is
  // called (the default, as in Python); n > 0 submits n, then one more as each result is
  // consumed (input read lazily, a bounded window). 0 -> ValueError.
  std::optional<std::size_t> buffersize{};
};

}  // namespace concur::futures

namespace concur::detail {

// The low bits of a future's state word. Finishing: a producer has claimed the future and
// is storing its value (others see it as running; it is not done yet).
enum class State : std::uint32_t {
  Pending,
  Running,
  Finishing,
  Cancelled,
  CancelledAndNotified,
  Finished
};

// Python's state names, for messages ("PENDING", "FINISHED", ...).
const char* state_name(State s) noexcept;

class StateBase;

// Something blocked on one or more futures; notified (once per future) when each is done.
// notify() runs with that future's lock held: it must be short and must not touch futures.
class Waiter {
 public:
  virtual void notify(StateBase& s) noexcept = 0;

 protected:
  ~Waiter() = default;
};

// The pool worker a thread is (set by the pool for the worker's lifetime), as seen by the
// futures code: a worker announces that it blocks in a future wait, so that its pool can
// start a compensating worker (see thread_pool.hpp), and that the task it runs is about to
// publish its result, so that the pool counts it idle before the submitter can see the
// result (Python's idle semaphore, released before a sequential submit() can look at it).
class WorkerHooks {
 public:
  virtual void begin_blocking() noexcept = 0;
  virtual void end_blocking() noexcept = 0;
  virtual void task_finishing() noexcept = 0;

 protected:
  ~WorkerHooks() = default;
};

inline thread_local WorkerHooks* tls_worker = nullptr;

// Scope of a future wait that is about to sleep: tells this thread's pool (if any).
class BlockedInWait {
 public:
  BlockedInWait() noexcept : w_(tls_worker) {
    if (w_) w_->begin_blocking();
  }
  BlockedInWait(const BlockedInWait&) = delete;
  BlockedInWait& operator=(const BlockedInWait&) = delete;
  ~BlockedInWait() {
    if (w_) w_->end_blocking();
  }

 private:
  WorkerHooks* w_;
};

// The demangled name of a type, for messages ("int", "std::string").
std::string result_type_name(const std::type_info& t);

// Logs `message` and the exception's type and what() through concur::logging's
// "concurrent.futures" logger (Python's name) at ERROR (CRITICAL if `critical`). Used for
// exceptions in callbacks and initializers. Never throws.
void log_error(const std::string& message, std::exception_ptr e, bool critical = false) noexcept;

class StateBase;

// A producer whose futures complete by polling (the MPI executor: replies arrive only when
// someone probes): a thread about to wait on one of its futures polls in its place for a
// while instead of sleeping, so one lone task costs no thread hand-off. drive() returns when
// the future is done, the deadline passes or the driver's own budget is spent; it never
// runs tasks, but futures it completes meanwhile run their done-callbacks on the caller.
class WaitDriver {
 public:
  virtual ~WaitDriver() = default;
  virtual void drive(StateBase& s, const Clock::time_point* deadline) noexcept = 0;
};

// The type-independent part of a future's shared state.
class StateBase {
 public:
  StateBase() noexcept = default;
  // Starts with `refs` references (an executor's task: the Future's and the queue's).
  explicit StateBase(std::uint32_t refs) noexcept : refs_(refs) {}
  StateBase(const StateBase&) = delete;
  StateBase& operator=(const StateBase&) = delete;
  virtual ~StateBase() = default;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  State state() const noexcept {
    return static_cast<State>(state_.load(std::memory_order_acquire) & kStateMask);
  }
  bool done() const noexcept { return state() >= State::Cancelled; }
  bool cancelled() const noexcept {
    const State s = state();
    return s == State::Cancelled || s == State::CancelledAndNotified;
  }
  bool running() const noexcept {
    const State s = state();
    return s == State::Running || s == State::Finishing;
  }
  // Only meaningful once finished.
  bool failed() const noexcept { return state() == State::Finished && exc_ != nullptr; }

  // Python's Future.cancel(): false if running or finished.
  bool cancel();
  // Python's executor-side call: true -> now RUNNING; false -> it was cancelled.
  // RuntimeError("Future in unexpected state") otherwise.
  bool set_running_or_notify_cancel();
  // Executor-side: a RUNNING future whose work never began (a process pool's task written
  // ahead to a worker and skipped by shutdown(cancel_futures)) becomes cancelled, waiters
  // and callbacks notified as by cancel(). False (nothing changes) if it is not RUNNING.
  bool withdraw() noexcept;
  // Completes with an exception. InvalidStateError if already cancelled or finished.
  void set_exception(std::exception_ptr e);
  // Runs cb when done (at once, on this thread, if already done).
  void add_done_callback(std::function<void()> cb);
  // Registers a waiter; false (not registered) if already done.
  bool add_waiter(Waiter* w);
  void remove_waiter(Waiter* w) noexcept;
  // Blocks until done or *deadline (nullptr: none); returns done(). Never runs other
  // work meanwhile; a pool worker announces the wait to its pool (BlockedInWait). With a
  // driver, the driver polls first (WaitDriver).
  bool wait(const Clock::time_point* deadline);
  // Executor-side, before the future is handed out: the WaitDriver of its producer (held
  // weakly: a future may outlive its executor).
  void set_driver(std::weak_ptr<WaitDriver> d) noexcept { driver_ = std::move(d); }
  // Python's repr: "<Future at 0x... state=finished raised ValueError>".
  std::string repr() const;

  // The exception of a finished future (nullptr if it returned). CancelledError if
  // cancelled. Precondition: done().
  std::exception_ptr exception_after_done() const;
  [[noreturn]] void throw_cancelled() const;

  // Executor hooks: the intrusive link of a pool's queue and the task body.
  std::atomic<StateBase*> next_{nullptr};
  virtual void run() noexcept {}

 protected:
  void lock() const noexcept { lock_.lock(); }
  void unlock() const noexcept { lock_.unlock(); }
  // Claims the right to complete the future (PENDING/RUNNING -> FINISHING); throws
  // InvalidStateError ("FINISHED: <Future ...>") if it is cancelled or finished already.
  // Returns the state to restore if storing the value fails.
  std::uint32_t claim();
  void unclaim(std::uint32_t previous) noexcept;
  // After claim() and storing the value/exception: publishes FINISHED, wakes result()
  // sleepers, notifies waiters and runs callbacks (only if there are any: the common case
  // is one compare-exchange, no lock).
  void publish_finished() noexcept;
  const std::exception_ptr& stored_exception() const noexcept { return exc_; }
  virtual std::string describe_value() const { return {}; }

 private:
  void run_callbacks(std::vector<std::function<void()>>& cbs) noexcept;
  void notify_waiters_locked() noexcept;
  // Sets kListeners unless the future is done; false if done.
  bool mark_listeners() noexcept;
  // Wakes result() sleepers and handles listeners after a transition to done from `old`.
  void after_done(std::uint32_t old) noexcept;
  // CAS of the state bits from `from` to `to` (then after_done); false, with the word last
  // seen in `seen`, when the state is not `from`.
  bool move_state(State from, State to, std::uint32_t& seen) noexcept;

  // The state word: a State in the low bits, plus kListeners (waiters or callbacks were
  // registered: completion must take the lock) and kSleepers (a thread sleeps on this word
  // in futex_wait: completion must FUTEX_WAKE). Without them completing is one CAS.
  static constexpr std::uint32_t kStateMask = 0x7;
  static constexpr std::uint32_t kListeners = 0x8;
  static constexpr std::uint32_t kSleepers = 0x10;

  std::atomic<std::uint32_t> refs_{1};
  std::atomic<std::uint32_t> state_{static_cast<std::uint32_t>(State::Pending)};
  mutable BasicLock<Scope::Private> lock_;
  std::exception_ptr exc_;            // written before FINISHED is published
  std::weak_ptr<WaitDriver> driver_;  // set before the future is shared
  // Registered waiters and callbacks, allocated on first registration (most futures never
  // get any; keeping them out of line keeps a task's state small). Guarded by lock_.
  struct Listeners {
    std::vector<Waiter*> waiters;
    std::vector<std::function<void()>> callbacks;
  };
  std::unique_ptr<Listeners> listeners_;
};

// The typed part: the value.
template <class T>
class TypedState : public StateBase {
 public:
  using Stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

  TypedState() noexcept = default;
  explicit TypedState(std::uint32_t refs) noexcept : StateBase(refs) {}

  // Completes with a value. InvalidStateError if already cancelled or finished.
  template <class... A>
  void set_value(A&&... a) {
    const std::uint32_t prev = claim();
    try {
      value_.emplace(std::forward<A>(a)...);
    } catch (...) {
      unclaim(prev);
      throw;
    }
    publish_finished();
  }

 protected:
  std::string describe_value() const override {
    if constexpr (std::is_void_v<T>)
      return "void";
    else
      return result_type_name(typeid(T));
  }

 public:
  // Precondition: done(). Returns the value, rethrows the exception, or CancelledError.
  T take_result() {
    if (cancelled()) throw_cancelled();
    if (const auto& e = stored_exception()) std::rethrow_exception(e);
    if constexpr (std::is_void_v<T>) {
      return;
    } else if constexpr (std::is_copy_constructible_v<T>) {
      return *value_;
    } else {
      lock();
      if (taken_) {
        unlock();
        throw futures::InvalidStateError("result already retrieved");
      }
      taken_ = true;
      T v = std::move(*value_);
      unlock();
      return v;
    }
  }

 private:
  std::optional<Stored> value_;
  bool taken_ = false;  // move-only T: guarded by the lock
};

// A task submitted to an executor: its state and its callable in one allocation.
template <class T, class Fn>
class TaskState final : public TypedState<T> {
 public:
  // Two references: the Future's and the executor queue's.
  explicit TaskState(Fn&& fn) : TypedState<T>(2), fn_(std::move(fn)) {}
  void run() noexcept override {
    bool go = false;
    try {
      go = this->set_running_or_notify_cancel();
    } catch (...) {
      // Completed through the public producer API before it could start: nothing to run.
    }
    if (!go) {
      fn_.reset();
      return;
    }
    try {
      if constexpr (std::is_void_v<T>) {
        (*fn_)();
        fn_.reset();
        finishing();
        this->set_value();
      } else {
        auto v = (*fn_)();
        fn_.reset();
        finishing();
        this->set_value(std::move(v));
      }
    } catch (...) {
      fn_.reset();
      finishing();
      try {
        this->set_exception(std::current_exception());
      } catch (...) {
        // Someone completed the future through its public producer API meanwhile.
      }
    }
  }

 private:
  static void finishing() noexcept {
    if (WorkerHooks* w = tls_worker) w->task_finishing();
  }
  std::optional<Fn> fn_;  // destroyed as soon as the task has run (releases captures)
};

// Collects notifications from many futures (wait() and as_completed()).
class MultiWaiter final : public Waiter {
 public:
  // collect: keep the finished states in order (as_completed), room for `reserve` of them.
  MultiWaiter(bool collect, std::size_t reserve) : collect_(collect) {
    if (collect_) finished_.reserve(reserve);
  }
  void notify(StateBase& s) noexcept override;
  // Blocks until pred() (evaluated with the waiter's lock held) or *deadline.
  template <class P>
  bool wait_until(P pred, const Clock::time_point* deadline) {
    lock_.lock();
    const bool ready = pred();
    lock_.unlock();
    if (ready) return true;
    // Announced before the lock is taken again: the pool may start a thread meanwhile, and
    // completions must not wait for that on this waiter's lock.
    BlockedInWait blocked;
    lock_.lock();
    while (!pred()) {
      if (!cond_.wait(lock_, deadline) && !pred()) {
        lock_.unlock();
        return false;
      }
    }
    lock_.unlock();
    return true;
  }
  // Guarded by the waiter's lock (read inside pred, or via finished_at).
  std::size_t count_ = 0;
  bool saw_exception_ = false;
  // The i-th future to finish (i < finished_.size()).
  StateBase* finished_at(std::size_t i);
  std::vector<StateBase*> finished_;  // reserved up front: notify() never allocates

 private:
  const bool collect_;
  BasicLock<Scope::Private> lock_;
  BasicCondition<Scope::Private> cond_;
};

// The one single-pass result range of the futures module (as_completed(), Executor::map,
// later imap): `for (auto& v : range)`, begin() once. Source::next() produces the next
// element (a pointer valid until the next call) or nullptr at the end, and may throw (the
// exception reaches the caller of begin()/operator++; the range stays usable where the
// source says so). Source::value_type is what iterating yields.
template <class Source>
class ResultRange {
 public:
  using value_type = typename Source::value_type;

  template <class... A>
  explicit ResultRange(A&&... a) : src_(std::forward<A>(a)...) {}
  ResultRange(ResultRange&&) = default;  // only before begin(): iterators point here
  ResultRange(const ResultRange&) = delete;
  ResultRange& operator=(const ResultRange&) = delete;
  ResultRange& operator=(ResultRange&&) = delete;

  class iterator {
   public:
    using value_type = ResultRange::value_type;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    value_type& operator*() const { return *r_->cur_; }
    value_type* operator->() const { return r_->cur_; }
    iterator& operator++() {
      r_->step();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.at_end(); }

   private:
    friend class ResultRange;
    bool at_end() const { return r_->done_; }
    explicit iterator(ResultRange* r) : r_(r) {}
    ResultRange* r_ = nullptr;
  };

  // Produces the first element (blocking for it). Single pass: call once.
  iterator begin() {
    step();
    return iterator(this);
  }
  std::default_sentinel_t end() const noexcept { return {}; }

  // Collects the remaining elements into a vector (rethrows at the first failure).
  std::vector<value_type> to_vector() {
    std::vector<value_type> out;
    for (auto& v : *this) out.push_back(std::move(v));
    return out;
  }

 private:
  void step() {
    cur_ = nullptr;
    cur_ = src_.next();
    done_ = cur_ == nullptr;
  }
  Source src_;
  value_type* cur_ = nullptr;
  bool done_ = false;
};

template <class T>
struct is_future : std::false_type {};
template <class T>
struct is_future<futures::Future<T>> : std::true_type {};

template <class R>
concept FutureRange = std::ranges::input_range<R> &&
    is_future<std::remove_cvref_t<std::ranges::range_reference_t<R>>>::value;

template <class R>
using future_value_t = typename std::remove_cvref_t<std::ranges::range_reference_t<R>>::value_type;

}  // namespace concur::detail

namespace concur::futures {

// A handle to the eventual result of a call (Python's concurrent.futures.Future).
template <class T>
class Future {
  using State = detail::TypedState<T>;

 public:
  using value_type = T;

  // A new pending future, not associated with any executor (Python's Future()).
  Future() : s_(new State) {}
  Future(const Future& o) noexcept : s_(o.s_) {
    if (s_) s_->add_ref();
  }
  Future(Future&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Future& operator=(Future o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~Future() {
    if (s_) s_->release();
  }

  // Blocks until done; returns the value, rethrows the call's exception, or throws
  // CancelledError.
  T result() const {
    st()->wait(nullptr);
    return st()->take_result();
  }
  // As result(), waiting at most `timeout` (measured on the steady clock); TimeoutError if
  // not done by then. A negative timeout means "do not wait" (as in Python), hours::max()
  // waits forever; ValueError for NaN.
  template <class Rep, class Period>
  T result(std::chrono::duration<Rep, Period> timeout) const {
    const auto dl = concur::detail::Deadline::after(timeout);
    if (!st()->wait(dl.get())) throw TimeoutError("Future did not finish within the timeout");
    return st()->take_result();
  }
  // Blocks until done; the call's exception or nullptr if it returned. CancelledError if
  // cancelled.
  std::exception_ptr exception() const {
    st()->wait(nullptr);
    return st()->exception_after_done();
  }
  template <class Rep, class Period>
  std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) const {
    const auto dl = concur::detail::Deadline::after(timeout);
    if (!st()->wait(dl.get())) throw TimeoutError("Future did not finish within the timeout");
    return st()->exception_after_done();
  }
  // Blocks until done (an addition: Python spells it wait([f])). Never throws.
  void wait() const { st()->wait(nullptr); }
  // Waits at most `timeout`; returns done().
  template <class Rep, class Period>
  [[nodiscard]] bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return st()->wait(concur::detail::Deadline::after(timeout).get());
  }

  // Cancels if still pending: true if now cancelled (also if it already was), false if it
  // is running or finished. Runs the callbacks on this thread. Never blocks.
  bool cancel() const { return st()->cancel(); }
  bool cancelled() const { return st()->cancelled(); }
  bool running() const { return st()->running(); }
  // Finished or cancelled. Lock-free.
  bool done() const { return st()->done(); }

  // Calls fn(future) once done: at once on this thread if already done, else on the thread
  // that completes or cancels it. Exceptions from fn are logged, not propagated.
  void add_done_callback(std::function<void(Future<T>&)> fn) const {
    State* s = st();
    s->add_done_callback([s, fn = std::move(fn)]() {
      s->add_ref();
      Future self(s);
      fn(self);
    });
  }

  // Producer API (Python: "for executors and unit tests").
  // true: the future is now RUNNING (cancel() will fail); false: it was cancelled.
  // RuntimeError("Future in unexpected state") if running or finished already.
  bool set_running_or_notify_cancel() const { return st()->set_running_or_notify_cancel(); }
  // RUNNING -> cancelled, for an executor that marked it running and then learnt that its
  // work never began; false if it is not RUNNING (see StateBase::withdraw).
  bool withdraw() const { return st()->withdraw(); }
  // Completes with a value; InvalidStateError if already cancelled or finished.
  template <class U = T>
  requires(!std::is_void_v<U>) void set_result(U&& value) const {
    st()->set_value(std::forward<U>(value));
  }
  void set_result() const requires std::is_void_v<T> { st()->set_value(); }
  // Completes with an exception; InvalidStateError if already cancelled or finished.
  void set_exception(std::exception_ptr e) const { st()->set_exception(std::move(e)); }
  template <class E>
  requires std::is_base_of_v<std::exception, std::decay_t<E>>
  void set_exception(E&& e) const {
    st()->set_exception(std::make_exception_ptr(std::forward<E>(e)));
  }

  // Python's repr: "<Future at 0x... state=running>", "<Future at 0x... state=finished
  // returned int>" (the demangled T; "void"), "... state=finished raised ValueError>".
  std::string repr() const { return st()->repr(); }
  // False only for a moved-from handle.
  bool valid() const noexcept { return s_ != nullptr; }
  // Handles are equal when they share one state.
  friend bool operator==(const Future& a, const Future& b) noexcept { return a.s_ == b.s_; }

  // Internal: adopts one reference to `s`.
  explicit Future(State* s) noexcept : s_(s) {}
  detail::StateBase* state_base() const { return st(); }

 private:
  State* st() const {
    if (!s_) throw InvalidStateError("Future has no state (moved from)");
    return s_;
  }
  State* s_;
};

template <class T>
std::ostream& operator<<(std::ostream& os, const Future<T>& f) {
  return os << f.repr();
}

// Result of wait(): the futures done and not done, each in input order (duplicates
// removed). Python returns two sets.
template <class T>
struct DoneAndNotDone {
  std::vector<Future<T>> done;
  std::vector<Future<T>> not_done;
};

}  // namespace concur::futures

namespace concur::detail {
template <class T, class R>
std::vector<futures::Future<T>> unique_futures(R&& fs) {
  std::vector<futures::Future<T>> out;
  for (auto&& f : fs) {
    bool dup = false;
    for (const auto& g : out)
      if (g == f) {
        dup = true;
        break;
      }
    if (!dup) out.push_back(f);
  }
  return out;
}
// Small inputs: the quadratic scan above; large: by state address.
template <class T, class R>
std::vector<futures::Future<T>> dedup(R&& fs);

// Pointers to the distinct futures of a forward range of Future<T> lvalues, in input order.

// An open-addressing set of future states, sized for n entries: removing duplicates from
// large inputs in O(n) (wait() on the 100k futures of a benchmark spent 10% of its time in
// an O(n log n) sort before). insert() returns false for a state already seen.
class StateSet {
 public:
  explicit StateSet(std::size_t n) {
    std::size_t cap = 32;
    while (cap < n * 2) cap *= 2;
    slots_.assign(cap, nullptr);
  }
  bool insert(const StateBase* s) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t h = (reinterpret_cast<std::uintptr_t>(s) >> 4) * 0x9E3779B97F4A7C15ull;
    for (h &= mask;; h = (h + 1) & mask) {
      if (slots_[h] == nullptr) {
        slots_[h] = s;
        return true;
      }
      if (slots_[h] == s) return false;
    }
  }

 private:
  std::vector<const StateBase*> slots_;
};

template <class T, class R>
std::vector<const futures::Future<T>*> dedup_ptrs(R& fs) {
  std::vector<const futures::Future<T>*> out;
  if constexpr (std::ranges::sized_range<R>) out.reserve(std::ranges::size(fs));
  // One pass over the handles (not the states): count them, reject moved-from handles, and
  // see whether the state addresses are strictly monotonic, which rules out duplicates
  // without a lookup table. Futures submitted in a row usually are (the allocator hands out
  // consecutive blocks); the hash set below costs ~10 ns a future more.
  std::size_t n = 0;
  bool up = true, down = true;
  const StateBase* prev = nullptr;
  for (const auto& f : fs) {
    const StateBase* s = f.state_base();  // throws InvalidStateError for a moved-from handle
    if (prev) {
      up = up && s > prev;
      down = down && s < prev;
    }
    prev = s;
    ++n;
  }
  if (up || down) {
    for (const auto& f : fs) out.push_back(&f);
    return out;
  }
  if (n <= 16) {
    for (const auto& f : fs) {
      bool dup = false;
      for (const auto* g : out)
        if (*g == f) {
          dup = true;
          break;
        }
      if (!dup) out.push_back(&f);
    }
    return out;
  }
  StateSet seen(n);
  for (const auto& f : fs) {
    if (seen.insert(f.state_base())) out.push_back(&f);
  }
  return out;
}
}  // namespace concur::detail

namespace concur::futures {

// Waits for the futures (Python's concurrent.futures.wait). timeout nullopt = no limit.
// Returns when return_when is met or the timeout passes (no exception on timeout: look at
// not_done). Accepts any range of Future<T> (vector, span, ...).
template <detail::FutureRange R>
DoneAndNotDone<detail::future_value_t<R>> wait(
    R&& fs, std::optional<std::chrono::nanoseconds> timeout = std::nullopt,
    ReturnWhen return_when = ReturnWhen::ALL_COMPLETED) {
  using T = detail::future_value_t<R>;
  // Work on the caller's handles (no reference counting) when the range can be walked
  // twice; an input-only range is copied first.
  if constexpr (!std::ranges::forward_range<R> ||
                !std::is_lvalue_reference_v<std::ranges::range_reference_t<R>>) {
    std::vector<Future<T>> copy;
    for (auto&& f : fs) copy.push_back(f);
    return wait(copy, timeout, return_when);
  } else {
    std::vector<const Future<T>*> all = detail::dedup_ptrs<T>(fs);
    std::optional<detail::Clock::time_point> dl;
    if (timeout) dl = concur::detail::Deadline::after(*timeout).time_point();
    const detail::Clock::time_point* dlp = dl ? &*dl : nullptr;

    std::size_t n_done = 0;
    bool any_failed = false;
    for (const auto* f : all)
      if (f->done()) {
        ++n_done;
        any_failed = any_failed || f->state_base()->failed();
      }
    const bool satisfied = n_done == all.size() ||
                           (return_when == ReturnWhen::FIRST_COMPLETED && n_done > 0) ||
                           (return_when == ReturnWhen::FIRST_EXCEPTION && any_failed);
    if (!satisfied) {
      if (return_when == ReturnWhen::ALL_COMPLETED) {
        // One future at a time: no waiter registration, O(n) for any n.
        for (const auto* f : all)
          if (!f->state_base()->wait(dlp)) break;
      } else {
        detail::MultiWaiter w(false, 0);
        std::vector<detail::StateBase*> registered;
        registered.reserve(all.size() - n_done);
        std::size_t pending = 0;
        for (const auto* f : all) {
          if (f->done()) continue;
          ++pending;
          if (f->state_base()->add_waiter(&w))
            registered.push_back(f->state_base());
          else
            w.notify(*f->state_base());  // finished between the scan and the registration
        }
        const bool first_exc = return_when == ReturnWhen::FIRST_EXCEPTION;
        try {
          (void)w.wait_until(
              [&] { return first_exc ? (w.saw_exception_ || w.count_ == pending) : w.count_ > 0; },
              dlp);
        } catch (...) {
          for (auto* s : registered) s->remove_waiter(&w);
          throw;
        }
        for (auto* s : registered) s->remove_waiter(&w);
      }
    }
    DoneAndNotDone<T> out;
    out.done.reserve(all.size());
    for (const auto* f : all) (f->done() ? out.done : out.not_done).push_back(*f);
    return out;
  }
}

// Same with a timeout of any duration type, saturated: hours::max() is no limit (it does not
// fit the optional's nanoseconds); ValueError for NaN.
template <detail::FutureRange R, class Rep, class Period>
DoneAndNotDone<detail::future_value_t<R>> wait(R&& fs, std::chrono::duration<Rep, Period> timeout,
                                               ReturnWhen return_when = ReturnWhen::ALL_COMPLETED) {
  return wait(std::forward<R>(fs),
              std::optional<std::chrono::nanoseconds>(concur::detail::saturating_ns(timeout)),
              return_when);
}

}  // namespace concur::futures

namespace concur::detail {
// as_completed()'s source: yields each future (Future<T>&) as it completes — those already
// done first, in input order — and throws TimeoutError("N (of M) futures unfinished") when
// the deadline passes first. Linear: one waiter registered on every pending future; each
// completion appends its state to the waiter's list (reserved up front), and next() turns
// the next state into a handle in O(1).
template <class T>
class AsCompletedSource {
 public:
  using value_type = futures::Future<T>;

  AsCompletedSource(std::vector<futures::Future<T>> fs,
                    std::optional<std::chrono::nanoseconds> timeout)
      : all_(std::move(fs)), waiter_(std::make_unique<MultiWaiter>(true, all_.size())) {
    if (timeout) dl_ = concur::detail::Deadline::after(*timeout).time_point();
    registered_.reserve(all_.size());
    try {
      for (std::size_t i = 0; i < all_.size(); ++i) {
        StateBase* s = all_[i].state_base();
        if (!s->done() && s->add_waiter(waiter_.get()))
          registered_.push_back(s);
        else
          ready_.push_back(i);
      }
    } catch (...) {
      unregister();
      throw;
    }
  }
  AsCompletedSource(AsCompletedSource&&) noexcept = default;
  AsCompletedSource& operator=(AsCompletedSource&&) = delete;
  ~AsCompletedSource() { unregister(); }

  futures::Future<T>* next() {
    if (next_ready_ < ready_.size()) {
      current_ = all_[ready_[next_ready_++]];
      return &current_;
    }
    if (yielded_ == registered_.size()) return nullptr;
    const auto* dlp = dl_ ? &*dl_ : nullptr;
    const std::size_t want = yielded_;
    if (!waiter_->wait_until([&] { return waiter_->finished_.size() > want; }, dlp)) {
      throw TimeoutError(std::to_string(registered_.size() - yielded_) + " (of " +
                         std::to_string(all_.size()) + ") futures unfinished");
    }
    StateBase* s = waiter_->finished_at(want);
    ++yielded_;
    s->add_ref();  // every future of the range has this state type: a Future<T>'s
    current_ = futures::Future<T>(static_cast<TypedState<T>*>(s));
    return &current_;
  }

 private:
  void unregister() noexcept {
    if (!waiter_) return;  // moved from
    for (StateBase* s : registered_) s->remove_waiter(waiter_.get());
    registered_.clear();
  }

  std::vector<futures::Future<T>> all_;  // keeps every state alive while registered
  std::vector<std::size_t> ready_;       // indices of those done before the call, input order
  std::vector<StateBase*> registered_;   // waiting for them
  std::unique_ptr<MultiWaiter> waiter_;
  std::optional<Clock::time_point> dl_;
  std::size_t next_ready_ = 0;
  std::size_t yielded_ = 0;
  futures::Future<T> current_{static_cast<TypedState<T>*>(nullptr)};
};
}  // namespace concur::detail

namespace concur::futures {

// The range as_completed() returns (single pass; see detail::ResultRange).
template <class T>
using AsCompleted = detail::ResultRange<detail::AsCompletedSource<T>>;

// Python's concurrent.futures.as_completed: `for (auto& f : as_completed(fs, 2s))`.
// Duplicates are yielded once. The futures must stay alive while iterating (the range holds
// handles to them, so they do).
template <detail::FutureRange R>
AsCompleted<detail::future_value_t<R>> as_completed(
    R&& fs, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) {
  using T = detail::future_value_t<R>;
  return AsCompleted<T>(detail::dedup<T>(std::forward<R>(fs)), timeout);
}
// Same with a timeout of any duration type, saturated (hours::max(): no limit; NaN: ValueError).
template <detail::FutureRange R, class Rep, class Period>
AsCompleted<detail::future_value_t<R>> as_completed(R&& fs,
                                                    std::chrono::duration<Rep, Period> timeout) {
  return as_completed(std::forward<R>(fs), std::optional<std::chrono::nanoseconds>(
                                               concur::detail::saturating_ns(timeout)));
}

}  // namespace concur::futures

namespace concur::detail {
template <class T, class R>
std::vector<futures::Future<T>> dedup(R&& fs) {
  std::vector<futures::Future<T>> in;
  for (auto&& f : fs) in.push_back(f);
  if (in.size() <= 16) return unique_futures<T>(in);
  StateSet seen(in.size());
  std::vector<futures::Future<T>> out;
  out.reserve(in.size());
  for (auto& f : in) {
    if (seen.insert(f.state_base())) out.push_back(std::move(f));
  }
  return out;
}
}  // namespace concur::detail
