// concur/detail/shm_ring.hpp — the shared-memory byte ring behind multiprocessing's Queue,
// SimpleQueue and JoinableQueue: many producers and many consumers in any processes, futex
// blocking, no feeder thread, no pipe, and no wedge when a user of it is SIGKILLed.
//
// Memory: one MAP_SHARED|MAP_ANONYMOUS|MAP_NORESERVE mapping per ring, made by the
// constructor and inherited by fork: [Header, one page | ring, `capacity` bytes | big-message
// area, `max_message` bytes]. It has no name, so nothing can leak in /dev/shm, and the kernel
// frees it when the last process that maps it unmaps it or dies. The header and the ring are
// touched at construction; the big area is address space only until a big message is
// written, and its pages are given back (MADV_REMOVE) after the message is consumed.
//
// Records: the ring holds records [u32 len | u32 kind | payload, padded to 8 bytes]; a record
// never wraps (a PAD record fills the end of the ring instead). A message larger than
// inline_max() (a quarter of the ring) is written to the big area — one at a time, under the
// robust big_lock — and published by a payload-less BIG record.
//
// Commit points (why a SIGKILL at any instant is harmless): one RobustLock guards the ring.
// The write index and the message count are ONE 64-bit word (count << 32 | byte position),
// and so are the read index and the read count; a put writes its record in free space and
// publishes it with a single store of that word at the end, a get copies the record out and
// then retires it with a single store of the read word. A producer killed before its store
// leaves nothing visible; a consumer killed before its store leaves the message for another
// consumer. The kernel's robust list hands the lock of a dead holder to the next acquirer,
// which repairs what is not covered by the two words (the big area's in-use flag; it walks
// the committed records to decide) and wakes every sleeper, since the dead holder may have
// died before its wake-up call. Sleepers also re-check every kPollSlice: a process killed
// between its commit and its FUTEX_WAKE (after unlocking) leaves no trace in the lock, so a
// bounded sleep is what guarantees that survivors notice.
//
// Speed: a put is a lock, a memcpy into the ring, one store and a wake-up only when a
// sleeper is registered; a get the same in reverse. The lock, both index words (and nothing
// else a put or get writes) share one cache line. A blocking get on an empty ring polls the
// count with backoff (kSpinPoll pauses) before it sleeps.
//
// Thread-safety: every member may be called from any thread of any process that has the
// mapping. Memory ordering: a put happens-before the get that returns its message.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>

#include "concur/detail/futex.hpp"
#include "concur/detail/robust_lock.hpp"

namespace concur::detail {

struct ShmRingConfig {
  std::size_t capacity = std::size_t{1} << 20;     // ring bytes (a power of two is used)
  std::size_t max_message = std::size_t{1} << 30;  // largest message, bytes (< 4 GiB)
  std::size_t maxsize = 0;                         // messages; 0 = only the ring's bytes
};

enum class RingStatus { Ok, Unavailable };

// A type-erased callable reference (the out-of-line paths take one).
template <class Arg>
struct ByteFn {
  void* ctx;
  void (*fn)(void*, Arg);
  template <class F>
  static ByteFn of(F& f) noexcept {
    return {static_cast<void*>(&f), [](void* c, Arg a) { (*static_cast<F*>(c))(a); }};
  }
  void operator()(Arg a) const { fn(ctx, a); }
};
using ByteWriter = ByteFn<std::byte*>;
using ByteReader = ByteFn<std::span<const std::byte>>;

// Sleepers wake up this often to re-check their condition themselves (see the banner): the
// bound on how late a survivor notices a peer that died between its commit and its wake-up.
inline constexpr std::chrono::milliseconds kPollSlice{100};

// `pause` rounds a blocking get (put) spends polling before it sleeps, with backoff as in
// queue.hpp: ~10-40 us, about the 12-16 us a futex sleep/wake round trip costs here.
inline constexpr int kSpinPoll = 1000;

class ShmRing {
 public:
  static constexpr std::uint32_t kMsg = 1, kPad = 2, kBig = 3;
  static constexpr std::size_t kRecordHeader = 8;

  // The shared header (first page of the mapping). Public for the tests' fault injection.
  struct Header {
    // Line 0: everything a put or a get writes.
    RobustLock lock;                     // guards the ring and the fields marked (L)
    std::atomic<std::uint64_t> head{0};  // (messages written << 32) | write position
    std::atomic<std::uint64_t> tail{0};  // (messages read << 32) | read position
    // Line 1: wait words, written only when somebody sleeps.
    alignas(64) std::atomic<std::uint32_t> items_seq{0};
    std::atomic<std::uint32_t> items_waiters{0};  // (L)
    std::atomic<std::uint32_t> space_seq{0};
    std::atomic<std::uint32_t> space_waiters{0};  // (L)
    std::atomic<std::uint32_t> big_seq{0};
    std::atomic<std::uint32_t> big_waiters{0};  // (L)
    std::atomic<std::uint32_t> big_inuse{0};    // (L) a BIG record is queued
    std::atomic<std::uint64_t> big_touched{0};  // (L) bytes of the big area maybe populated
    // Line 2: JoinableQueue accounting: unfinished = (head >> 32) - done.
    alignas(64) std::atomic<std::uint32_t> done{0};
    std::atomic<std::uint32_t> join_waiters{0};
    // Line 3: one big message at a time.
    alignas(64) RobustLock big_lock;
  };

