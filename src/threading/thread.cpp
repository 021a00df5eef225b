// src/threading/thread.cpp — Thread, the registry of live threads, main/dummy threads,
// exit join, fork repair and the excepthook.
//
// The registry is one mutex and an intrusive list (no allocation under the lock). It is the
// only global lock start()/join() touch: start() inserts, the thread removes itself when
// run() is done. join() takes no lock: pthread_join for the one thread that claims the
// handle, a futex event for everybody else.
#include "concur/threading/thread.hpp"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>
#include <typeinfo>

#include "concur/detail/exception_transport.hpp"
#include "concur/detail/fd.hpp"
#include "concur/detail/fork.hpp"
#include "concur/detail/runtime.hpp"
#include "concur/errors.hpp"
#include "concur/threading/timer.hpp"
#include "thread_state.hpp"

namespace concur::detail {
constinit Mutex thread_registry_mu;
}  // namespace concur::detail

namespace concur::threading {

using detail::ThreadState;
using Kind = ThreadState::Kind;

namespace {

thread_local ThreadState* tls_state = nullptr;
std::atomic<std::size_t> g_stack_size{0};
// The one gettid() cache of the library, refreshed by the fork protocol.
pid_t cached_tid() noexcept {
  return concur::detail::this_thread_tid();
}

// Keeps the running thread's state alive until the OS thread exits (after every other
// thread_local destructor that was registered later, e.g. Local<T> values), then deletes
// the stand-in Thread if the original object was destroyed while the thread ran.
struct StateHolder {
  std::shared_ptr<ThreadState> state;
  Thread* dummy = nullptr;  // for dummies: the Thread to unregister and delete
  ~StateHolder();
};
thread_local StateHolder tls_holder;

using concur::detail::MutexLock;
using concur::detail::thread_registry_mu;

struct Registry {
  ThreadState* head CONCUR_GUARDED_BY(thread_registry_mu) = nullptr;
  ThreadState* tail CONCUR_GUARDED_BY(thread_registry_mu) = nullptr;
  std::size_t count CONCUR_GUARDED_BY(thread_registry_mu) = 0;
  ThreadState* main CONCUR_GUARDED_BY(thread_registry_mu) = nullptr;
  std::atomic<unsigned long> thread_counter{0};
  std::atomic<unsigned long> dummy_counter{0};

  void link(ThreadState* s) CONCUR_REQUIRES(thread_registry_mu) {
    s->prev = tail;
    s->next = nullptr;
    if (tail) tail->next = s; else head = s;
    tail = s;
    s->registered = true;
    ++count;
  }
  void unlink(ThreadState* s) CONCUR_REQUIRES(thread_registry_mu) {
    if (!s->registered) return;
    if (s->prev) s->prev->next = s->next; else head = s->next;
    if (s->next) s->next->prev = s->prev; else tail = s->prev;
    s->prev = s->next = nullptr;
    s->registered = false;
    --count;
  }
  void link_front(ThreadState* s) CONCUR_REQUIRES(thread_registry_mu) {
    s->prev = nullptr;
    s->next = head;
    if (head) head->prev = s; else tail = s;
    head = s;
    s->registered = true;
    ++count;
  }
};

struct HookHolder {
  concur::detail::Mutex mu;
  std::function<void(const ExceptHookArgs&)> hook CONCUR_GUARDED_BY(mu);
};

HookHolder& hooks() {
  static HookHolder* h = new HookHolder;  // leaked: used by daemon threads after exit
  return *h;
}

void join_all_non_daemon();
void after_fork_child() noexcept;
void atfork_prepare() noexcept;
void atfork_parent() noexcept;

void publish_ids(ThreadState* s) {
  s->ident.store(static_cast<std::uint64_t>(pthread_self()), std::memory_order_relaxed);
  s->native_id.store(cached_tid(), std::memory_order_relaxed);
  s->ids_ready.set();
}

Thread* make_stand_in(std::shared_ptr<ThreadState> s) { return ThreadState::adopt(std::move(s)); }

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry;  // leaked on purpose: daemon threads outlive static dtors
    auto st = std::make_shared<ThreadState>(Kind::Main);
    {
      MutexLock n(st->mu);
      st->name = "MainThread";
    }
    st->started.store(true);
    if (cached_tid() == concur::detail::this_process_pid()) {
      publish_ids(st.get());
      tls_state = st.get();
    } else {
      st->native_id.store(concur::detail::this_process_pid());
    }
    st->self.store(make_stand_in(st));  // leaked: the main thread's object lives forever
    {
      MutexLock g(thread_registry_mu);
      reg->main = st.get();
      reg->link(st.get());
    }
    concur::detail::register_exit_hook(concur::detail::kExitJoinThreads, join_all_non_daemon);
    return reg;
  }();
  return *r;
}

