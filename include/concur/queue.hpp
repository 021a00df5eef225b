// concur/queue.hpp — Python's `queue` module: Queue, LifoQueue, PriorityQueue, SimpleQueue.
//
// Synchronized queues between the threads of one process, with Python's names and
// semantics (maxsize, blocking/timed/non-blocking put and get, task_done/join, 3.13's
// shutdown) and a non-throwing try_* form beside every throwing call.
//
// Differences from Python, on purpose:
//  * Items are moved in only when the put succeeds: a put that throws Full or ShutDown (or a
//    try_put that returns false) leaves the caller's object untouched, so move-only items
//    (std::unique_ptr) are never lost.
//  * PriorityQueue<T, Compare> gives the smallest item first, like Python's heapq and unlike
//    std::priority_queue.
//  * try_get()/try_put() never throw Empty/Full/ShutDown; after shutdown they return
//    nullopt/false (is_shutdown() tells the two apart).
//  * join(dur) is an addition: a timed join that returns whether all tasks were done.
//
// Lifetime: a queue must outlive every call on it; destroying it while threads are blocked in
// it is undefined (as for std::mutex). Items still queued are destroyed with it.
// Thread-safety: every member may be called concurrently from any thread.
// Memory ordering: a put happens-before the get that returns that item; each task_done
// happens-before the join it releases.
// Performance: state is guarded by one futex lock (detail::BasicLock: one CAS to take, one
// exchange to release, uncontended). A get on an empty queue (put on a full one) polls the
// item count for up to kSpinGet `pause` rounds before sleeping, because a sleep/wake round
// trip costs 12-16 us here while a hand-off seen by a spinning thread costs ~0.2 us;
// FUTEX_WAKE is made only when a thread sleeps. The FIFO is a ring buffer that grows geometrically
// and never shrinks, so steady-state put/get do not allocate. When not to use: for one producer and
// one consumer of trivially copyable items at the highest rates a lock-free SPSC ring is faster;
// these queues favour Python's full semantics.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "concur/detail/condition.hpp"
#include "concur/detail/futex.hpp"
#include "concur/errors.hpp"

// The queue's internals live in concur::detail, with the rest of the library's.
namespace concur::detail {

// `pause` rounds a get (put) spends polling the item count before it sleeps: 1000 rounds,
// polled with backoff (see spin_while), are ~10-40 us, about the 12-16 us a futex sleep/wake
// round trip costs on this machine (bench/README.md); in the 2-thread queue benchmark this
// keeps the consumer awake between bursts.
inline constexpr int kSpinGet = 1000;

// The deadline of a get/put/join timeout: ValueError for NaN or a negative timeout (Python's
// queue rejects negative ones; it spins forever on NaN, which we do not copy).
template <class Rep, class Period>
concur::detail::Deadline check_timeout(std::chrono::duration<Rep, Period> d) {
  const auto dl = concur::detail::Deadline::after(d);
  if (d < d.zero()) throw ValueError("'timeout' must be a non-negative number");
  return dl;
}

// How a store holds an item. An item whose move may throw is boxed (one allocation per
// item), so that the store's own moves (growth, heap sifts) cannot throw and the only item
// moves are the one into the queue (put) and the one out of it (get): both strongly
// exception-safe for any T whose move is (a throwing move leaves its source unchanged).
template <class T>
inline constexpr bool kBoxed =
    !(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_move_assignable_v<T>);
template <class T>
using Slot = std::conditional_t<kBoxed<T>, std::unique_ptr<T>, T>;
template <class T, class U>
void construct_slot(Slot<T>* at, U&& v) {
  if constexpr (kBoxed<T>)
    std::construct_at(at, std::make_unique<T>(std::forward<U>(v)));
  else
    std::construct_at(at, std::forward<U>(v));
}
template <class T>
T& slot_item(Slot<T>& s) noexcept {
  if constexpr (kBoxed<T>)
    return *s;
  else
    return s;
}

// FIFO storage: a ring buffer that doubles when full. Not thread-safe (guarded by the queue).
template <class T>
class FifoStore {
  using S = Slot<T>;

