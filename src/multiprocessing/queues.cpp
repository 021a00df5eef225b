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

std::atomic<std::uint64_t> g_poll_rescues{0};

// Registers in wait word `w` (generation << 16 | sleepers) and sleeps until a notify counts
// us out, ready() holds, or *deadline passes; wakes every kPollSlice to ask ready() itself (a
// peer may have died between its commit and its notify). Registration is a seq_cst RMW and
// ready() must read the committed word with seq_cst, so a committer that stored before our
// registration is seen by ready(), and one that stored after it sees us. Returns false only
// when the deadline passed.
template <class Ready>
bool sleep_on(std::atomic<std::uint32_t>& w, const Clock::time_point* dl, Ready ready) noexcept {
  std::uint32_t v = w.fetch_add(1, std::memory_order_seq_cst) + 1;
  const std::uint32_t gen = v & ~ShmRing::kSleepers;
  bool in_time = true, slice_ran_out = false;
  for (;;) {
    if (ready()) {
      // A whole slice passed with our registration standing (no generation since), yet the
      // condition holds: a commit did not see us, or its committer died before its notify.
      if (slice_ran_out) {
        v = w.load(std::memory_order_seq_cst);
        if ((v & ~ShmRing::kSleepers) == gen)
          g_poll_rescues.fetch_add(1, std::memory_order_relaxed);
      }
      break;
    }
    auto slice = Clock::now() + kPollSlice;
    const bool last = dl != nullptr && *dl <= slice;
    if (last) slice = *dl;
    (void)futex_wait(&w, v, Scope::Shared, &slice);
    slice_ran_out = !last && Clock::now() >= slice;
    v = w.load(std::memory_order_seq_cst);
    if ((v & ~ShmRing::kSleepers) != gen) return true;  // a notify counted us out
    if (last && Clock::now() >= *dl) {
      in_time = false;
      break;
    }
  }
  // Still counted (no notify since we registered): take ourselves out.
  while ((v & ~ShmRing::kSleepers) == gen && (v & ShmRing::kSleepers) != 0 &&
         !w.compare_exchange_weak(v, v - 1, std::memory_order_seq_cst)) {
  }
  return in_time;
}

