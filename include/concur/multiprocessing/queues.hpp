// concur/multiprocessing/queues.hpp — Python's multiprocessing.Queue, SimpleQueue and
// JoinableQueue: cross-process FIFO queues on a shared-memory ring (detail/shm_ring.hpp).
//
// Create the queue before Process::start(): every child forked afterwards uses the same
// queue (a copy of the handle, made by fork, refers to the same shared ring; so do copies
// made in one process). Any number of producers and consumers, in any processes and
// threads, may use it at once. Values travel through the codec (detail/codec.hpp): anything
// Sendable, with a type tag — a get<U> of a message put as T throws TypeError (and the
// message is consumed, as Python consumes bytes it cannot unpickle). A trivially copyable T
// is one memcpy into the ring and one out; other types are encoded straight into the ring
// slot, with no intermediate buffer.
//
// Differences from Python, on purpose:
//  * No feeder thread and no pipe: put() has returned only once the message is in shared
//    memory, so nothing is lost when the producer exits right after (cpython#73983 family),
//    join_thread()/cancel_join_thread() have nothing to do, and qsize() works everywhere.
//  * A producer or consumer SIGKILLed at any instant never wedges or corrupts the queue for
//    the others (cpython#87971 family): a message whose put did not return is never
//    delivered torn, and every message whose put returned is delivered exactly once (to
//    the dead consumer only if its get had taken it). The survivors notice within 100 ms.
//  * Bounded by bytes as well as by maxsize: the ring (QueueOptions::capacity, 1 MiB by
//    default) limits what can be queued at once; a put blocks while it is full, as Python's
//    put blocks on a full pipe. A message larger than a quarter of the ring goes through a
//    separate big-message area (one such message queued at a time), up to
//    QueueOptions::max_message (1 GiB).
//  * Timeouts: any std::chrono::duration; hours::max() waits forever; NaN throws
//    ValueError; zero or negative means "do not wait" (multiprocessing.Queue's rule — not
//    queue.Queue's, which raises ValueError for a negative timeout).
//  * try_put/try_get (and timed forms) report Full/Empty by their result instead.
//
// Lifetime: the shared ring lives while any process maps it; the kernel frees it when the
// last one unmaps or exits (also when killed). Nothing is named, so nothing can leak in
// /dev/shm, and no file descriptor is used. A moved-from handle may only be destroyed.
// Thread-safety: every member may be called from any thread of any process. close() only
// affects this process's handle (and its copies in this process), as in Python.
// Memory ordering: a put happens-before the get that returns its message; each task_done
// happens-before the join it releases.
#pragma once

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "concur/detail/codec.hpp"
#include "concur/detail/futex.hpp"
#include "concur/detail/shm_ring.hpp"
#include "concur/errors.hpp"

namespace concur::multiprocessing {

// Python has no such knobs; these are the sizes of the shared memory behind one queue.
struct QueueOptions {
  // Bytes of the ring (rounded up to a power of two, 4 KiB .. 1 GiB). Touched at creation.
  std::size_t capacity = std::size_t{1} << 20;
  // Largest message (encoded: 8-byte tag + body), < 4 GiB. Address space only until used.
  std::size_t max_message = concur::detail::codec::kDefaultMaxMessage;
};

}  // namespace concur::multiprocessing

namespace concur::detail {

// A timeout turned into "wait or not" and a deadline, once, at the top of each call.
struct Wait {
  bool block;
  Clock::time_point deadline;
};
template <class Rep, class Period>
Wait wait_for(std::chrono::duration<Rep, Period> d) {
  if constexpr (std::is_floating_point_v<Rep>) {
    if (std::isnan(d.count())) throw ValueError("timeout must be a number, not NaN");
  }
  if (d <= d.zero()) return {false, Clock::time_point{}};
  return {true, concur::detail::deadline_after(d)};
}

// The per-process handle state shared by copies of one queue object.
struct MpQueueState {
  ShmRing ring;
  std::atomic<bool> closed{false};
  MpQueueState(std::size_t maxsize, const multiprocessing::QueueOptions& o)
      : ring({.capacity = o.capacity, .max_message = o.max_message, .maxsize = maxsize}) {}
};

// The put/get machinery shared by Queue, JoinableQueue and SimpleQueue.
template <class T>
class MpQueueBase {
  static_assert(concur::detail::codec::Sendable<T>,
                "multiprocessing queues carry Sendable types (see detail/codec.hpp)");