  // Maps and initializes a ring. capacity is rounded up to a power of two in [4 KiB, 1 GiB].
  // Throws ValueError for a max_message ≥ 4 GiB, OSError if the kernel refuses the mapping.
  explicit ShmRing(const ShmRingConfig& cfg);
  ~ShmRing();  // unmaps this process's view (other processes keep theirs)
  ShmRing(const ShmRing&) = delete;
  ShmRing& operator=(const ShmRing&) = delete;

  // Puts one message of n bytes: write(dst) must write exactly n bytes to dst (it runs with
  // the ring lock held for inline messages). block = false: Unavailable at once if full;
  // else waits until *deadline (nullptr: forever). If write throws, nothing is published.
  // Throws ValueError if n > max_message().
  template <class W>
  RingStatus put(std::size_t n, W&& write, bool block, const Clock::time_point* deadline) {
    if (n > inline_max_) {
      auto& w = write;
      return put_big(n, ByteWriter::of(w), block, deadline);
    }
    const auto rec = static_cast<std::uint32_t>(record_size(n));
    if (!acquire(deadline)) return RingStatus::Unavailable;
    std::uint64_t hw;
    std::uint32_t idx, need;
    bool timed_out = false;
    while (!reserve(rec, 1, hw, idx, need)) {
      if (!block || timed_out) {
        h_->lock.unlock();
        return RingStatus::Unavailable;
      }
      timed_out = !wait_space(deadline, rec);
    }
    if (need != rec) {  // the record does not fit before the end: PAD, then start over
      store_header(idx, 0, kPad);
      idx = 0;
    }
    try {
      write(ring_ + idx + kRecordHeader);
    } catch (...) {
      h_->lock.unlock();
      throw;
    }
    store_header(idx, static_cast<std::uint32_t>(n), kMsg);
    h_->head.store(advance(hw, need), std::memory_order_release);  // commit
    const int k = prepare_notify(h_->items_seq, h_->items_waiters, 1);
    h_->lock.unlock();
    if (k) futex_wake(&h_->items_seq, k, Scope::Shared);
    return RingStatus::Ok;
  }

  // Takes the next message: read(span) sees its bytes (with the ring lock held) and the
  // message is retired only if read returns normally (if it throws, the message stays
  // queued and the exception propagates). Same block/deadline rules as put.
  template <class R>
  RingStatus get(R&& read, bool block, const Clock::time_point* deadline) {
    if (block && count_hint() == 0) spin_while_empty();
    if (!acquire(deadline)) return RingStatus::Unavailable;
    bool timed_out = false;
    std::uint64_t tw;
    for (;;) {
      tw = h_->tail.load(std::memory_order_relaxed);
      if ((h_->head.load(std::memory_order_acquire) >> 32) != (tw >> 32)) break;
      if (!block || timed_out) {
        h_->lock.unlock();
        return RingStatus::Unavailable;
      }
      timed_out = !wait_items(deadline);
    }
    auto pos = static_cast<std::uint32_t>(tw);
    std::uint32_t idx = pos & mask_;
    std::uint32_t len, kind;
    load_header(idx, len, kind);
    if (kind == kPad) {
      pos += capacity_ - idx;
      idx = 0;
      load_header(idx, len, kind);
    }
    if (kind == kBig) {
      auto& r = read;
      get_big(ByteReader::of(r), tw, pos, len);
      return RingStatus::Ok;
    }
    try {
      read(std::span<const std::byte>(ring_ + idx + kRecordHeader, len));
    } catch (...) {
      h_->lock.unlock();
      throw;
    }
    pos += static_cast<std::uint32_t>(record_size(len));
    h_->tail.store(advance(tw, pos - static_cast<std::uint32_t>(tw)),
                   std::memory_order_release);  // commit
    const int k = prepare_notify(h_->space_seq, h_->space_waiters, INT32_MAX);
    h_->lock.unlock();
    if (k) futex_wake(&h_->space_seq, k, Scope::Shared);
    return RingStatus::Ok;
  }

  // Messages queued (a snapshot; exact when nobody else uses the ring). Lock-free.
  std::size_t qsize() const noexcept { return count_hint(); }
  std::size_t maxsize() const noexcept { return maxsize_; }
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t inline_max() const noexcept { return inline_max_; }
  std::size_t max_message() const noexcept { return max_message_; }

  // JoinableQueue: messages put and not yet marked done (a snapshot).
  std::size_t unfinished() const noexcept;
  // Marks one message done; false (nothing changed) if none is unfinished. Never blocks.
  bool task_done() noexcept;
  // Waits until unfinished() == 0 or *deadline (nullptr: forever); false on timeout.
  bool join(const Clock::time_point* deadline) noexcept;

