#include "concur/detail/arena.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include "concur/detail/fork.hpp"
#include "concur/detail/thread_annotations.hpp"
#include "concur/errors.hpp"

namespace concur::detail {

namespace {

constexpr std::size_t kClasses = kMaxSmall / kArenaAlign;  // size classes 64, 128, ... 16 KiB

struct Arena {
  Mutex mu;
  char* cur CONCUR_GUARDED_BY(mu) = nullptr;     // the chunk being carved (this process's)
  std::size_t used CONCUR_GUARDED_BY(mu) = 0;    // bytes of `cur` handed out
  std::size_t chunks CONCUR_GUARDED_BY(mu) = 0;  // chunks mapped by this process
  std::size_t large CONCUR_GUARDED_BY(mu) = 0;   // large mappings live
  std::vector<void*> free_lists[kClasses] CONCUR_GUARDED_BY(mu);
};

Arena& arena() noexcept;

// Fork protocol (rank kArena): the allocator lock is held across fork. The child forgets
// the parent's allocation state: its free space and free blocks belong to the parent.
void on_prepare() noexcept {
  arena().mu.fork_lock();
}
void on_parent() noexcept {
  arena().mu.fork_unlock();
}
// mu is held (on_prepare took it): the analysis cannot see that across the fork.
void on_child() noexcept CONCUR_NO_THREAD_SAFETY_ANALYSIS {
  Arena& a = arena();
  a.cur = nullptr;
  a.used = 0;
  a.chunks = 0;
  a.large = 0;
  for (auto& fl : a.free_lists) std::vector<void*>().swap(fl);
  a.mu.fork_unlock();
}

// Leaked on purpose: handles may be released by static destructors after ours ran.
Arena& arena() noexcept {
  static Arena* a = new Arena;
  return *a;
}

[[maybe_unused]] const bool g_fork_registered =
    (register_fork_handler(ForkRank::kArena, {on_prepare, on_parent, on_child}), true);

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

void* map_shared(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw OSError(errno, "mmap(MAP_SHARED|MAP_ANONYMOUS)");
  return p;
}

std::size_t page_size() {
  static const std::size_t ps = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return ps;
}

}  // namespace

void* shared_alloc(std::size_t size) {
  if (size == 0) size = 1;
  Arena& a = arena();
  const std::size_t bytes = round_up(size, kArenaAlign);
  if (bytes > kMaxSmall) {
    void* p = map_shared(round_up(bytes, page_size()));
    MutexLock g(a.mu);
    ++a.large;
    return p;
  }
  MutexLock g(a.mu);
  auto& fl = a.free_lists[bytes / kArenaAlign - 1];
  if (!fl.empty()) {
    void* p = fl.back();
    fl.pop_back();
    std::memset(p, 0, bytes);
    return p;
  }
  if (a.cur == nullptr || a.used + bytes > kArenaChunk) {
    // The tail of the old chunk (< 16 KiB) is abandoned; fresh chunks are zero-filled.
    a.cur = static_cast<char*>(map_shared(kArenaChunk));
    a.used = 0;
    ++a.chunks;
  }
  void* p = a.cur + a.used;
  a.used += bytes;
  return p;
}

void shared_free(void* p, std::size_t size, unsigned long gen) noexcept {
  if (!p) return;
  Arena& a = arena();
  const std::size_t bytes = round_up(size == 0 ? 1 : size, kArenaAlign);
  if (bytes > kMaxSmall) {
    ::munmap(p, round_up(bytes, page_size()));
    MutexLock g(a.mu);
    --a.large;
    return;
  }
  // A child forked since the allocation may still use these bytes: never hand them out
  // again (see the banner).
  if (gen != fork_epoch()) return;
  MutexLock g(a.mu);
  try {
    a.free_lists[bytes / kArenaAlign - 1].push_back(p);
  } catch (...) {
    // Out of memory for the free list: leaving the block unused is harmless.
  }
}

ArenaStats arena_stats() {
  Arena& a = arena();
  MutexLock g(a.mu);
  ArenaStats s;
  s.chunks = a.chunks;
  s.large = a.large;
  for (auto& fl : a.free_lists) s.free_blocks += fl.size();
  return s;
}

}  // namespace concur::detail