// Fork protocol (rank kThreading): the excepthook lock, the registry lock and the lock of
// every registered thread's state are held across fork.
[[maybe_unused]] const bool g_fork_registered =
    (concur::detail::register_fork_handler(concur::detail::ForkRank::kThreading,
                                           {atfork_prepare, atfork_parent, after_fork_child}),
     true);

// Build the registry (and so the main thread's object) while the library loads, normally
// in the main thread.
[[maybe_unused]] const bool registry_at_load = (registry(), true);

void set_os_name(pthread_t h, const std::string& name) {
  // The kernel keeps 15 bytes + NUL. Cut at a UTF-8 character boundary.
  std::size_t n = name.size() < 15 ? name.size() : 15;
  while (n > 0 && n < name.size() &&
         (static_cast<unsigned char>(name[n]) & 0xC0) == 0x80)
    --n;
  char buf[16];
  std::memcpy(buf, name.data(), n);
  buf[n] = '\0';
  ::pthread_setname_np(h, buf);  // best effort: failure changes nothing we promise
}

void run_excepthook(ThreadState* st, std::exception_ptr ep) {
  ExceptHookArgs args;
  args.exc_value = ep;
  try {
    std::rethrow_exception(ep);
  } catch (const std::exception& e) {
    args.exc_type = concur::detail::type_name(typeid(e));
    args.what = e.what();
  } catch (...) {
    args.exc_type = "unknown exception";
  }
  args.thread = st->self.load(std::memory_order_acquire);
  std::function<void(const ExceptHookArgs&)> hook = get_excepthook();
  try {
    hook(args);
  } catch (...) {
    // Python: print the hook's own failure, then fall back to the default hook.
    ExceptHookArgs inner;
    inner.exc_value = std::current_exception();
    try {
      throw;
    } catch (const std::exception& e) {
      inner.exc_type = concur::detail::type_name(typeid(e));
      inner.what = e.what();
    } catch (...) {
      inner.exc_type = "unknown exception";
    }
    std::string msg = "Exception in threading.excepthook:\n" + inner.exc_type + ": " +
                      inner.what + "\n";
    concur::detail::write_all(2, msg.data(), msg.size());
    default_excepthook(args);
  }
}

// The thread's last step in the registry: leave it, mark finished, wake joiners.
void finish(ThreadState* st) {
  Registry& r = registry();
  {
    MutexLock g(st->mu);
    st->os_alive = false;
  }
  {
    MutexLock g(thread_registry_mu);
    r.unlink(st);
    st->finished = true;
  }
  st->done.set();
}

void* thread_entry(void* arg) {
  std::unique_ptr<std::shared_ptr<ThreadState>> p(static_cast<std::shared_ptr<ThreadState>*>(arg));
  ThreadState* st = p->get();
  tls_holder.state = std::move(*p);
  p.reset();
  tls_state = st;
  publish_ids(st);
  {
    MutexLock g(st->mu);
    set_os_name(::pthread_self(), st->name);
  }
  try {
    if (st->detachable) {
      if (st->target) st->target->call();
    } else {
      st->run_fn(st->self.load(std::memory_order_acquire));
    }
  } catch (...) {
    run_excepthook(st, std::current_exception());
  }
  finish(st);
  return nullptr;
}