 public:
  FifoStore() = default;
  FifoStore(const FifoStore&) = delete;
  FifoStore& operator=(const FifoStore&) = delete;
  FifoStore(FifoStore&& o) noexcept
      : buf_(std::exchange(o.buf_, nullptr)),
        cap_(std::exchange(o.cap_, 0)),
        head_(std::exchange(o.head_, 0)),
        size_(std::exchange(o.size_, 0)) {}
  FifoStore& operator=(FifoStore&& o) noexcept {
    std::swap(buf_, o.buf_);
    std::swap(cap_, o.cap_);
    std::swap(head_, o.head_);
    std::swap(size_, o.size_);
    return *this;
  }
  ~FifoStore() {
    clear();
    if (buf_) std::allocator<S>().deallocate(buf_, cap_);
  }
  std::size_t size() const noexcept { return size_; }
  template <class U>
  void push(U&& v) {
    if (size_ == cap_) grow();
    construct_slot<T>(buf_ + index(size_), std::forward<U>(v));
    ++size_;
  }
  // The head, to move from; then end_pop(true) removes it, end_pop(false) (the move
  // threw) keeps it queued.
  T& begin_pop() noexcept { return slot_item<T>(buf_[head_]); }
  void end_pop(bool taken) noexcept {
    if (!taken) return;
    std::destroy_at(buf_ + head_);
    head_ = head_ + 1 == cap_ ? 0 : head_ + 1;
    --size_;
  }
  void clear() noexcept {
    while (size_ > 0) {
      std::destroy_at(buf_ + head_);
      head_ = head_ + 1 == cap_ ? 0 : head_ + 1;
      --size_;
    }
    head_ = 0;
  }

 private:
  std::size_t index(std::size_t i) const noexcept {
    const std::size_t j = head_ + i;
    return j >= cap_ ? j - cap_ : j;
  }
  void grow() {
    const std::size_t ncap = cap_ == 0 ? 16 : cap_ * 2;
    S* nbuf = std::allocator<S>().allocate(ncap);
    for (std::size_t i = 0; i < size_; ++i)  // S's move does not throw (see Slot)
      std::construct_at(nbuf + i, std::move(buf_[index(i)]));
    for (std::size_t i = 0; i < size_; ++i) std::destroy_at(buf_ + index(i));
    if (buf_) std::allocator<S>().deallocate(buf_, cap_);
    buf_ = nbuf;
    cap_ = ncap;
    head_ = 0;
  }
  S* buf_ = nullptr;
  std::size_t cap_ = 0, head_ = 0, size_ = 0;
};

// LIFO storage.
template <class T>
class LifoStore {
 public:
  std::size_t size() const noexcept { return v_.size(); }
  template <class U>
  void push(U&& x) {
    if constexpr (kBoxed<T>)
      v_.push_back(std::make_unique<T>(std::forward<U>(x)));
    else
      v_.emplace_back(std::forward<U>(x));
  }
  T& begin_pop() noexcept { return slot_item<T>(v_.back()); }  // as FifoStore's
  void end_pop(bool taken) noexcept {
    if (taken) v_.pop_back();
  }
  void clear() noexcept { v_.clear(); }

 private:
  std::vector<Slot<T>> v_;
};

// Min-heap storage: pop() returns the smallest item by Compare (Python's heapq order).
template <class T, class Compare>
class HeapStore {
 public:
  std::size_t size() const noexcept { return v_.size(); }
  // The sifts move slots, which cannot throw (see Slot); a throwing Compare leaves every
  // item stored (the heap order is then what the failed sift left).
  template <class U>
  void push(U&& x) {
    if constexpr (kBoxed<T>)
      v_.push_back(std::make_unique<T>(std::forward<U>(x)));
    else
      v_.emplace_back(std::forward<U>(x));
    std::push_heap(v_.begin(), v_.end(), Greater{comp_});
  }
  // The smallest item, sifted to the back; end_pop(false) (its move out threw) sifts it
  // back into the heap.
  T& begin_pop() {
    std::pop_heap(v_.begin(), v_.end(), Greater{comp_});
    return slot_item<T>(v_.back());
  }
  void end_pop(bool taken) noexcept {
    if (taken) {
      v_.pop_back();
      return;
    }
    try {
      std::push_heap(v_.begin(), v_.end(), Greater{comp_});
    } catch (...) {
      // Only Compare can throw here: nothing lost.
    }
  }
  void clear() noexcept { v_.clear(); }

