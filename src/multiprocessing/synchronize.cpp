#include "concur/multiprocessing/synchronize.hpp"

#include <climits>

#include "concur/detail/arena.hpp"
#include "concur/errors.hpp"

namespace concur::multiprocessing {

using concur::detail::make_shared_object;
using concur::detail::RobustLock;

// ---- Lock -------------------------------------------------------------------------------

Lock::Lock() : LockSurface(make_shared_object<RobustLock>(sizeof(RobustLock))) {}

// ---- RLock ------------------------------------------------------------------------------

RLock::RLock() : LockSurface(make_shared_object<RobustLock>(sizeof(RobustLock))) {}

void RLock::throw_unowned() {
  throw RuntimeError("cannot release un-acquired lock");
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

void Semaphore::unlock() noexcept {
  const std::uint32_t bound = block_->bounded ? block_->bound : static_cast<std::uint32_t>(INT_MAX);
  if (!sem().release_bounded(1, bound))
    concur::detail::lock_misuse_abort(
        block_->bounded
            ? "multiprocessing::BoundedSemaphore::unlock(): semaphore or lock released too "
              "many times"
            : "multiprocessing::Semaphore::unlock(): semaphore value would exceed "
              "SEM_VALUE_MAX");
}

int Semaphore::get_value() const noexcept {
  return static_cast<int>(sem().value());
}

// ---- Event ------------------------------------------------------------------------------

using SharedEvent = concur::detail::BasicEvent<concur::detail::Scope::Shared>;

Event::Event() : ev_(make_shared_object<SharedEvent>(sizeof(SharedEvent))) {}
bool Event::is_set() const noexcept {
  return ev_->is_set();
}
void Event::set() noexcept {
  ev_->set();
}
void Event::clear() noexcept {
  ev_->clear();
}
bool Event::wait() noexcept {
  return ev_->wait(nullptr);
}
bool Event::wait_until(concur::detail::Clock::time_point deadline) noexcept {
  return ev_->wait(&deadline);
}

}  // namespace concur::multiprocessing

namespace concur::multiprocessing {

// ---- Condition --------------------------------------------------------------------------

using SharedCondition = concur::detail::BasicCondition<concur::detail::Scope::Shared>;
using SharedBarrier = concur::detail::BasicBarrier<concur::detail::Scope::Shared>;

Condition::Condition()
    : rlock_(RLock()),
      cond_(concur::detail::make_shared_object<SharedCondition>(sizeof(SharedCondition))) {}
Condition::Condition(const Lock& lock)
    : plain_(lock),
      cond_(concur::detail::make_shared_object<SharedCondition>(sizeof(SharedCondition))) {}
Condition::Condition(const RLock& lock)
    : rlock_(lock),
      cond_(concur::detail::make_shared_object<SharedCondition>(sizeof(SharedCondition))) {}

bool Condition::owned() const noexcept {
  if (plain_) return concur::detail::cond_is_owned(concur::detail::PlainLockRef{&plain_->native()});
  return concur::detail::cond_is_owned(concur::detail::RecursiveLockRef{&rlock_->native()});
}

bool Condition::wait_impl(const concur::detail::Clock::time_point* deadline) {
  if (!owned()) throw RuntimeError("cannot wait on un-acquired lock");
  if (plain_) {
    concur::detail::PlainLockRef ref{&plain_->native()};
    return cond_->wait(ref, deadline);
  }
  concur::detail::RecursiveLockRef ref{&rlock_->native()};
  return cond_->wait(ref, deadline);
}

void Condition::notify(int n) {
  if (!owned()) throw RuntimeError("cannot notify on un-acquired lock");
  cond_->notify(n);
}

void Condition::notify_all() {
  if (!owned()) throw RuntimeError("cannot notify on un-acquired lock");
  cond_->notify_all();
}

// ---- Barrier ----------------------------------------------------------------------------

namespace {
std::uint32_t checked_parties(int parties) {
  if (parties < 1) throw ValueError("parties must be > 0");
  return static_cast<std::uint32_t>(parties);
}
std::uint32_t token_count(std::uint32_t parties) noexcept;
std::int64_t timeout_ns(std::optional<std::chrono::nanoseconds> t) noexcept {
  if (!t) return -1;
  return t->count() < 0 ? 0 : static_cast<std::int64_t>(t->count());
}
}  // namespace

namespace {
// Party tokens (detail/barrier.hpp): one per party plus a few for parties of the next
// cycle already blocked in wait() while this one drains; capped so the block stays small.
std::uint32_t token_count(std::uint32_t parties) noexcept {
  return parties > 1020 ? 1024 : parties + 4;
}
}  // namespace

Barrier::Barrier(int parties, std::function<void()> action,
                 std::optional<std::chrono::nanoseconds> timeout)
    : b_(concur::detail::make_shared_object<SharedBarrier>(
          SharedBarrier::tokens_bytes(token_count(checked_parties(parties))),
          checked_parties(parties), timeout_ns(timeout), token_count(checked_parties(parties)))),
      action_(std::move(action)) {}

int Barrier::wait() {
  return static_cast<int>(b_->wait([this] {
    if (action_) action_();
  }));
}
int Barrier::wait_until_impl(const concur::detail::Clock::time_point* deadline) {
  return static_cast<int>(b_->wait_until(deadline, [this] {
    if (action_) action_();
  }));
}
void Barrier::reset() noexcept {
  b_->reset();
}
void Barrier::abort() noexcept {
  b_->abort();
}
bool Barrier::broken() const noexcept {
  return b_->broken();
}
int Barrier::parties() const noexcept {
  return static_cast<int>(b_->parties());
}
int Barrier::n_waiting() const noexcept {
  return static_cast<int>(b_->n_waiting());
}

}  // namespace concur::multiprocessing
