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
// robust big_lock — and published by a BIG record whose payload is the message's ticket.
//
// Two sides, two locks. Producers serialize on the robust `plock` and own the head word;
// consumers serialize on the robust `lock` and own the tail word; a put and a get never
// share a lock, so a producer and a consumer copy at the same time. The head word is
// (messages written << 32 | byte position) and is the producers' ONLY commit point: a put
// writes its record in free space and publishes it with one store of head. The tail word
// (messages read << 32 | position) is the consumers' commit point: a get copies the record
// out and retires it with one store of tail. Each side keeps a cached copy of the other
// side's word on its own cache line (tail_cache, head_cache) and re-reads the real one only
// when the cache says full/empty, so the hot path moves the head and tail lines between
// cores only when the ring is (nearly) full or empty.
//
// Waiting: a waiter registers in a packed word (generation << 16 | sleepers) and sleeps on
// it; a committer checks that word after its commit (the registration is a seq_cst RMW and
// the committer has a full fence between its commit store and the check, so either the
// committer sees the sleeper or the sleeper's re-check sees the commit) and, only if
// somebody sleeps, bumps the generation, zeroes the count and wakes them all. The fast path
// therefore makes no system call and writes no shared word but its own side's.
//
// Why a SIGKILL at any instant is harmless:
//  * A producer killed before its head store leaves nothing visible; a consumer killed
//    before its tail store leaves the message for another consumer. The kernel's robust
//    list hands the lock of a dead holder to the next acquirer of that side, which wakes
//    every sleeper (the dead holder may have died before its wake-up).
//  * The big area: big_state holds the ticket of the BIG message it carries (0: free). A
//    producer stores it (holding big_lock and plock) just before its head store; a consumer
//    copies the area out and stores big_state = 0 — that store is the big message's commit
//    — then retires the record. A BIG record whose ticket is not big_state is stale (its
//    consumer died between the two stores) and is skipped. A producer that died between its
//    big_state store and its head store is found by the next plock holder (the ticket is in
//    no queued record), which frees the area.
//  * Pages of the big area are given back (MADV_REMOVE) only by a holder of big_lock that
//    sees big_state == 0, so nobody writes the area while it is released.
//  * A process killed after its commit but after unlocking, before its wake-up, leaves no
//    trace in any lock: sleepers also re-check every kPollSlice, the bound on how late a
//    survivor notices. A sleeper killed while registered leaves the count high until the
//    next commit's wake-up zeroes it (one spare FUTEX_WAKE).
//
// Speed: a put is an uncontended (for one producer) robust lock, a memcpy into the ring, one
// release store and a load of the waiter word; a get the same in reverse. Two locked
// instructions per side (the lock's and the unlock's compare-exchange; the second is also
// the commit's StoreLoad fence, see unlock_and_notify), and for a plain copy (a raw type,
// or bytes) the lock is a brief hold, with no robust-list work (RobustLock::try_lock_brief).
// Neither reads the other side's commit word while its cached copy still shows messages
// (room): reading `head` on every get, even only as a hint, made 1->1 3.7x slower
// (docs/benchmarks.md). A blocking get on an empty ring polls the count with backoff
// (kSpinPoll pauses) before it sleeps; a blocking put on a full ring polls too
// (spin_for_space).
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
// A put polling a full ring gives up after this many pauses (~1-3 us) if no get finished
// meanwhile: a consumer on another CPU retires a record every 20-40 ns, so a tail that did
// not move means the consumer is not running, or shares the producer's CPU (polling there
// only steals its time: 4 KiB messages cost 1.7x the CPU per message with the full spin).
inline constexpr int kSpinIdle = 127;

class ShmRing {
 public:
  static constexpr std::uint32_t kMsg = 1, kPad = 2, kBig = 3;
  static constexpr std::size_t kRecordHeader = 8;
  static constexpr std::size_t kBigRecord = 16;  // header + the u64 ticket

  // A packed wait word: generation << 16 | registered sleepers.
  static constexpr std::uint32_t kSleepers = 0xffffu, kGeneration = 0x10000u;