 private:
  // std heaps keep the largest by their comparator on top; reversing it keeps the smallest.
  struct Greater {
    const Compare& c;
    bool operator()(const Slot<T>& a, const Slot<T>& b) const {
      if constexpr (kBoxed<T>)
        return c(*b, *a);
      else
        return c(b, a);
    }
  };
  std::vector<Slot<T>> v_;
  [[no_unique_address]] Compare comp_{};
};

enum class Status { Ok, Unavailable, ShutDown };

// Core::take's "no item" for the try_get forms.
template <class T>
std::optional<T> no_item(Status) noexcept {
  return std::nullopt;
}

// The synchronized queue shared by Queue, LifoQueue, PriorityQueue and SimpleQueue.
template <class T, class Store, bool kTrackTasks>
class Core {
 public:
  explicit Core(std::size_t maxsize) noexcept : maxsize_(maxsize) {}
  // (operator new honours the 64-byte alignment of a heap-allocated queue: C++17 aligned new)
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  // Puts `item` (moved or copied only on success). deadline: nullptr = block forever.
  // `block` false = do not wait at all.
  template <class U>
  Status put(U&& item, bool block, const Clock::time_point* deadline) {
    if (maxsize_ != 0 && block && count_.load(std::memory_order_relaxed) >= maxsize_) {
      // Full: spin until a few slots are free, not just one, so the producer refills in a
      // burst instead of contending for the lock on every single get (a put that waits for
      // exactly one free slot ping-pongs the lock's cache line: 1.5M/s vs 9.9M/s measured
      // with maxsize 1024 between two threads). Only the spin waits for the batch; the
      // locked path below takes any free slot.
      const std::size_t low = maxsize_ - std::min<std::size_t>(maxsize_ / 4, 64);
      spin_while([&] {
        const std::size_t c = count_.load(std::memory_order_relaxed);
        return c > low || c >= maxsize_;
      });
    }
    lock_.lock();
    for (;;) {
      if (shutdown_.load(std::memory_order_relaxed)) {
        lock_.unlock();
        return Status::ShutDown;
      }
      if (maxsize_ == 0 || store_.size() < maxsize_) break;
      if (!block) {
        lock_.unlock();
        return Status::Unavailable;
      }
      if (!not_full_.wait(lock_, deadline) && store_.size() >= maxsize_ &&
          !shutdown_.load(std::memory_order_relaxed)) {
        lock_.unlock();
        return Status::Unavailable;
      }
    }
    try {
      store_.push(std::forward<U>(item));
    } catch (...) {
      lock_.unlock();
      throw;
    }
    count_.store(store_.size(), std::memory_order_relaxed);
    if constexpr (kTrackTasks) ++unfinished_;
    Wakeups n = not_empty_.prepare_notify(1);
    lock_.unlock();
    n.issue();
    return Status::Ok;
  }

  // Takes the next item as an R (T or std::optional<T>) move-constructed from it straight
  // into the caller's return object (guaranteed elision: no second move). If that move
  // throws, the item stays queued at the head and every count is unchanged; only after it
  // succeeded is the item removed. No item: returns (or throws) none(status).
  template <class R, class None>
  R take(bool block, const Clock::time_point* deadline, None none) {
    if (block && count_.load(std::memory_order_relaxed) == 0)
      spin_while([&] {
        return count_.load(std::memory_order_relaxed) == 0 &&
               !shutdown_.load(std::memory_order_relaxed);
      });
    lock_.lock();
    for (;;) {
      if (store_.size() > 0) break;
      if (shutdown_.load(std::memory_order_relaxed)) {
        lock_.unlock();
        return none(Status::ShutDown);
      }
      if (!block) {
        lock_.unlock();
        return none(Status::Unavailable);
      }
      if (!not_empty_.wait(lock_, deadline) && store_.size() == 0 &&
          !shutdown_.load(std::memory_order_relaxed)) {
        lock_.unlock();
        return none(Status::Unavailable);
      }
    }
    T* head;
    try {
      head = &store_.begin_pop();
    } catch (...) {
      lock_.unlock();
      throw;
    }
    const EndTake end{*this};  // runs once the return object is built, or its move threw
    return R(std::move(*head));
  }