StateHolder::~StateHolder() {
  if (dummy) {
    ThreadState* st = tls_state;
    if (st) finish(st);
    tls_state = nullptr;
    delete dummy;
    dummy = nullptr;
    return;
  }
  if (state) {
    // A thread that leaves without returning from run() — std::exit() called on it runs
    // its thread_local destructors, this one included, before the atexit handlers — leaves
    // the registry here, before its state may be freed below: the exit join must neither
    // wait for it nor read it.
    bool finished;
    {
      MutexLock g(thread_registry_mu);
      finished = state->finished;
    }
    if (!finished) finish(state.get());
    Thread* stand_in = nullptr;
    {
      MutexLock g(thread_registry_mu);
      stand_in = state->adopted;
      state->adopted = nullptr;
    }
    tls_state = nullptr;
    state.reset();
    delete stand_in;
  }
}

// Python's threading._shutdown(), run by the thread that leaves the program (return from
// main, std::exit, mp::exit — from any thread — or a forked child's end):
// * The exiting thread is recognized by its kernel tid, not by tls_state: std::exit runs
//   the calling thread's thread_local destructors (tls_holder's) BEFORE the atexit
//   handlers, so tls_state is already null when a concur thread calls std::exit; waiting
//   for its own record would wait forever.
// * When the main thread exits, it counts as ended from now on (Python: _main_thread's
//   handle is set done before the joins): a non-daemon thread that joins main_thread() is
//   released and can finish, instead of both waiting for each other.
void join_all_non_daemon() {
  Registry& r = registry();
  const pid_t me = cached_tid();
  {
    MutexLock g(thread_registry_mu);
    ThreadState* m = r.main;
    if (m != nullptr && m->native_id.load(std::memory_order_relaxed) == me) m->done.set();
  }
  for (;;) {
    std::vector<std::shared_ptr<ThreadState>> wait_for;
    {
      MutexLock g(thread_registry_mu);
      for (ThreadState* s = r.head; s; s = s->next) {
        if (s->kind != Kind::Normal || s == tls_state) continue;
        if (s->native_id.load(std::memory_order_relaxed) == me) continue;  // the caller
        if (s->daemon.load(std::memory_order_relaxed) || s->finished) continue;
        wait_for.push_back(s->shared_from_this());
      }
    }
    if (wait_for.empty()) return;
    for (auto& s : wait_for) s->done.wait();
  }
}

// Lock order: hooks, registry, then each registered state's mu (normal code never holds a
// state's mu while it takes the registry lock, nor the other way round).
// The three handlers hold locks across fork(): outside what the analysis can follow.
void atfork_prepare() noexcept CONCUR_NO_THREAD_SAFETY_ANALYSIS {
  hooks().mu.fork_lock();
  Registry& r = registry();
  thread_registry_mu.fork_lock();
  for (ThreadState* s = r.head; s; s = s->next) s->mu.fork_lock();
}

void atfork_parent() noexcept CONCUR_NO_THREAD_SAFETY_ANALYSIS {
  Registry& r = registry();
  for (ThreadState* s = r.head; s; s = s->next) s->mu.fork_unlock();
  thread_registry_mu.fork_unlock();
  hooks().mu.fork_unlock();
}

// In the child: only the calling thread exists. The threads that do not exist here leave
// the registry as finished (never joined: their OS threads are not ours).
void after_fork_child() noexcept CONCUR_NO_THREAD_SAFETY_ANALYSIS {
  Registry& r = registry();
  ThreadState* cur = tls_state;
  if (cur == nullptr) cur = r.main;  // the forking thread becomes the (named) main thread
  for (ThreadState* s = r.head; s;) {
    ThreadState* next = s->next;
    s->mu.fork_unlock();
    if (s != cur) {
      r.unlink(s);
      s->finished = true;
      s->os_alive = false;
      s->reap_claimed.store(true);  // that OS thread does not exist here: never join it
      s->done.set();
    }
    s = next;
  }
  if (!cur->registered) r.link_front(cur);
  r.main = cur;
  tls_state = cur;
  cur->ident.store(static_cast<std::uint64_t>(pthread_self()));
  cur->native_id.store(cached_tid());
  cur->ids_ready.set();
  thread_registry_mu.fork_unlock();
  hooks().mu.fork_unlock();
}