 public:
  using value_type = T;

  // Puts item, blocking while the queue is full. ValueError if closed (OSError for a
  // SimpleQueue), ValueError for a message over max_message.
  void put(const T& item) { (void)this->do_put(item, true, nullptr); }

  // Removes and returns the next item, blocking while empty. ValueError if closed;
  // TypeError if the message is not a T (it is consumed).
  T get() {
    if constexpr (kDirect) {
      T v;
      (void)this->take(v, true, nullptr);
      return v;
    } else {
      std::optional<T> out;
      (void)this->do_get(out, true, nullptr);
      return std::move(*out);
    }
  }
  // Waits at most `timeout`; Empty on timeout (≤ 0: do not wait). ValueError for NaN.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    const auto w = detail::wait_for(timeout);
    return get_or_empty(w.block, &w.deadline);
  }
  [[nodiscard]] std::optional<T> try_get() { return try_take(false, nullptr); }
  template <class Rep, class Period>
  [[nodiscard]] std::optional<T> try_get(std::chrono::duration<Rep, Period> timeout) {
    const auto w = detail::wait_for(timeout);
    return try_take(w.block, &w.deadline);
  }

 protected:
  MpQueueBase(std::size_t maxsize, const multiprocessing::QueueOptions& o)
      : s_(std::make_shared<MpQueueState>(maxsize, o)) {}

  // A raw T (the codec's body is its bytes) is copied from the ring straight into the
  // caller's object: one memcpy, no optional, no move (4 KiB items: 1 copy instead of 3).
  static constexpr bool kDirect =
      concur::detail::codec::is_raw_v<T> && std::is_default_constructible_v<T>;

  // kDirect: takes the next message into v; false if none came in time. A message of
  // another type is consumed and its error (TypeError, DecodeError) thrown.
  bool take(T& v, bool block, const Clock::time_point* dl) {
    check_open();
    namespace codec = concur::detail::codec;
    std::exception_ptr bad;
    const RingStatus st = s_->ring.get(
        [&v, &bad](std::span<const std::byte> m) {
          if (m.size() == codec::kTagSize + sizeof(T) &&
              codec::message_tag(m) == codec::type_tag<T>()) {
            std::memcpy(static_cast<void*>(&v), m.data() + codec::kTagSize, sizeof(T));
            return;
          }
          try {
            (void)codec::decode<T>(m);  // throws the precise error
          } catch (const concur::Error&) {
            bad = std::current_exception();
          }
        },
        block, dl, /*plain=*/true);  // a memcpy and the codec's own checks: no robust lock
    if (bad) std::rethrow_exception(bad);
    return st == RingStatus::Ok;
  }
  T get_or_empty(bool block, const Clock::time_point* dl) {
    if constexpr (kDirect) {
      T v;
      if (!take(v, block, dl)) throw queue::Empty();
      return v;
    } else {
      std::optional<T> out;
      if (!do_get(out, block, dl)) throw queue::Empty();
      return std::move(*out);
    }
  }
  std::optional<T> try_take(bool block, const Clock::time_point* dl) {
    std::optional<T> out;
    if constexpr (kDirect) {
      out.emplace();
      if (!take(*out, block, dl)) out.reset();
    } else {
      (void)do_get(out, block, dl);
    }
    return out;
  }

  // Puts v; false if no room came in time. Throws throw_closed()'s error when closed,
  // ValueError for a message over max_message, what encoding throws.
  bool do_put(const T& v, bool block, const Clock::time_point* dl) {
    check_open();
    namespace codec = concur::detail::codec;
    const std::size_t n = codec::encoded_size(v);
    // A raw T is one memcpy into the slot; other types run their serialize() code, which
    // may do anything (even take a Lock), so only a raw T takes the lock as a brief hold.
    return s_->ring.put(
               n, [&v](std::byte* dst) { codec::encode_to(v, dst); }, block, dl,
               /*plain=*/codec::is_raw_v<T>) == RingStatus::Ok;
  }