// Sleeps on `word` (expected `seen`) until woken or *deadline, waking every kPollSlice to
// ask hint() (JoinableQueue's join). Returns false only when the deadline passed.
template <class Hint>
bool sleep_seen(std::atomic<std::uint32_t>& word, std::uint32_t seen, const Clock::time_point* dl,
                Hint hint) noexcept {
  for (;;) {
    auto slice = Clock::now() + kPollSlice;
    const bool last = dl != nullptr && *dl <= slice;
    if (last) slice = *dl;
    if (futex_wait(&word, seen, Scope::Shared, &slice)) return true;
    if (last) return false;
    if (hint()) return true;
  }
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

void ShmRing::notify_slow(std::atomic<std::uint32_t>& w, std::uint32_t v) noexcept {
  // New generation, no sleepers: everybody registered is counted out and woken.
  while (!w.compare_exchange_weak(v, (v & ~kSleepers) + kGeneration, std::memory_order_seq_cst))
    if ((v & kSleepers) == 0) return;  // another notifier did it (and wakes them)
  futex_wake(&w, INT_MAX, Scope::Shared);
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
  h_->lock.unlock();
  const bool in_time = sleep_on(h_->items_wait, dl, [this] { return count_hint() != 0; });
  relock(h_->lock);
  return in_time;
}

bool ShmRing::space_for(std::uint32_t rec, std::uint32_t slack) const noexcept {
  const std::uint64_t hw = h_->head.load(std::memory_order_seq_cst);  // a hint only
  const std::uint32_t idx = static_cast<std::uint32_t>(hw) & mask_;
  const std::uint32_t need = rec <= capacity_ - idx ? rec : capacity_ - idx + rec;
  return fits(hw, h_->tail.load(std::memory_order_seq_cst), need + slack);
}

bool ShmRing::spin_for_space(std::uint32_t rec) const noexcept {
  // With no maxsize, wait for a sixteenth of the ring beyond the record (rec + slack never
  // exceeds the ring: rec <= a quarter of it).
  const std::uint32_t slack = maxsize_ == 0 ? capacity_ / 16 : 0;
  const std::uint64_t t0 = h_->tail.load(std::memory_order_relaxed);
  int spent = 0;
  for (int gap = 1; spent < kSpinPoll; gap = gap < 64 ? gap * 2 : 64) {
    if (space_for(rec, slack)) return true;
    // No get has finished in the first ~kSpinIdle pauses: no consumer is running right now
    // (or it shares our CPU, where polling only delays it), so sleep at once.
    if (spent >= kSpinIdle && h_->tail.load(std::memory_order_relaxed) == t0) return false;
    for (int i = 0; i < gap; ++i) cpu_relax();
    spent += gap;
  }
  return false;
}

bool ShmRing::wait_space(const Clock::time_point* dl, std::uint32_t rec) noexcept {
  Header& h = *h_;
  h.plock.unlock();
  const bool in_time =
      spin_for_space(rec) || sleep_on(h.space_wait, dl, [this, rec] { return space_for(rec, 0); });
  relock(h.plock);
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
  struct Unlock {
    RobustLock& l;
    ~Unlock() { l.unlock(); }
  } unlock_big{bl};
  // A previous holder that died either never published (the area is garbage, free to
  // overwrite) or did (big_state says so) — or died holding plock too, between its
  // big_state store and its commit: the next plock holder's repair undoes that store, and
  // with only big puts to come that must be us, before we wait for the area.
  if (bl.owner_died()) {
    if (!acquire(h.plock, dl)) return RingStatus::Unavailable;  // owner_died() stays set
    h.plock.unlock();
    bl.consistent();
  }

  // 1. Wait until the previous big message has been consumed. A non-blocking put must not
  // copy megabytes only to find no room for its record (a hint: the room may go meanwhile).
  auto area_free = [&h] { return h.big_state.load(std::memory_order_seq_cst) == 0; };
  const auto rec = static_cast<std::uint32_t>(kBigRecord);
  if (!block) {
    if (!area_free()) return RingStatus::Unavailable;
    std::uint64_t hw;
    std::uint32_t idx, need;
    if (!acquire(h.plock, dl)) return RingStatus::Unavailable;
    const bool room = reserve(rec, hw, idx, need);
    h.plock.unlock();
    if (!room) return RingStatus::Unavailable;
  }
  while (!area_free()) {
    if (!sleep_on(h.big_wait, dl, area_free) && !area_free()) return RingStatus::Unavailable;
  }
  if (h.big_touched.load(std::memory_order_relaxed) < n)
    h.big_touched.store(n, std::memory_order_relaxed);

  // 2. Fill the area with no ring lock held (only the big_lock holder writes it).
  if (const int err = populate(big_, n)) throw OSError(err, "allocating a big Queue message");
  write(big_);

  // 3. Publish with a BIG record carrying a fresh ticket (a regular put of 8 bytes).
  std::uint64_t hw;
  std::uint32_t idx, need;
  if (!reserve_locked(rec, block, dl, hw, idx, need)) return RingStatus::Unavailable;
  std::uint64_t ticket = h.big_ticket.load(std::memory_order_relaxed) + 1;
  if (ticket == 0) ticket = 1;
  h.big_ticket.store(ticket, std::memory_order_relaxed);
  store_header(idx, static_cast<std::uint32_t>(n), kBig);
  std::memcpy(ring_ + idx + kRecordHeader, &ticket, sizeof ticket);
  h.big_state.store(ticket, std::memory_order_seq_cst);        // undone by recover() if we die here
  h.head.store(advance(hw, need), std::memory_order_seq_cst);  // commit
  h.plock.unlock();
  notify(h.items_wait);
  return RingStatus::Ok;
}

bool ShmRing::get_big(ByteReader read, std::uint64_t tw, std::uint32_t pos, std::uint32_t idx,
                      std::uint32_t len) {
  Header& h = *h_;
  std::uint64_t ticket;
  std::memcpy(&ticket, ring_ + idx + kRecordHeader, sizeof ticket);
  const std::uint32_t end = pos + static_cast<std::uint32_t>(kBigRecord);
  if (h.big_state.load(std::memory_order_acquire) != ticket) {
    retire(tw, end);  // stale: its message was taken by a consumer that died right after
    return false;
  }
  try {
    read(std::span<const std::byte>(big_, len));
  } catch (...) {
    h.lock.unlock();
    throw;
  }
  h.big_state.store(0, std::memory_order_seq_cst);  // commit: the message is taken
  retire(tw, end);
  unlock_and_notify(h.lock, h.space_wait);
  notify(h.big_wait);
  // Give the pages back unless a producer is about to fill the area again (it holds
  // big_lock while it waits for and writes the area, so holding it we cannot race it).
  if (h.big_lock.try_lock_free()) {
    if (h.big_state.load(std::memory_order_relaxed) == 0) release_big_pages();
    h.big_lock.unlock();
  }
  return true;
}

void ShmRing::release_big_pages() noexcept {
  const std::uint64_t t = h_->big_touched.load(std::memory_order_relaxed);
  if (t == 0) return;
  const std::size_t n = round_up(static_cast<std::size_t>(t), page_bytes());
  if (::madvise(big_, n, MADV_REMOVE) != 0) (void)::madvise(big_, n, MADV_DONTNEED);
  h_->big_touched.store(0, std::memory_order_relaxed);
}

// With plock held: is a BIG record with this ticket queued? Walks [tail, head): producers
// cannot write there (we hold their lock) and consumers only move tail forward, so the
// bytes walked stay as committed. A record that makes no sense (a bug) ends the walk.
bool ShmRing::big_queued(std::uint64_t ticket) const noexcept {
  const std::uint64_t tw = h_->tail.load(std::memory_order_acquire);
  const std::uint64_t hw = h_->head.load(std::memory_order_relaxed);
  const auto start = static_cast<std::uint32_t>(tw);
  const auto span = static_cast<std::uint32_t>(hw) - start;
  if (span > capacity_) return false;
  for (std::uint32_t off = 0; off != span;) {
    const std::uint32_t idx = (start + off) & mask_;
    std::uint32_t len, kind;
    load_header(idx, len, kind);
    std::uint32_t adv;
    if (kind == kPad) {
      adv = capacity_ - idx;
    } else if (kind == kMsg && len <= inline_max_) {
      adv = static_cast<std::uint32_t>(record_size(len));
    } else if (kind == kBig) {
      std::uint64_t t;
      std::memcpy(&t, ring_ + idx + kRecordHeader, sizeof t);
      if (t == ticket) return true;
      adv = static_cast<std::uint32_t>(kBigRecord);
    } else {
      return false;
    }
    if (adv > capacity_ - idx || adv > span - off) return false;
    off += adv;
  }
  return false;
}

// The lock of one side came from a dead holder. Its commit words are single stores, so the
// ring is consistent; what is left: a big_state the dead producer stored without publishing
// its record (cleared here), and the wake-ups it may have died before.
void ShmRing::recover(RobustLock& l) noexcept {
  Header& h = *h_;
  if (&l == &h.plock) {
    std::uint64_t t = h.big_state.load(std::memory_order_seq_cst);
    if (t != 0 && !big_queued(t))
      (void)h.big_state.compare_exchange_strong(t, 0, std::memory_order_seq_cst);
  }
  for (auto* w : {&h.items_wait, &h.space_wait, &h.big_wait}) {
    std::uint32_t v = w->load(std::memory_order_seq_cst);
    if (v & kSleepers) notify_slow(*w, v);
  }
  l.consistent();
}

std::uint64_t ShmRing::poll_rescues() noexcept {
  return g_poll_rescues.load(std::memory_order_relaxed);
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
    if (w != d) in_time = sleep_seen(h.done, d, dl, [this] { return unfinished() == 0; });
    h.join_waiters.fetch_sub(1, std::memory_order_relaxed);
    if (w == d || unfinished() == 0) return true;
    if (!in_time) return false;
  }
}

}  // namespace concur::detail