  void task_done() {
    lock_.lock();
    if (unfinished_ == 0) {
      lock_.unlock();
      throw ValueError("task_done() called too many times");
    }
    Wakeups n;
    if (--unfinished_ == 0) n = all_done_.prepare_notify_all();
    lock_.unlock();
    n.issue();
  }

  bool join(const Clock::time_point* deadline) {
    lock_.lock();
    while (unfinished_ != 0) {
      if (!all_done_.wait(lock_, deadline) && unfinished_ != 0) {
        lock_.unlock();
        return false;
      }
    }
    lock_.unlock();
    return true;
  }

  void shutdown(bool immediate) {
    Store drained;
    lock_.lock();
    shutdown_.store(true, std::memory_order_relaxed);
    Wakeups n_done;
    if (immediate) {
      const std::size_t k = store_.size();
      std::swap(drained, store_);
      count_.store(0, std::memory_order_relaxed);
      unfinished_ = unfinished_ > k ? unfinished_ - k : 0;
      n_done = all_done_.prepare_notify_all();
    }
    Wakeups n_get = not_empty_.prepare_notify_all();
    Wakeups n_put = not_full_.prepare_notify_all();
    lock_.unlock();
    n_get.issue();
    n_put.issue();
    n_done.issue();
    // `drained` is destroyed here, outside the lock.
  }

  std::size_t qsize() const noexcept { return count_.load(std::memory_order_relaxed); }
  std::size_t maxsize() const noexcept { return maxsize_; }
  bool is_shutdown() const noexcept { return shutdown_.load(std::memory_order_relaxed); }
  std::size_t unfinished_tasks() const noexcept {
    lock_.lock();
    const std::size_t u = unfinished_;
    lock_.unlock();
    return u;
  }

 private:
  // take()'s second half: removes the head if its move out succeeded (no exception is
  // leaving take() that was not already in flight when it began), then unlocks.
  struct EndTake {
    Core& core;
    const int in_flight = std::uncaught_exceptions();
    ~EndTake() { core.end_take(std::uncaught_exceptions() == in_flight); }
  };
  void end_take(bool taken) noexcept {
    store_.end_pop(taken);
    Wakeups n;
    if (taken) {
      count_.store(store_.size(), std::memory_order_relaxed);
      if (maxsize_ != 0) n = not_full_.prepare_notify(1);
    }
    lock_.unlock();
    n.issue();
  }

  template <class Pred>
  // Polls pred with exponential backoff (1, 2, 4 ... 64 pauses between polls) for about
  // kSpinGet pauses in all. Sparse polling matters as much as spinning: a consumer that
  // reads the item count on every pause keeps stealing the cache line the producer is
  // writing, and the two threads then advance in lock-step, one contended lock per item.
  static void spin_while(Pred pred) noexcept {
    int spent = 0;
    for (int gap = 1; spent < kSpinGet; gap = gap < 64 ? gap * 2 : 64) {
      if (!pred()) return;
      for (int i = 0; i < gap; ++i) concur::detail::cpu_relax();
      spent += gap;
    }
  }

  // Layout: everything a put/get pair writes shares ONE cache line (lock, wait words, count,
  // the FIFO ring's indices: 64 bytes), so a hand-off between two threads moves one line
  // instead of two; maxsize (read-only) and the task accounting (written by put and
  // task_done only) each get a line of their own.
  alignas(64) mutable BasicLock<Scope::Private> lock_;
  std::atomic<bool> shutdown_{false};  // written under lock_
  BasicCondition<Scope::Private> not_empty_;
  BasicCondition<Scope::Private> not_full_;
  std::atomic<std::size_t> count_{0};       // mirror of store_.size() for lock-free reads
  Store store_;                             // guarded by lock_
  alignas(64) const std::size_t maxsize_;   // read by both sides, never written
  alignas(64) std::size_t unfinished_ = 0;  // guarded by lock_; written by every put
  BasicCondition<Scope::Private> all_done_;
};

// Queue, LifoQueue and PriorityQueue: Python's queue.Queue interface over a storage order.
template <class T, class Store>
class BasicQueue {
  static_assert(std::is_move_constructible_v<T>, "queue items must be movable");

 public:
  using value_type = T;

  // maxsize 0 = unbounded (Python: maxsize <= 0). Never blocks, never allocates.
  explicit BasicQueue(std::size_t maxsize = 0) noexcept : core_(maxsize) {}
  BasicQueue(const BasicQueue&) = delete;
  BasicQueue& operator=(const BasicQueue&) = delete;