  // Takes the next message into out; false if none came in time. A message that fails to
  // decode (TypeError, DecodeError) is consumed and the error thrown.
  bool do_get(std::optional<T>& out, bool block, const Clock::time_point* dl) {
    check_open();
    std::exception_ptr bad;
    const RingStatus st = s_->ring.get(
        [&out, &bad](std::span<const std::byte> m) {
          try {
            out.emplace(concur::detail::codec::decode<T>(m));
          } catch (const concur::Error&) {
            bad = std::current_exception();  // consume it, then throw (Python's rule)
          }
        },
        block, dl);
    if (bad) std::rethrow_exception(bad);
    return st == RingStatus::Ok;
  }

  // Whole messages (tag included), for relays that forward what they do not decode.
  bool do_put_bytes(std::span<const std::byte> m, bool block, const Clock::time_point* dl) {
    check_open();
    return s_->ring.put(
               m.size(),
               [m](std::byte* dst) {
                 if (!m.empty()) std::memcpy(dst, m.data(), m.size());
               },
               block, dl, /*plain=*/true) == RingStatus::Ok;
  }
  bool do_get_bytes(std::vector<std::byte>& out, bool block, const Clock::time_point* dl) {
    check_open();
    return s_->ring.get([&out](std::span<const std::byte> m) { out.assign(m.begin(), m.end()); },
                        block, dl, /*plain=*/true) == RingStatus::Ok;
  }

  void check_open() const {
    if (s_->closed.load(std::memory_order_relaxed)) throw_closed();
  }
  virtual void throw_closed() const = 0;
  virtual ~MpQueueBase() = default;
  MpQueueBase(const MpQueueBase&) = default;
  MpQueueBase& operator=(const MpQueueBase&) = default;
  MpQueueBase(MpQueueBase&&) noexcept = default;
  MpQueueBase& operator=(MpQueueBase&&) noexcept = default;

  std::string repr(const char* cls) const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%p", static_cast<const void*>(s_.get()));
    return std::string("<concur::multiprocessing::") + cls + " object at " + buf + ">";
  }

  std::shared_ptr<MpQueueState> s_;
};

}  // namespace concur::detail

namespace concur::multiprocessing {

// Python's multiprocessing.Queue.
template <class T>
class Queue : public detail::MpQueueBase<T> {
  using B = detail::MpQueueBase<T>;
  using Clock = concur::detail::Clock;

 public:
  // maxsize 0 = bounded only by the ring's bytes (Python: maxsize <= 0 is "infinite").
  // Maps the shared memory (OSError if the kernel refuses).
  explicit Queue(std::size_t maxsize = 0, QueueOptions options = {}) : B(maxsize, options) {}

  using B::get;
  using B::put;
  using B::try_get;
  // Waits at most `timeout` for room; Full on timeout (≤ 0: do not wait). ValueError for NaN.
  template <class Rep, class Period>
  void put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    if (!try_put(item, timeout)) throw queue::Full();
  }
  // Puts without waiting for room; Full if there is none.
  void put_nowait(const T& item) {
    if (!this->do_put(item, false, nullptr)) throw queue::Full();
  }
  // Non-throwing forms: false if there was no room (in time). Still ValueError if closed.
  [[nodiscard]] bool try_put(const T& item) { return this->do_put(item, false, nullptr); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    const auto w = detail::wait_for(timeout);
    return this->do_put(item, w.block, &w.deadline);
  }