ThreadState* current_state() {
  if (ThreadState* s = tls_state) return s;
  Registry& r = registry();
  if (ThreadState* s = tls_state) return s;
  // The main thread when the library was loaded from another thread (rare), else a dummy.
  if (cached_tid() == concur::detail::this_process_pid()) {
    MutexLock g(thread_registry_mu);
    if (r.main->ident.load() == 0) {
      publish_ids(r.main);
      tls_state = r.main;
      return r.main;
    }
  }
  auto st = std::make_shared<ThreadState>(Kind::Dummy);
  {
    MutexLock g(st->mu);
    st->name = "Dummy-" + std::to_string(r.dummy_counter.fetch_add(1) + 1);
  }
  st->daemon.store(true);
  st->started.store(true);
  publish_ids(st.get());
  Thread* t = make_stand_in(st);
  st->self.store(t);
  {
    MutexLock g(thread_registry_mu);
    r.link(st.get());
  }
  tls_state = st.get();
  tls_holder.dummy = t;  // unregistered and deleted when this thread exits
  return st.get();
}

}  // namespace

// ---- Thread ----

Thread::Thread(ThreadOptions options)
    : Thread(std::move(options), std::unique_ptr<detail::TargetBase>{}) {}

Thread::Thread(ThreadOptions options, std::unique_ptr<detail::TargetBase> target)
    : state_(std::make_shared<ThreadState>(Kind::Normal)) {
  Registry& r = registry();
  state_->target = std::move(target);
  {
    MutexLock g(state_->mu);
    state_->name = options.name.empty()
                       ? "Thread-" + std::to_string(r.thread_counter.fetch_add(1) + 1)
                       : std::move(options.name);
  }
  state_->daemon.store(options.daemon ? *options.daemon : current_thread().daemon(),
                       std::memory_order_relaxed);
  state_->self.store(this, std::memory_order_relaxed);
}

Thread::Thread(AdoptTag, std::shared_ptr<ThreadState> state) : state_(std::move(state)) {}

Thread::~Thread() {
  ThreadState* st = state_.get();
  if (!st || st->kind != Kind::Normal || !st->started.load()) return;
  if (st->self.load() != this) return;  // a stand-in dying after its thread ended
  if (st->detachable) {
    bool handed_over = false;
    {
      MutexLock g(thread_registry_mu);
      if (!st->finished) {
        // Still running: hand the identity to a stand-in and let the thread go on.
        Thread* stand_in = new Thread(AdoptTag{}, state_);
        st->adopted = stand_in;
        st->self.store(stand_in, std::memory_order_release);
        handed_over = true;
      }
    }
    if (handed_over) {
      if (st->has_handle && !st->reap_claimed.exchange(true)) ::pthread_detach(st->handle);
      return;
    }
  } else if (tls_state == st) {
    // A subclass-style thread destroying its own object: nothing can wait for itself.
    if (st->has_handle && !st->reap_claimed.exchange(true)) ::pthread_detach(st->handle);
    return;
  }
  // Finished, or subclass style that must not outlive its object: join it.
  if (st->has_handle && !st->reap_claimed.exchange(true)) {
    ::pthread_join(st->handle, nullptr);
  } else {
    st->done.wait();
  }
}