  // Puts an item, blocking while the queue is full. Throws ShutDown after shutdown().
  void put(const T& item) { put_checked(item, true, nullptr); }
  void put(T&& item) { put_checked(std::move(item), true, nullptr); }
  // Puts an item, waiting at most `timeout` for room. Throws Full on timeout (the item is
  // not moved), ShutDown after shutdown(), ValueError for a negative timeout.
  template <class Rep, class Period>
  void put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    const auto dl = check_timeout(timeout);
    put_checked(item, true, dl.get());
  }
  template <class Rep, class Period>
  void put(T&& item, std::chrono::duration<Rep, Period> timeout) {
    const auto dl = check_timeout(timeout);
    put_checked(std::move(item), true, dl.get());
  }
  // Puts without blocking; throws Full (item not moved) or ShutDown.
  void put_nowait(const T& item) { put_checked(item, false, nullptr); }
  void put_nowait(T&& item) { put_checked(std::move(item), false, nullptr); }
  // Puts without blocking; false (item not moved) if full or shut down. Never throws except
  // what T's copy/move or a storage allocation throws.
  [[nodiscard]] bool try_put(const T& item) {
    return core_.put(item, false, nullptr) == Status::Ok;
  }
  [[nodiscard]] bool try_put(T&& item) {
    return core_.put(std::move(item), false, nullptr) == Status::Ok;
  }
  // Waits at most `timeout` for room; false if none came (or shut down).
  template <class Rep, class Period>
  [[nodiscard]] bool try_put(T&& item, std::chrono::duration<Rep, Period> timeout) {
    const auto dl = check_timeout(timeout);
    return core_.put(std::move(item), true, dl.get()) == Status::Ok;
  }
  template <class Rep, class Period>
  [[nodiscard]] bool try_put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    const auto dl = check_timeout(timeout);
    return core_.put(item, true, dl.get()) == Status::Ok;
  }

  // Removes and returns the next item, blocking while empty. Throws ShutDown once the queue
  // is shut down and drained (at once after shutdown(true)).
  T get() { return get_checked(true, nullptr); }
  // As get(), waiting at most `timeout`; throws Empty on timeout, ValueError if negative.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    const auto dl = check_timeout(timeout);
    return get_checked(true, dl.get());
  }
  // Returns the next item without blocking; throws Empty or ShutDown.
  T get_nowait() { return get_checked(false, nullptr); }
  // Non-blocking, non-throwing get: nullopt if empty (or shut down and drained).
  [[nodiscard]] std::optional<T> try_get() {
    return core_.template take<std::optional<T>>(false, nullptr, no_item<T>);
  }
  // Waits at most `timeout`; nullopt on timeout (or shut down and drained). ValueError if
  // the timeout is negative.
  template <class Rep, class Period>
  [[nodiscard]] std::optional<T> try_get(std::chrono::duration<Rep, Period> timeout) {
    const auto dl = check_timeout(timeout);
    return core_.template take<std::optional<T>>(true, dl.get(), no_item<T>);
  }

  // Marks one item taken by get() as processed. ValueError("task_done() called too many
  // times") if more calls than puts.
  void task_done() { core_.task_done(); }
  // Blocks until every item ever put has been marked task_done() (or drained by
  // shutdown(true)).
  void join() { (void)core_.join(nullptr); }
  // Timed join (an addition to Python): true if all tasks were done within `timeout`.
  template <class Rep, class Period>
  [[nodiscard]] bool join(std::chrono::duration<Rep, Period> timeout) {
    const auto dl = check_timeout(timeout);
    return core_.join(dl.get());
  }

  // Approximate size (exact when no other thread is using the queue). Lock-free.
  std::size_t qsize() const noexcept { return core_.qsize(); }
  bool empty() const noexcept { return qsize() == 0; }
  bool full() const noexcept { return core_.maxsize() != 0 && qsize() >= core_.maxsize(); }
  std::size_t maxsize() const noexcept { return core_.maxsize(); }
  // Items put but not yet marked task_done() (Python's unfinished_tasks attribute).
  std::size_t unfinished_tasks() const noexcept { return core_.unfinished_tasks(); }

  // Python 3.13: puts (and blocked putters) now throw ShutDown; gets throw ShutDown once the
  // queue is empty. immediate = true also discards the queued items (each counts as
  // task_done, so join() returns) and blocked getters throw at once. Idempotent.
  void shutdown(bool immediate = false) { core_.shutdown(immediate); }
  // Whether shutdown() has been called (Python's is_shutdown attribute).
  bool is_shutdown() const noexcept { return core_.is_shutdown(); }

 private:
  template <class U>
  void put_checked(U&& item, bool block, const Clock::time_point* dl) {
    switch (core_.put(std::forward<U>(item), block, dl)) {
      case Status::Ok:
        return;
      case Status::Unavailable:
        throw concur::queue::Full();
      case Status::ShutDown:
        throw concur::queue::ShutDown();
    }
  }
  T get_checked(bool block, const Clock::time_point* dl) {
    return core_.template take<T>(block, dl, [](Status s) -> T {
      if (s == Status::ShutDown) throw concur::queue::ShutDown();
      throw concur::queue::Empty();
    });
  }

  Core<T, Store, true> core_;
};

}  // namespace concur::detail