  // Returns the next item without waiting; Empty if there is none.
  T get_nowait() { return this->get_or_empty(false, nullptr); }
  // Python's Connection-style byte layer: put_bytes(m) queues a whole encoded message (as
  // codec::encode_to writes it, type tag included) and get_bytes() takes the next message
  // undecoded, so a relay can forward messages of types it does not know. A get<T>() of a
  // message that is not a T throws TypeError; of bytes that are not a message, DecodeError.
  void put_bytes(std::span<const std::byte> message) {
    (void)this->do_put_bytes(message, true, nullptr);
  }
  std::vector<std::byte> get_bytes() {
    std::vector<std::byte> out;
    (void)this->do_get_bytes(out, true, nullptr);
    return out;
  }
  template <class Rep, class Period>
  std::vector<std::byte> get_bytes(std::chrono::duration<Rep, Period> timeout) {
    const auto w = detail::wait_for(timeout);
    std::vector<std::byte> out;
    if (!this->do_get_bytes(out, w.block, &w.deadline)) throw queue::Empty();
    return out;
  }

  // Messages queued: exact when nobody else uses the queue (Python's raises
  // NotImplementedError on macOS; this one always works). Lock-free; works after close().
  std::size_t qsize() const noexcept { return this->s_->ring.qsize(); }
  bool empty() const noexcept { return qsize() == 0; }
  bool full() const noexcept {
    const std::size_t m = this->s_->ring.maxsize();
    return m != 0 && qsize() >= m;
  }
  std::size_t maxsize() const noexcept { return this->s_->ring.maxsize(); }

  // This process will not use the queue any more: later put/get here throw ValueError
  // ("Queue <...> is closed"). Other processes are unaffected; queued messages stay.
  void close() noexcept { this->s_->closed.store(true, std::memory_order_relaxed); }
  bool closed() const noexcept { return this->s_->closed.load(std::memory_order_relaxed); }
  // Python's join_thread()/cancel_join_thread(): there is no feeder thread to wait for.
  void join_thread() noexcept {}
  void cancel_join_thread() noexcept {}

 protected:
  void throw_closed() const override {
    throw ValueError("Queue " + this->repr(name()) + " is closed");
  }
  virtual const char* name() const { return "Queue"; }
};

// Python's multiprocessing.JoinableQueue: a Queue whose consumers mark each item done, and
// join() waits, in any process, until every item put has been marked.
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  using Queue<T>::Queue;

  // Marks one item taken by get() as processed (in any process). ValueError("task_done()
  // called too many times") if more calls than puts. Never blocks; works after close().
  void task_done() {
    if (!this->s_->ring.task_done()) throw ValueError("task_done() called too many times");
  }
  // Blocks until every item ever put (by any process) has been marked task_done().
  // A consumer that dies between its get and its task_done leaves join() waiting (as in
  // Python): use the timed form when consumers may be killed.
  void join() { (void)this->s_->ring.join(nullptr); }
  // Timed join (an addition to Python): true if all tasks were done within `timeout`.
  template <class Rep, class Period>
  [[nodiscard]] bool join(std::chrono::duration<Rep, Period> timeout) {
    const auto w = detail::wait_for(timeout);
    if (!w.block) return this->s_->ring.unfinished() == 0;
    return this->s_->ring.join(&w.deadline);
  }
  // Items put but not yet marked done (a snapshot).
  std::size_t unfinished_tasks() const noexcept { return this->s_->ring.unfinished(); }

 protected:
  const char* name() const override { return "JoinableQueue"; }
};

// Python's multiprocessing.SimpleQueue: put, get, empty, close — plus the timed and
// non-throwing gets of queue::SimpleQueue. Unbounded in messages; put waits only while the
// ring's bytes are full (as Python's waits on a full pipe). After close(), every call
// throws OSError("handle is closed"), Python's error for a closed SimpleQueue.
template <class T>
class SimpleQueue : public detail::MpQueueBase<T> {
  using B = detail::MpQueueBase<T>;

 public:
  explicit SimpleQueue(QueueOptions options = {}) : B(0, options) {}

  using B::get;
  using B::put;
  using B::try_get;
  bool empty() const {
    this->check_open();
    return this->s_->ring.qsize() == 0;
  }
  std::size_t qsize() const noexcept { return this->s_->ring.qsize(); }
  void close() noexcept { this->s_->closed.store(true, std::memory_order_relaxed); }

 protected:
  void throw_closed() const override { throw OSError(EBADF, "handle is closed"); }
};

}  // namespace concur::multiprocessing