void Thread::start() {
  ThreadState* st = state_.get();
  if (st->kind != Kind::Normal || st->started.exchange(true))
    throw RuntimeError("threads can only be started once");
  st->detachable = typeid(*this) == typeid(Thread) || typeid(*this) == typeid(Timer);
  if (!st->detachable) st->run_fn = ThreadState::resolve_run(this);
  Registry& r = registry();
  {
    MutexLock g(st->mu);
    st->os_alive = true;
  }
  {
    MutexLock g(thread_registry_mu);
    r.link(st);
  }
  auto* arg = new std::shared_ptr<ThreadState>(state_);
  pthread_t handle{};
  int rc;
  if (const std::size_t ss = g_stack_size.load(std::memory_order_relaxed); ss != 0) {
    pthread_attr_t attr;
    ::pthread_attr_init(&attr);
    rc = ::pthread_attr_setstacksize(&attr, ss);
    if (rc == 0) rc = ::pthread_create(&handle, &attr, thread_entry, arg);
    ::pthread_attr_destroy(&attr);
  } else {
    rc = ::pthread_create(&handle, nullptr, thread_entry, arg);
  }
  if (rc != 0) {
    delete arg;
    {
      MutexLock g(thread_registry_mu);
      r.unlink(st);
    }
    {
      MutexLock g(st->mu);
      st->os_alive = false;
    }
    st->started.store(false);  // Python allows a retry after this failure
    (void)rc;
    throw RuntimeError("can't start new thread");  // Python's ThreadError is RuntimeError
  }
  st->ident.store(static_cast<std::uint64_t>(handle), std::memory_order_relaxed);
  {
    MutexLock g(st->mu);  // set_name() reads handle under mu
    st->handle = handle;
    st->has_handle.store(true, std::memory_order_release);
    if (st->rename_pending && st->os_alive) set_os_name(handle, st->name);
    st->rename_pending = false;
  }
}

void Thread::run() {
  // Copy the state pointer first: a target-style thread's object may be destroyed while the
  // target runs (see the banner), after which `this` is not touched again.
  ThreadState* st = state_.get();
  if (st->target) st->target->call();
}

// Python 3.13's _DummyThread.join: a thread concur did not start cannot be waited for.
constexpr const char* kJoinDummy = "cannot join a dummy thread";

void Thread::join() {
  ThreadState* st = state_.get();
  if (!st->started.load()) throw RuntimeError("cannot join thread before it is started");
  if (st == tls_state) throw RuntimeError("cannot join current thread");
  if (st->kind == Kind::Dummy) throw RuntimeError(kJoinDummy);
  if (st->has_handle && !st->reap_claimed.exchange(true)) {
    const int rc = ::pthread_join(st->handle, nullptr);  // one wake-up, no extra futex
    (void)rc;
  } else {
    st->done.wait();
  }
}

bool Thread::join_until(std::chrono::steady_clock::time_point deadline) {
  ThreadState* st = state_.get();
  if (!st->started.load()) throw RuntimeError("cannot join thread before it is started");
  if (st == tls_state) throw RuntimeError("cannot join current thread");
  if (st->kind == Kind::Dummy) throw RuntimeError(kJoinDummy);
  if (!st->done.wait(&deadline)) return false;
  // run() is over; reap the OS thread (it is past its last step, the wait is short).
  if (st->has_handle && !st->reap_claimed.exchange(true)) ::pthread_join(st->handle, nullptr);
  return true;
}

bool Thread::is_alive() const noexcept {
  const ThreadState* st = state_.get();
  return st->started.load(std::memory_order_acquire) && !st->done.is_set();
}

std::string Thread::name() const {
  MutexLock g(state_->mu);
  return state_->name;
}

void Thread::set_name(std::string name) {
  ThreadState* st = state_.get();
  MutexLock g(st->mu);
  st->name = std::move(name);
  if (st->kind != Kind::Normal || !st->os_alive) return;
  if (st == tls_state) {
    set_os_name(::pthread_self(), st->name);
  } else if (st->has_handle.load(std::memory_order_acquire)) {
    set_os_name(st->handle, st->name);
  } else {
    st->rename_pending = true;  // start() applies it once pthread_create has returned
  }
}

bool Thread::daemon() const noexcept { return state_->daemon.load(std::memory_order_relaxed); }

void Thread::set_daemon(bool daemonic) {
  if (state_->started.load()) throw RuntimeError("cannot set daemon status of active thread");
  state_->daemon.store(daemonic, std::memory_order_relaxed);
}