namespace concur::queue {

// FIFO queue (Python's queue.Queue).
template <class T>
class Queue : public detail::BasicQueue<T, detail::FifoStore<T>> {
 public:
  using detail::BasicQueue<T, detail::FifoStore<T>>::BasicQueue;
};

// LIFO queue, a stack (Python's queue.LifoQueue).
template <class T>
class LifoQueue : public detail::BasicQueue<T, detail::LifoStore<T>> {
 public:
  using detail::BasicQueue<T, detail::LifoStore<T>>::BasicQueue;
};

// Priority queue: get() returns the smallest item by Compare first (Python's
// queue.PriorityQueue; put std::pair{priority, value} for Python's (priority, item) idiom).
// Items of equal priority come out in an unspecified order, as in Python.
template <class T, class Compare = std::less<T>>
class PriorityQueue : public detail::BasicQueue<T, detail::HeapStore<T, Compare>> {
 public:
  using detail::BasicQueue<T, detail::HeapStore<T, Compare>>::BasicQueue;
};

// Unbounded FIFO without task tracking (Python's queue.SimpleQueue): put never blocks.
template <class T>
class SimpleQueue {
  static_assert(std::is_move_constructible_v<T>, "queue items must be movable");
  using Status = detail::Status;

 public:
  using value_type = T;

  SimpleQueue() noexcept : core_(0) {}
  SimpleQueue(const SimpleQueue&) = delete;
  SimpleQueue& operator=(const SimpleQueue&) = delete;

  // Puts an item; never blocks (only allocation can throw).
  void put(const T& item) { (void)core_.put(item, false, nullptr); }
  void put(T&& item) { (void)core_.put(std::move(item), false, nullptr); }
  // Python's put(item, block, timeout) ignores both; so does this.
  template <class Rep, class Period>
  void put(T item, std::chrono::duration<Rep, Period>) {
    put(std::move(item));
  }
  void put_nowait(const T& item) { put(item); }
  void put_nowait(T&& item) { put(std::move(item)); }

  // Removes and returns the next item, blocking while empty.
  T get() { return take(true, nullptr); }
  // Waits at most `timeout`; Empty on timeout, ValueError if negative.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    const auto dl = detail::check_timeout(timeout);
    return take(true, dl.get());
  }
  // Throws Empty if there is nothing to take.
  T get_nowait() { return take(false, nullptr); }
  [[nodiscard]] std::optional<T> try_get() {
    return core_.template take<std::optional<T>>(false, nullptr, detail::no_item<T>);
  }
  template <class Rep, class Period>
  [[nodiscard]] std::optional<T> try_get(std::chrono::duration<Rep, Period> timeout) {
    const auto dl = detail::check_timeout(timeout);
    return core_.template take<std::optional<T>>(true, dl.get(), detail::no_item<T>);
  }
  std::size_t qsize() const noexcept { return core_.qsize(); }
  bool empty() const noexcept { return qsize() == 0; }

 private:
  T take(bool block, const detail::Clock::time_point* dl) {
    return core_.template take<T>(block, dl, [](detail::Status) -> T { throw Empty(); });
  }
  detail::Core<T, detail::FifoStore<T>, false> core_;
};

}  // namespace concur::queue
