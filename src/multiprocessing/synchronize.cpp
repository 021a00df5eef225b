#include "concur/multiprocessing/synchronize.hpp"

#include <climits>

#include "concur/detail/arena.hpp"
#include "concur/errors.hpp"

namespace concur::multiprocessing {

using concur::detail::make_shared_object;
using concur::detail::RobustLock;

// ---- Lock -------------------------------------------------------------------------------

Lock::Lock() : lock_(make_shared_object<RobustLock>(sizeof(RobustLock))) {}

bool Lock::acquire(bool blocking) {
  if (blocking) {
    lock_->lock();
    return true;
  }
  return lock_->try_lock();
}

void Lock::release() {
  if (!lock_->unlock()) throw ValueError("semaphore or lock released too many times");
}

// ---- RLock ------------------------------------------------------------------------------

RLock::RLock() : lock_(make_shared_object<RobustLock>(sizeof(RobustLock))) {}

bool RLock::acquire(bool blocking) {
  RobustLock& l = *lock_;
  if (l.owned_by_me()) {
    if (l.count() == UINT32_MAX) throw RuntimeError("RLock recursion count overflow");
    ++l.count();
    return true;
  }
  if (blocking) {
    l.lock();
  } else if (!l.try_lock()) {
    return false;
  }
  l.count() = 1;
  return true;
}

bool RLock::acquire_until(concur::detail::Clock::time_point deadline) {
  RobustLock& l = *lock_;
  if (l.owned_by_me()) return acquire(true);
  if (!l.lock_until(deadline)) return false;
  l.count() = 1;
  return true;
}

void RLock::release() {
  RobustLock& l = *lock_;
  if (!l.owned_by_me() || l.count() == 0) throw RuntimeError("cannot release un-acquired lock");
  if (--l.count() == 0) l.unlock();
}

// ---- Semaphore / BoundedSemaphore --------------------------------------------------------

namespace {
std::uint32_t checked_initial(int value) {
  if (value < 0) throw ValueError("semaphore initial value must be >= 0");
  return static_cast<std::uint32_t>(value);
}
}  // namespace

Semaphore::Semaphore(int value) : Semaphore(value, false) {}

Semaphore::Semaphore(int value, bool bounded)
    : block_(make_shared_object<Block>(sizeof(Block), checked_initial(value), bounded)) {}

bool Semaphore::acquire(bool blocking) {
  if (!blocking) return sem().try_acquire();
  return sem().acquire(nullptr);
}

void Semaphore::release(int n) {
  if (n < 1) throw ValueError("n must be one or more");
  const auto un = static_cast<std::uint32_t>(n);
  if (block_->bounded) {
    if (!sem().release_bounded(un, block_->bound))
      throw ValueError("semaphore or lock released too many times");
    return;
  }
  if (!sem().release_bounded(un, static_cast<std::uint32_t>(INT_MAX)))
    throw ValueError("semaphore value would exceed SEM_VALUE_MAX");
}

int Semaphore::get_value() const noexcept { return static_cast<int>(sem().value()); }

// ---- Event ------------------------------------------------------------------------------

using SharedEvent = concur::detail::BasicEvent<concur::detail::Scope::Shared>;

Event::Event() : ev_(make_shared_object<SharedEvent>(sizeof(SharedEvent))) {}
bool Event::is_set() const noexcept { return ev_->is_set(); }
void Event::set() noexcept { ev_->set(); }
void Event::clear() noexcept { ev_->clear(); }
bool Event::wait() noexcept { return ev_->wait(nullptr); }
bool Event::wait_until(concur::detail::Clock::time_point deadline) noexcept {
  return ev_->wait(&deadline);
}

}  // namespace concur::multiprocessing