  // The shared header (first page of the mapping). Public for the tests' fault injection.
  struct Header {
    // Producer line: written by every put.
    RobustLock plock;                          // producers; guards the fields marked (P)
    std::atomic<std::uint64_t> tail_cache{0};  // (P) a tail seen lately (tail_cache <= tail)
    std::atomic<std::uint64_t> big_ticket{0};  // (P) the last ticket given to a BIG record
    // Head line: the producers' commit word, read by consumers.
    alignas(64) std::atomic<std::uint64_t> head{0};  // (messages written << 32) | position
    // Consumer line: written by every get.
    alignas(64) RobustLock lock;               // consumers; guards the fields marked (C)
    std::atomic<std::uint64_t> head_cache{0};  // (C) a head seen lately (head_cache <= head)
    // Tail line: the consumers' commit word, read by producers.
    alignas(64) std::atomic<std::uint64_t> tail{0};  // (messages read << 32) | position
    // Wait words, each on its own line, written only by sleepers and their wakers.
    alignas(64) std::atomic<std::uint32_t> items_wait{0};
    alignas(64) std::atomic<std::uint32_t> space_wait{0};
    alignas(64) std::atomic<std::uint32_t> big_wait{0};
    // The big area: the ticket of the message it holds (0: free) and its populated bytes.
    alignas(64) std::atomic<std::uint64_t> big_state{0};
    std::atomic<std::uint64_t> big_touched{0};  // (big_lock) bytes of the area maybe populated
    // JoinableQueue accounting: unfinished = (head >> 32) - done.
    alignas(64) std::atomic<std::uint32_t> done{0};
    std::atomic<std::uint32_t> join_waiters{0};
    // One big message at a time.
    alignas(64) RobustLock big_lock;
  };

  // Maps and initializes a ring. capacity is rounded up to a power of two in [4 KiB, 1 GiB].
  // Throws ValueError for a max_message ≥ 4 GiB, OSError if the kernel refuses the mapping.
  explicit ShmRing(const ShmRingConfig& cfg);
  ~ShmRing();  // unmaps this process's view (other processes keep theirs)
  ShmRing(const ShmRing&) = delete;
  ShmRing& operator=(const ShmRing&) = delete;

  // Puts one message of n bytes: write(dst) must write exactly n bytes to dst (it runs with
  // the producers' lock held for inline messages). block = false: Unavailable at once if
  // full; else waits until *deadline (nullptr: forever). If write throws, nothing is
  // published. Throws ValueError if n > max_message().
  // plain = true promises that write() is a plain copy that takes no robust lock (and
  // calls no user code that might): the producers' lock is then taken as a brief hold
  // (RobustLock::try_lock_brief), with the same death guarantees and no robust-list work.
  template <class W>
  RingStatus put(std::size_t n, W&& write, bool block, const Clock::time_point* deadline,
                 bool plain = false) {
    if (n > inline_max_) {
      auto& w = write;
      return put_big(n, ByteWriter::of(w), block, deadline);
    }
    const auto rec = static_cast<std::uint32_t>(record_size(n));
    std::uint64_t hw;
    std::uint32_t idx, need;
    if (!reserve_locked(rec, block, deadline, hw, idx, need, plain))
      return RingStatus::Unavailable;
    try {
      write(ring_ + idx + kRecordHeader);
    } catch (...) {
      h_->plock.unlock();
      throw;
    }
    store_header(idx, static_cast<std::uint32_t>(n), kMsg);
    h_->head.store(advance(hw, need), std::memory_order_release);  // commit
    unlock_and_notify(h_->plock, h_->items_wait);
    return RingStatus::Ok;
  }