std::optional<std::uint64_t> Thread::ident() const {
  ThreadState* st = state_.get();
  if (!st->started.load(std::memory_order_acquire)) return std::nullopt;
  std::uint64_t id = st->ident.load(std::memory_order_relaxed);
  if (id == 0 && st->kind == Kind::Normal) {
    st->ids_ready.wait();
    id = st->ident.load(std::memory_order_relaxed);
  }
  if (id == 0) return std::nullopt;
  return id;
}

std::optional<pid_t> Thread::native_id() const {
  ThreadState* st = state_.get();
  if (!st->started.load(std::memory_order_acquire)) return std::nullopt;
  pid_t id = st->native_id.load(std::memory_order_relaxed);
  if (id == 0 && st->kind == Kind::Normal) {
    st->ids_ready.wait();
    id = st->native_id.load(std::memory_order_relaxed);
  }
  if (id == 0) return std::nullopt;
  return id;
}

std::string Thread::repr() const {
  const ThreadState* st = state_.get();
  std::string cls;
  if (st->kind == Kind::Main)
    cls = "_MainThread";
  else if (st->kind == Kind::Dummy)
    cls = "_DummyThread";
  else {
    cls = concur::detail::unqualified(concur::detail::type_name(typeid(*this)));
  }
  // Appends instead of operator+ chains (GCC 12 reports a false -Wrestrict on those).
  std::string out = "<";
  out.append(cls).append("(").append(name()).append(", ");
  if (!st->started.load()) out.append("initial");
  else out.append(st->done.is_set() ? "stopped" : "started");
  if (daemon()) out.append(" daemon");
  if (auto id = st->started.load() ? ident() : std::nullopt) out.append(" ").append(std::to_string(*id));
  out.append(")>");
  return out;
}

std::ostream& operator<<(std::ostream& os, const Thread& t) { return os << t.repr(); }
std::string to_string(const Thread& t) { return t.repr(); }

// ---- module functions ----

Thread& current_thread() {
  return *current_state()->self.load(std::memory_order_acquire);
}

Thread& main_thread() {
  Registry& r = registry();
  MutexLock g(thread_registry_mu);
  return *r.main->self.load(std::memory_order_acquire);
}

std::size_t active_count() {
  Registry& r = registry();
  MutexLock g(thread_registry_mu);
  return r.count;
}

std::vector<Thread*> enumerate() {
  Registry& r = registry();
  std::vector<Thread*> out;
  MutexLock g(thread_registry_mu);
  out.reserve(r.count);
  if (r.main->registered) out.push_back(r.main->self.load());
  for (ThreadState* s = r.head; s; s = s->next)
    if (s != r.main) out.push_back(s->self.load());
  return out;
}

std::uint64_t get_ident() noexcept { return static_cast<std::uint64_t>(::pthread_self()); }

pid_t get_native_id() noexcept { return cached_tid(); }

std::size_t stack_size(std::size_t size) {
  if (size != 0 && size < 32768)
    throw ValueError("size not valid: " + std::to_string(size) + " bytes");
  return g_stack_size.exchange(size, std::memory_order_relaxed);
}

std::size_t stack_size() noexcept { return g_stack_size.load(std::memory_order_relaxed); }

void set_excepthook(std::function<void(const ExceptHookArgs&)> hook) {
  HookHolder& h = hooks();
  MutexLock g(h.mu);
  h.hook = std::move(hook);
}

std::function<void(const ExceptHookArgs&)> get_excepthook() {
  HookHolder& h = hooks();
  {
    MutexLock g(h.mu);
    if (h.hook) return h.hook;
  }
  return default_excepthook;
}

void default_excepthook(const ExceptHookArgs& args) {
  const std::string name = args.thread ? args.thread->name() : current_thread().name();
  std::string msg = "Exception in thread " + name + ":\n" + args.exc_type;
  if (!args.what.empty()) msg += ": " + args.what;
  msg += "\n";
  concur::detail::write_all(2, msg.data(), msg.size());
}

}  // namespace concur::threading

namespace concur::detail {

Thread* ThreadState::adopt(std::shared_ptr<ThreadState> s) {
  return new Thread(Thread::AdoptTag{}, std::move(s));
}

}  // namespace concur::detail
