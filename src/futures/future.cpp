// Non-template parts of concur::futures::Future's shared state: state transitions,
// callbacks, waiters, messages.
#include "concur/futures/future.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <typeinfo>

#include "concur/detail/exception_transport.hpp"
#include "concur/logging.hpp"

namespace concur::detail {

namespace {

constexpr int kFutureSpin = 300;

// "ValueError" / "std::runtime_error" for the exception held in e.
std::string exception_type_name(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::string n = concur::detail::type_name(typeid(ex));
    // concur's errors read like Python's: drop the namespaces.
    if (n.rfind("concur::", 0) == 0) n = concur::detail::unqualified(n);
    return n;
  } catch (...) {
    return "unknown exception";
  }
}

std::string exception_what(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "(not a std::exception)";
  }
}

}  // namespace

std::string result_type_name(const std::type_info& t) {
  std::string n = concur::detail::demangle(t.name());
  // The one alias every reader knows; the rest stay as the compiler spells them.
  static const std::string kString =
      "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >";
  for (std::size_t at; (at = n.find(kString)) != std::string::npos;)
    n.replace(at, kString.size(), "std::string");
  return n;
}

const char* state_name(State s) noexcept {
  switch (s) {
    case State::Pending:
      return "PENDING";
    case State::Running:
      return "RUNNING";
    case State::Finishing:
      return "FINISHED";
    case State::Cancelled:
      return "CANCELLED";
    case State::CancelledAndNotified:
      return "CANCELLED_AND_NOTIFIED";
    case State::Finished:
      return "FINISHED";
  }
  return "?";
}

void log_error(const std::string& message, std::exception_ptr e, bool critical) noexcept {
  try {
    std::string text = message;
    if (e) {
      // Appended piecewise: g++ 12 warns (-Wrestrict, a false positive) on "\n" + string.
      text += '\n';
      text += exception_type_name(e);
      text += ": ";
      text += exception_what(e);
    }
    logging::get_logger("concurrent.futures")
        .log(critical ? logging::Level::CRITICAL : logging::Level::ERROR, text);
  } catch (...) {
  }
}

bool StateBase::move_state(State from, State to, std::uint32_t& seen) noexcept {
  seen = state_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<State>(seen & kStateMask) != from) return false;
    if (state_.compare_exchange_weak(seen, (seen & ~kStateMask) | static_cast<std::uint32_t>(to),
                                     std::memory_order_acq_rel, std::memory_order_acquire))
      break;
  }
  after_done(seen);
  return true;
}

bool StateBase::cancel() {
  std::uint32_t s = 0;
  if (move_state(State::Pending, State::Cancelled, s)) return true;
  const State st = static_cast<State>(s & kStateMask);
  return st == State::Cancelled || st == State::CancelledAndNotified;  // else running or done
}

bool StateBase::withdraw() noexcept {
  // CancelledAndNotified: the executor will not call set_running_or_notify_cancel again.
  std::uint32_t s = 0;
  return move_state(State::Running, State::CancelledAndNotified, s);
}

bool StateBase::set_running_or_notify_cancel() {
  std::uint32_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    const State st = static_cast<State>(s & kStateMask);
    std::uint32_t next;
    if (st == State::Pending)
      next = (s & ~kStateMask) | static_cast<std::uint32_t>(State::Running);
    else if (st == State::Cancelled)
      // Waiters were notified by cancel() already (see the header: cancelled counts as done).
      next = (s & ~kStateMask) | static_cast<std::uint32_t>(State::CancelledAndNotified);
    else
      throw RuntimeError("Future in unexpected state");
    if (state_.compare_exchange_weak(s, next, std::memory_order_acq_rel, std::memory_order_acquire))
      return st == State::Pending;
  }
}

std::uint32_t StateBase::claim() {
  std::uint32_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    const State st = static_cast<State>(s & kStateMask);
    if (st != State::Pending && st != State::Running) {
      std::string msg;
      try {
        msg = std::string(state_name(st)) + ": " + repr();
      } catch (...) {
      }
      throw futures::InvalidStateError(msg);
    }
    if (state_.compare_exchange_weak(
            s, (s & ~kStateMask) | static_cast<std::uint32_t>(State::Finishing),
            std::memory_order_acq_rel, std::memory_order_acquire))
      return s & kStateMask;
  }
}

void StateBase::unclaim(std::uint32_t previous) noexcept {
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  while (!state_.compare_exchange_weak(s, (s & ~kStateMask) | previous, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
  }
}

void StateBase::set_exception(std::exception_ptr e) {
  (void)claim();
  exc_ = std::move(e);
  publish_finished();
}

void StateBase::publish_finished() noexcept {
  // Flags may be added while FINISHING (a waiter registering): keep them.
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  while (!state_.compare_exchange_weak(
      s, (s & ~kStateMask) | static_cast<std::uint32_t>(State::Finished), std::memory_order_acq_rel,
      std::memory_order_relaxed)) {
  }
  after_done(s);
}

void StateBase::after_done(std::uint32_t old) noexcept {
  if (old & kSleepers) concur::detail::futex_wake(&state_, INT_MAX, Scope::Private);
  if (!(old & kListeners)) return;
  // The callbacks may drop the last handle: keep the state alive until they are done.
  add_ref();
  lock();
  notify_waiters_locked();
  std::vector<std::function<void()>> cbs;
  if (listeners_) cbs.swap(listeners_->callbacks);
  unlock();
  if (!cbs.empty()) run_callbacks(cbs);
  release();
}

void StateBase::notify_waiters_locked() noexcept {
  if (!listeners_) return;
  for (Waiter* w : listeners_->waiters) w->notify(*this);
}

bool StateBase::mark_listeners() noexcept {
  std::uint32_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<State>(s & kStateMask) >= State::Cancelled) return false;
    if (s & kListeners) return true;
    if (state_.compare_exchange_weak(s, s | kListeners, std::memory_order_acq_rel,
                                     std::memory_order_acquire))
      return true;
  }
}