  Header& header() noexcept { return *h_; }
  // Bytes of big-area memory currently populated (for tests of the MADV_REMOVE release).
  std::size_t big_touched() const noexcept {
    return h_->big_touched.load(std::memory_order_relaxed);
  }

  // An index word one message and `bytes` further on: both halves wrap on their own (a
  // plain 64-bit add would carry the position's wrap into the count).
  static constexpr std::uint64_t advance(std::uint64_t w, std::uint32_t bytes) noexcept {
    const auto count = static_cast<std::uint32_t>(w >> 32) + 1u;
    const auto pos = static_cast<std::uint32_t>(w) + bytes;
    return std::uint64_t{count} << 32 | pos;
  }

  static constexpr std::size_t record_size(std::size_t n) noexcept {
    return (kRecordHeader + n + 7) & ~std::size_t{7};
  }

 private:
  // Takes the ring lock (repairing after a dead holder); false if *deadline passed first.
  bool acquire(const Clock::time_point* deadline) noexcept {
    RobustLock& l = h_->lock;
    if (!l.try_lock()) {
      if (deadline) {
        if (!l.lock_until(*deadline)) return false;
      } else {
        l.lock();
      }
    }
    if (l.owner_died()) recover();
    return true;
  }
  void relock() noexcept {
    h_->lock.lock();
    if (h_->lock.owner_died()) recover();
  }

  // With the lock held: can a record of rec bytes (and `msgs` messages) go in now? Fills the
  // head word, the index to write at and the bytes to advance (rec, or PAD + rec).
  bool reserve(std::uint32_t rec, std::uint32_t msgs, std::uint64_t& hw, std::uint32_t& idx,
               std::uint32_t& need) const noexcept {
    hw = h_->head.load(std::memory_order_relaxed);
    const std::uint64_t tw = h_->tail.load(std::memory_order_relaxed);
    if (maxsize_ != 0 &&
        std::uint64_t{static_cast<std::uint32_t>((hw >> 32) - (tw >> 32))} + msgs > maxsize_)
      return false;
    const auto used = static_cast<std::uint32_t>(hw) - static_cast<std::uint32_t>(tw);
    idx = static_cast<std::uint32_t>(hw) & mask_;
    const std::uint32_t to_end = capacity_ - idx;
    need = rec <= to_end ? rec : to_end + rec;
    return std::uint64_t{used} + need <= capacity_;
  }

  void store_header(std::uint32_t idx, std::uint32_t len, std::uint32_t kind) noexcept {
    const std::uint64_t v = std::uint64_t{kind} << 32 | len;
    std::memcpy(ring_ + idx, &v, sizeof v);
  }
  void load_header(std::uint32_t idx, std::uint32_t& len, std::uint32_t& kind) const noexcept {
    std::uint64_t v;
    std::memcpy(&v, ring_ + idx, sizeof v);
    len = static_cast<std::uint32_t>(v);
    kind = static_cast<std::uint32_t>(v >> 32);
  }

  std::size_t count_hint() const noexcept {
    const std::uint64_t t = h_->tail.load(std::memory_order_relaxed);  // tail first: t <= h
    const std::uint64_t hw = h_->head.load(std::memory_order_relaxed);
    return static_cast<std::uint32_t>((hw >> 32) - (t >> 32));
  }

  // With the lock held: counts the woken out of `waiters` and bumps `seq` (CondWord's
  // protocol); the caller makes the FUTEX_WAKE after unlocking.
  static int prepare_notify(std::atomic<std::uint32_t>& seq, std::atomic<std::uint32_t>& waiters,
                            std::uint32_t n) noexcept {
    const std::uint32_t w = waiters.load(std::memory_order_relaxed);
    if (w == 0) return 0;
    const std::uint32_t k = n < w ? n : w;
    waiters.store(w - k, std::memory_order_relaxed);
    seq.fetch_add(1, std::memory_order_relaxed);
    return static_cast<int>(k);
  }

  void spin_while_empty() const noexcept;
  bool wait_items(const Clock::time_point* deadline) noexcept;
  bool wait_space(const Clock::time_point* deadline, std::uint32_t rec) noexcept;
  RingStatus put_big(std::size_t n, ByteWriter write, bool block,
                     const Clock::time_point* deadline);
  void get_big(ByteReader read, std::uint64_t tw, std::uint32_t pos, std::uint32_t len);
  void recover() noexcept;
  void release_big_pages() noexcept;

  Header* h_ = nullptr;
  std::byte* ring_ = nullptr;
  std::byte* big_ = nullptr;
  std::size_t map_bytes_ = 0;
  std::uint32_t capacity_ = 0, mask_ = 0, inline_max_ = 0;
  std::size_t max_message_ = 0, maxsize_ = 0;
};

}  // namespace concur::detail