  // Takes the next message: read(span) sees its bytes (with the consumers' lock held) and
  // the message is retired only if read returns normally (if it throws, the message stays
  // queued and the exception propagates). Same block/deadline rules as put.
  // plain = true: read() is a plain copy that takes no robust lock, as for put.
  template <class R>
  RingStatus get(R&& read, bool block, const Clock::time_point* deadline, bool plain = false) {
    // Poll before taking the lock only when the consumers' cache of head says empty: reading
    // head itself would pull the producers' line here on every get.
    if (block && !cached_ready() && count_hint() == 0) spin_while_empty();
    if (!acquire(h_->lock, deadline, plain)) return RingStatus::Unavailable;
    bool timed_out = false, skipped = false;
    for (;;) {
      const std::uint64_t tw = h_->tail.load(std::memory_order_relaxed);
      if (!items_ready(tw)) {
        if (!block || timed_out) {
          unlock_consumers(skipped);
          return RingStatus::Unavailable;
        }
        timed_out = !wait_items(deadline);
        continue;
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
        if (get_big(ByteReader::of(r), tw, pos, idx, len)) return RingStatus::Ok;
        skipped = true;  // a stale BIG record (see the banner), retired: take the next one
        continue;
      }
      try {
        read(std::span<const std::byte>(ring_ + idx + kRecordHeader, len));
      } catch (...) {
        unlock_consumers(skipped);
        throw;
      }
      pos += static_cast<std::uint32_t>(record_size(len));
      retire(tw, pos);  // commit
      unlock_and_notify(h_->lock, h_->space_wait);
      return RingStatus::Ok;
    }
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

  // Sleeps in this process that ended because a kPollSlice re-check found the condition
  // true while no wake-up had come: the survivors' net for a peer that died between its
  // commit and its notify. With no deaths it stays 0 (else a wake-up was lost); for tests.
  static std::uint64_t poll_rescues() noexcept;

  // Wakes every sleeper registered in a wait word, if there is one (one seq_cst load when
  // nobody sleeps). Public for the tests.
  static void notify(std::atomic<std::uint32_t>& w) noexcept {
    std::uint32_t v = w.load(std::memory_order_seq_cst);
    if ((v & kSleepers) == 0) return;
    notify_slow(w, v);
  }

 private:
  // Takes one side's lock (repairing after a dead holder); false if *deadline passed first.
  // brief: try a brief hold first (see put's `plain`).
  bool acquire(RobustLock& l, const Clock::time_point* deadline, bool brief = false) noexcept {
    if (brief && l.try_lock_brief()) return true;  // plainly free: no dead holder to repair
    if (!l.try_lock()) {
      if (deadline) {
        if (!l.lock_until(*deadline)) return false;
      } else {
        l.lock();
      }
    }
    if (l.owner_died()) recover(l);
    return true;
  }
  void relock(RobustLock& l) noexcept {
    l.lock();
    if (l.owner_died()) recover(l);
  }

  // Takes plock and room for a record of rec bytes, waiting as block/deadline say; on
  // success (plock held) fills the head word, the index to write at and the bytes to
  // advance (rec, or PAD + rec; a PAD is already written).
  bool reserve_locked(std::uint32_t rec, bool block, const Clock::time_point* deadline,
                      std::uint64_t& hw, std::uint32_t& idx, std::uint32_t& need,
                      bool brief = false) noexcept {
    if (!acquire(h_->plock, deadline, brief)) return false;
    bool timed_out = false;
    while (!reserve(rec, hw, idx, need)) {
      if (!block || timed_out) {
        h_->plock.unlock();
        return false;
      }
      timed_out = !wait_space(deadline, rec);
    }
    if (need != rec) {  // the record does not fit before the end: PAD, then start over
      store_header(idx, 0, kPad);
      idx = 0;
    }
    return true;
  }

  // With plock held: can a record of rec bytes go in now? Reads the real tail only when
  // the cached one says no.
  bool reserve(std::uint32_t rec, std::uint64_t& hw, std::uint32_t& idx,
               std::uint32_t& need) noexcept {
    hw = h_->head.load(std::memory_order_relaxed);
    idx = static_cast<std::uint32_t>(hw) & mask_;
    const std::uint32_t to_end = capacity_ - idx;
    need = rec <= to_end ? rec : to_end + rec;
    if (fits(hw, h_->tail_cache.load(std::memory_order_relaxed), need)) return true;
    const std::uint64_t tw = h_->tail.load(std::memory_order_acquire);
    h_->tail_cache.store(tw, std::memory_order_relaxed);
    return fits(hw, tw, need);
  }
  bool fits(std::uint64_t hw, std::uint64_t tw, std::uint32_t need) const noexcept {
    if (maxsize_ != 0 &&
        std::uint64_t{static_cast<std::uint32_t>((hw >> 32) - (tw >> 32))} + 1 > maxsize_)
      return false;
    const auto used = static_cast<std::uint32_t>(hw) - static_cast<std::uint32_t>(tw);
    return std::uint64_t{used} + need <= capacity_;
  }

  // With the consumers' lock held: is a message queued at tail word tw? Reads the real head
  // only when the cached one says no.
  bool items_ready(std::uint64_t tw) noexcept {
    if ((h_->head_cache.load(std::memory_order_relaxed) >> 32) != (tw >> 32)) return true;
    const std::uint64_t hw = h_->head.load(std::memory_order_acquire);
    h_->head_cache.store(hw, std::memory_order_relaxed);
    return (hw >> 32) != (tw >> 32);
  }
  // Without the lock, a hint: does the consumers' cache of head show a message queued?
  bool cached_ready() const noexcept {
    return (h_->head_cache.load(std::memory_order_relaxed) >> 32) !=
           (h_->tail.load(std::memory_order_relaxed) >> 32);
  }
  // The consumers' commit: the record at tw ends at position `end`.
  // A release store: the StoreLoad order against the waiter check comes from the unlock
  // that follows it (unlock_and_notify).
  void retire(std::uint64_t tw, std::uint32_t end) noexcept {
    h_->tail.store(advance(tw, end - static_cast<std::uint32_t>(tw)), std::memory_order_release);
  }
  // Releases one side's lock after its commit store, then wakes the sleepers of wait word w,
  // if any. The commit must be ordered before the load of w (StoreLoad, the other half of
  // sleep_on's registration), and the unlock's compare-exchange already orders it on x86-64
  // (a locked instruction is a full barrier there), so only the compiler is fenced, as
  // Linux's smp_mb__after_atomic(); other targets get a real seq_cst fence. Before, the
  // commit itself was a seq_cst store, an xchg: a third locked instruction per put and get.
  void unlock_and_notify(RobustLock& l, std::atomic<std::uint32_t>& w) noexcept {
    l.unlock();
#if defined(__x86_64__) || defined(__i386__)
    std::atomic_signal_fence(std::memory_order_seq_cst);
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
    notify(w);
  }
  // A get leaving without retiring a record: wakes producers only if it skipped (retired)
  // stale records on the way, which freed space.
  void unlock_consumers(bool skipped) noexcept {
    if (skipped) {
      unlock_and_notify(h_->lock, h_->space_wait);
    } else {
      h_->lock.unlock();
    }
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
    const std::uint64_t t = h_->tail.load(std::memory_order_seq_cst);  // tail first: t <= h
    const std::uint64_t hw = h_->head.load(std::memory_order_seq_cst);
    return static_cast<std::uint32_t>((hw >> 32) - (t >> 32));
  }

  static void notify_slow(std::atomic<std::uint32_t>& w, std::uint32_t v) noexcept;
  void spin_while_empty() const noexcept;
  // Whether a record of rec bytes (and slack more) would fit now (a hint, without plock).
  bool space_for(std::uint32_t rec, std::uint32_t slack) const noexcept;
  // A put that found the ring full polls (with backoff, kSpinPoll pauses) before it sleeps,
  // and while polling waits for a sixteenth of the ring to be free, not for one record: a
  // producer faster than its consumer otherwise sleeps and is woken (two system calls) every
  // few puts, and re-reads tail, pulling the consumers' line, on every put. With one record
  // as the goal and no polling, a 1 -> 1 run of 8-byte messages fell to 9.5 M msgs/s at
  // 190 CPU ns/msg once the producer was the faster side (docs/benchmarks.md).
  bool spin_for_space(std::uint32_t rec) const noexcept;
  bool wait_items(const Clock::time_point* deadline) noexcept;
  bool wait_space(const Clock::time_point* deadline, std::uint32_t rec) noexcept;
  RingStatus put_big(std::size_t n, ByteWriter write, bool block,
                     const Clock::time_point* deadline);
  bool get_big(ByteReader read, std::uint64_t tw, std::uint32_t pos, std::uint32_t idx,
               std::uint32_t len);
  bool big_queued(std::uint64_t ticket) const noexcept;
  void recover(RobustLock& l) noexcept;
  void release_big_pages() noexcept;

  Header* h_ = nullptr;
  std::byte* ring_ = nullptr;
  std::byte* big_ = nullptr;
  std::size_t map_bytes_ = 0;
  std::uint32_t capacity_ = 0, mask_ = 0, inline_max_ = 0;
  std::size_t max_message_ = 0, maxsize_ = 0;
};

}  // namespace concur::detail