void StateBase::run_callbacks(std::vector<std::function<void()>>& cbs) noexcept {
  for (auto& cb : cbs) {
    try {
      cb();
    } catch (...) {
      std::string r;
      try {
        r = repr();
      } catch (...) {
      }
      log_error("exception calling callback for " + r, std::current_exception());
    }
  }
}

void StateBase::add_done_callback(std::function<void()> cb) {
  // Under the lock: a completion that sees kListeners takes the lock before it collects the
  // callbacks, so it cannot miss this one; a completion that came first makes
  // mark_listeners() fail and the callback runs here.
  lock();
  if (mark_listeners()) {
    try {
      if (!listeners_) listeners_ = std::make_unique<Listeners>();
      listeners_->callbacks.push_back(std::move(cb));
    } catch (...) {
      unlock();
      throw;
    }
    unlock();
    return;
  }
  unlock();
  std::vector<std::function<void()>> one;
  one.push_back(std::move(cb));
  add_ref();
  run_callbacks(one);
  release();
}

bool StateBase::add_waiter(Waiter* w) {
  lock();
  if (!mark_listeners()) {
    unlock();
    return false;
  }
  try {
    if (!listeners_) listeners_ = std::make_unique<Listeners>();
    listeners_->waiters.push_back(w);
  } catch (...) {
    unlock();
    throw;
  }
  unlock();
  return true;
}

void StateBase::remove_waiter(Waiter* w) noexcept {
  lock();
  std::vector<Waiter*>* ws = listeners_ ? &listeners_->waiters : nullptr;
  for (std::size_t i = 0; ws && i < ws->size(); ++i)
    if ((*ws)[i] == w) {
      (*ws)[i] = ws->back();
      ws->pop_back();
      break;
    }
  unlock();
}

bool StateBase::wait(const Clock::time_point* deadline) {
  if (done()) return true;
  if (auto d = driver_.lock()) {
    d->drive(*this, deadline);
    if (done()) return true;
  }
  // A short task finishes within a few microseconds: spin that long before sleeping, since
  // a futex sleep + wake costs 12-16 us round trip here (bench/README.md). 300 rounds of
  // `pause` are ~3-12 us; submit().result() latency fell from ~18 us to ~2 us with it.
  // Adaptive per thread, as the pool's worker spin: halve after a spin that did not see the
  // future finish, double after one that did.
  thread_local int budget = kFutureSpin;
  bool seen = false;
  for (int i = 0; i < budget; ++i) {
    concur::detail::cpu_relax();
    if (done()) {
      seen = true;
      break;
    }
  }
  budget = seen ? std::min(budget * 2, kFutureSpin) : std::max(budget / 2, 8);
  if (seen) return true;
  if (deadline && Clock::now() >= *deadline) return done();
  BlockedInWait blocked;  // a pool worker: its pool may start a compensating worker
  std::uint32_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<State>(s & kStateMask) >= State::Cancelled) return true;
    if (!(s & kSleepers)) {
      if (!state_.compare_exchange_weak(s, s | kSleepers, std::memory_order_acq_rel,
                                        std::memory_order_acquire))
        continue;
      s |= kSleepers;
    }
    if (!concur::detail::futex_wait(&state_, s, Scope::Private, deadline)) return done();
    s = state_.load(std::memory_order_acquire);
  }
}

std::string StateBase::repr() const {
  char addr[32];
  std::snprintf(addr, sizeof addr, "%p", static_cast<const void*>(this));
  std::string r = std::string("<Future at ") + addr + " state=";
  const State s = state();
  switch (s) {
    case State::Pending:
      r += "pending";
      break;
    case State::Running:
    case State::Finishing:
      r += "running";
      break;
    case State::Cancelled:
    case State::CancelledAndNotified:
      r += "cancelled";
      break;
    case State::Finished:
      r += "finished";
      if (exc_) {
        r += " raised " + exception_type_name(exc_);
      } else {
        r += " returned";
        const std::string v = describe_value();
        if (!v.empty()) r += " " + v;
      }
      break;
  }
  return r + ">";
}

std::exception_ptr StateBase::exception_after_done() const {
  if (cancelled()) throw_cancelled();
  return exc_;
}

void StateBase::throw_cancelled() const {
  throw futures::CancelledError();
}

void MultiWaiter::notify(StateBase& s) noexcept {
  lock_.lock();
  ++count_;
  if (s.failed()) saw_exception_ = true;
  if (collect_ && finished_.size() < finished_.capacity()) finished_.push_back(&s);
  Wakeups n = cond_.prepare_notify_all();
  lock_.unlock();
  n.issue();
}

StateBase* MultiWaiter::finished_at(std::size_t i) {
  lock_.lock();
  StateBase* s = finished_[i];
  lock_.unlock();
  return s;
}

}  // namespace concur::detail
