// The out-of-line half of detail::ShmRing (detail/shm_ring.hpp): mapping, sleeping,
// messages larger than the ring, repair after a dead lock holder, JoinableQueue accounting.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <new>
#include <string>

#include "concur/detail/shm_ring.hpp"
#include "concur/errors.hpp"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older kernels answer EINVAL (then we touch)
#endif

namespace concur::detail {

namespace {

std::size_t page_bytes() noexcept {
  static const auto ps = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return ps;
}
std::size_t round_up(std::size_t n, std::size_t to) noexcept {
  return (n + to - 1) / to * to;
}

// Makes the pages of [p, p + n) present, so a later write cannot SIGBUS for lack of memory
// (the mapping is MAP_NORESERVE). Returns the errno of a refusal (ENOMEM), 0 on success.
int populate(void* p, std::size_t n) noexcept {
  if (n == 0) return 0;
  if (::madvise(p, n, MADV_POPULATE_WRITE) == 0) return 0;
  if (errno == ENOMEM || errno == EFAULT || errno == EHWPOISON) return errno == 0 ? ENOMEM : errno;
  // Old kernel: touch one byte per page (a fault that finds no memory still SIGBUSes).
  auto* b = static_cast<volatile char*>(p);
  for (std::size_t off = 0; off < n; off += page_bytes()) b[off] = b[off];
  return 0;
}

// Sleeps on `seq` (expected `seen`) until woken or *deadline, waking every kPollSlice to ask
// hint() whether the condition may hold already (a peer may have died between its commit
// and its FUTEX_WAKE). Returns false only when the deadline passed.
template <class Hint>
bool sleep_on(std::atomic<std::uint32_t>& seq, std::uint32_t seen, const Clock::time_point* dl,
              Hint hint) noexcept {
  for (;;) {
    auto slice = Clock::now() + kPollSlice;
    const bool last = dl != nullptr && *dl <= slice;
    if (last) slice = *dl;
    if (futex_wait(&seq, seen, Scope::Shared, &slice)) return true;
    if (last) return false;
    if (hint()) return true;
  }
}

int notify_all_now(std::atomic<std::uint32_t>& seq, std::atomic<std::uint32_t>& waiters) noexcept {
  waiters.store(0, std::memory_order_relaxed);
  seq.fetch_add(1, std::memory_order_relaxed);
  return futex_wake(&seq, INT_MAX, Scope::Shared);
}

}  // namespace

ShmRing::ShmRing(const ShmRingConfig& cfg) {
  if (cfg.max_message >= (std::size_t{1} << 32))
    throw ValueError("max_message must be less than 4 GiB");
  std::size_t cap = 4096;
  while (cap < cfg.capacity && cap < (std::size_t{1} << 30)) cap <<= 1;
  const std::size_t hdr = round_up(sizeof(Header), page_bytes());
  const std::size_t big = round_up(std::max<std::size_t>(cfg.max_message, 1), page_bytes());
  map_bytes_ = hdr + cap + big;
  void* p = ::mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw OSError(errno, "mmap(MAP_SHARED|MAP_ANONYMOUS) for a Queue");
  if (const int err = populate(p, hdr + cap)) {
    ::munmap(p, map_bytes_);
    throw OSError(err, "populating a Queue's ring");
  }
  h_ = ::new (p) Header;
  ring_ = static_cast<std::byte*>(p) + hdr;
  big_ = ring_ + cap;
  capacity_ = static_cast<std::uint32_t>(cap);
  mask_ = capacity_ - 1;
  inline_max_ = capacity_ / 4 - static_cast<std::uint32_t>(kRecordHeader);
  max_message_ = cfg.max_message;
  maxsize_ = cfg.maxsize;
}

ShmRing::~ShmRing() {
  if (h_) ::munmap(h_, map_bytes_);
}

void ShmRing::spin_while_empty() const noexcept {
  int spent = 0;
  for (int gap = 1; spent < kSpinPoll; gap = gap < 64 ? gap * 2 : 64) {
    if (count_hint() != 0) return;
    for (int i = 0; i < gap; ++i) cpu_relax();
    spent += gap;
  }
}

bool ShmRing::wait_items(const Clock::time_point* dl) noexcept {
  Header& h = *h_;
  h.items_waiters.fetch_add(1, std::memory_order_relaxed);
  const std::uint32_t seen = h.items_seq.load(std::memory_order_relaxed);
  h.lock.unlock();
  const bool in_time = sleep_on(h.items_seq, seen, dl, [this] { return count_hint() != 0; });
  relock();
  // A notifier that bumped the word since we registered has counted us out already.
  if (h.items_seq.load(std::memory_order_relaxed) == seen) {
    const std::uint32_t w = h.items_waiters.load(std::memory_order_relaxed);
    if (w) h.items_waiters.store(w - 1, std::memory_order_relaxed);
  }
  return in_time;
}

bool ShmRing::wait_space(const Clock::time_point* dl, std::uint32_t rec) noexcept {
  Header& h = *h_;
  h.space_waiters.fetch_add(1, std::memory_order_relaxed);
  const std::uint32_t seen = h.space_seq.load(std::memory_order_relaxed);
  h.lock.unlock();
  const bool in_time = sleep_on(h.space_seq, seen, dl, [this, rec] {
    std::uint64_t hw;
    std::uint32_t idx, need;
    return reserve(rec, 1, hw, idx, need);  // racy read: only a hint
  });
  relock();
  if (h.space_seq.load(std::memory_order_relaxed) == seen) {
    const std::uint32_t w = h.space_waiters.load(std::memory_order_relaxed);
    if (w) h.space_waiters.store(w - 1, std::memory_order_relaxed);
  }
  return in_time;
}

RingStatus ShmRing::put_big(std::size_t n, ByteWriter write, bool block,
                            const Clock::time_point* dl) {
  if (n > max_message_)
    throw ValueError("message of " + std::to_string(n) + " bytes exceeds the queue's limit of " +
                     std::to_string(max_message_) + " bytes");
  Header& h = *h_;
  RobustLock& bl = h.big_lock;
  if (!bl.try_lock()) {
    if (!block) return RingStatus::Unavailable;
    if (dl) {
      if (!bl.lock_until(*dl)) return RingStatus::Unavailable;
    } else {
      bl.lock();
    }
  }
  // A previous holder that died either never published (the area is garbage, free to
  // overwrite) or did (big_inuse says so): nothing to repair here.
  if (bl.owner_died()) bl.consistent();
  struct Unlock {
    RobustLock& l;
    ~Unlock() { l.unlock(); }
  } unlock_big{bl};

  // 1. Wait until the previous big message has been consumed (and its pages released).
  if (!acquire(dl)) return RingStatus::Unavailable;
  bool timed_out = false;
  for (;;) {
    std::uint64_t hw;
    std::uint32_t idx, need;
    const bool free = h.big_inuse.load(std::memory_order_relaxed) == 0;
    // A non-blocking put must not copy megabytes only to find no room for its record.
    if (free && (block || reserve(kRecordHeader, 1, hw, idx, need))) break;
    if (!block || timed_out) {
      h.lock.unlock();
      return RingStatus::Unavailable;
    }
    h.big_waiters.fetch_add(1, std::memory_order_relaxed);
    const std::uint32_t seen = h.big_seq.load(std::memory_order_relaxed);
    h.lock.unlock();
    timed_out = !sleep_on(h.big_seq, seen, dl,
                          [&h] { return h.big_inuse.load(std::memory_order_relaxed) == 0; });
    relock();
    if (h.big_seq.load(std::memory_order_relaxed) == seen) {
      const std::uint32_t w = h.big_waiters.load(std::memory_order_relaxed);
      if (w) h.big_waiters.store(w - 1, std::memory_order_relaxed);
    }
  }
  if (h.big_touched.load(std::memory_order_relaxed) < n)
    h.big_touched.store(n, std::memory_order_relaxed);
  h.lock.unlock();

  // 2. Fill the area outside the ring lock (only the big_lock holder writes it).
  if (const int err = populate(big_, n)) throw OSError(err, "allocating a big Queue message");
  write(big_);

  // 3. Publish with a small BIG record (a regular put of 8 bytes, the same commit point).
  if (!acquire(dl)) return RingStatus::Unavailable;
  std::uint64_t hw;
  std::uint32_t idx, need;
  const auto rec = static_cast<std::uint32_t>(kRecordHeader);
  timed_out = false;
  while (!reserve(rec, 1, hw, idx, need)) {
    if (!block || timed_out) {
      h.lock.unlock();
      return RingStatus::Unavailable;
    }
    timed_out = !wait_space(dl, rec);
  }
  if (need != rec) {
    store_header(idx, 0, kPad);
    idx = 0;
  }
  store_header(idx, static_cast<std::uint32_t>(n), kBig);
  h.big_inuse.store(1, std::memory_order_relaxed);             // undone by recover() if we die here
  h.head.store(advance(hw, need), std::memory_order_release);  // commit
  const int k = prepare_notify(h.items_seq, h.items_waiters, 1);
  h.lock.unlock();
  if (k) futex_wake(&h.items_seq, k, Scope::Shared);
  return RingStatus::Ok;
}

void ShmRing::get_big(ByteReader read, std::uint64_t tw, std::uint32_t pos, std::uint32_t len) {
  Header& h = *h_;
  try {
    read(std::span<const std::byte>(big_, len));
  } catch (...) {
    h.lock.unlock();
    throw;
  }
  pos += static_cast<std::uint32_t>(kRecordHeader);
  h.tail.store(advance(tw, pos - static_cast<std::uint32_t>(tw)),
               std::memory_order_release);          // commit
  h.big_inuse.store(0, std::memory_order_relaxed);  // redone by recover() if we die here
  // Give the pages back unless a producer is about to fill the area again (it holds
  // big_lock and waits for the ring lock we hold, so it cannot be writing now).
  if (!h.big_lock.locked()) release_big_pages();
  const int ks = prepare_notify(h.space_seq, h.space_waiters, INT32_MAX);
  const int kb = prepare_notify(h.big_seq, h.big_waiters, INT32_MAX);
  h.lock.unlock();
  if (ks) futex_wake(&h.space_seq, ks, Scope::Shared);
  if (kb) futex_wake(&h.big_seq, kb, Scope::Shared);
}

void ShmRing::release_big_pages() noexcept {
  const std::uint64_t t = h_->big_touched.load(std::memory_order_relaxed);
  if (t == 0) return;
  const std::size_t n = round_up(static_cast<std::size_t>(t), page_bytes());
  if (::madvise(big_, n, MADV_REMOVE) != 0) (void)::madvise(big_, n, MADV_DONTNEED);
  h_->big_touched.store(0, std::memory_order_relaxed);
}

void ShmRing::recover() noexcept {
  Header& h = *h_;
  const std::uint64_t tw = h.tail.load(std::memory_order_relaxed);
  const std::uint64_t hw = h.head.load(std::memory_order_relaxed);
  // Walk the committed records: they were complete when committed and nobody writes
  // committed bytes, so this only re-derives big_inuse. Anything else would be a bug; the
  // queue is then emptied rather than left unusable.
  const auto start = static_cast<std::uint32_t>(tw);
  const auto span = static_cast<std::uint32_t>(hw) - start;
  std::uint32_t off = 0, msgs = 0;
  bool big = false, ok = span <= capacity_;
  while (ok && off != span) {
    const std::uint32_t idx = (start + off) & mask_;
    std::uint32_t len, kind;
    load_header(idx, len, kind);
    std::uint32_t adv;
    if (kind == kPad) {
      adv = capacity_ - idx;
    } else if (kind == kMsg && len <= inline_max_) {
      adv = static_cast<std::uint32_t>(record_size(len));
      ++msgs;
    } else if (kind == kBig && len <= max_message_) {
      adv = static_cast<std::uint32_t>(kRecordHeader);
      big = true;
      ++msgs;
    } else {
      ok = false;
      break;
    }
    if (adv > capacity_ - idx || adv > span - off) ok = false;
    off += adv;
  }
  if (!ok || msgs != static_cast<std::uint32_t>((hw >> 32) - (tw >> 32))) {
    h.tail.store(hw, std::memory_order_release);
    big = false;
  }
  h.big_inuse.store(big ? 1 : 0, std::memory_order_relaxed);
  if (!big && !h.big_lock.locked()) release_big_pages();
  // The dead holder may have died between its commit and its wake-up: wake everybody.
  notify_all_now(h.items_seq, h.items_waiters);
  notify_all_now(h.space_seq, h.space_waiters);
  notify_all_now(h.big_seq, h.big_waiters);
  h.lock.consistent();
}

std::size_t ShmRing::unfinished() const noexcept {
  const std::uint32_t d = h_->done.load(std::memory_order_acquire);
  const auto w = static_cast<std::uint32_t>(h_->head.load(std::memory_order_acquire) >> 32);
  return static_cast<std::uint32_t>(w - d);
}

bool ShmRing::task_done() noexcept {
  Header& h = *h_;
  std::uint32_t d = h.done.load(std::memory_order_seq_cst);
  for (;;) {
    const auto w = static_cast<std::uint32_t>(h.head.load(std::memory_order_acquire) >> 32);
    if (w == d) return false;  // nothing unfinished (a stale w only errs towards "some")
    if (h.done.compare_exchange_weak(d, d + 1, std::memory_order_seq_cst)) break;
  }
  if (unfinished() == 0 && h.join_waiters.load(std::memory_order_seq_cst) > 0)
    futex_wake(&h.done, INT_MAX, Scope::Shared);
  return true;
}

bool ShmRing::join(const Clock::time_point* dl) noexcept {
  Header& h = *h_;
  for (;;) {
    h.join_waiters.fetch_add(1, std::memory_order_seq_cst);
    const std::uint32_t d = h.done.load(std::memory_order_seq_cst);
    const auto w = static_cast<std::uint32_t>(h.head.load(std::memory_order_acquire) >> 32);
    bool in_time = true;
    if (w != d) in_time = sleep_on(h.done, d, dl, [this] { return unfinished() == 0; });
    h.join_waiters.fetch_sub(1, std::memory_order_relaxed);
    if (w == d || unfinished() == 0) return true;
    if (!in_time) return false;
  }
}

}  // namespace concur::detail
