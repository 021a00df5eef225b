// concur/detail/arena.hpp — the process-shared arena behind multiprocessing's Value, Array,
// Lock, Semaphore, Event, Condition and Barrier.
//
// Every object lives in MAP_SHARED|MAP_ANONYMOUS memory, so a child forked after the
// object was created sees the very same bytes. Small objects (≤ kMaxSmall bytes) are
// carved out of 64 KiB chunks by a bump allocator with per-size free lists (one mmap per
// object would cost a VMA and ~1 µs each and waste a 4 KiB page on a 48-byte lock);
// larger objects get their own mapping. Blocks are 64-byte aligned and a multiple of 64
// bytes, so two objects never share a cache line (no false sharing between a hot counter
// and its neighbour; a contended line costs ~0.18 µs per hand-off here).
//
// Ownership is per process: a process allocates only from chunks it mapped itself. After
// fork the child forgets the parent's current chunk and free lists (detail/fork.hpp), so
// parent and child can never hand out the same bytes twice. The objects themselves are
// shared: handles are std::shared_ptr whose deleter frees the block only in the process
// that allocated it, and only if no fork happened since the allocation — a child forked
// meanwhile may still use it, so such blocks are left in place (not reused) rather than
// risk two live objects on the same bytes. Blocks never shared with a child are recycled.
// Large blocks are always unmapped at the last handle: the munmap only removes the
// parent's view; a child's inherited mapping stays valid.
//
// Thread-safety: all functions may be called from any thread (an in-process mutex guards
// the allocator; other processes never touch this process's allocator state).
// Objects placed here must be trivially destructible and contain no process-local
// pointers (the futex core's types and RobustLock qualify).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "concur/detail/fork.hpp"

namespace concur::detail {

inline constexpr std::size_t kArenaAlign = 64;
inline constexpr std::size_t kArenaChunk = 64 * 1024;
inline constexpr std::size_t kMaxSmall = 16 * 1024;

// Returns `size` zeroed bytes of MAP_SHARED memory aligned to 64. Throws OSError (ENOMEM)
// if the kernel refuses the mapping.
void* shared_alloc(std::size_t size);
// Returns a block to the arena (see the reuse rule in the banner). Only the allocating
// process may call it; never throws.
void shared_free(void* p, std::size_t size, unsigned long fork_epoch_at_alloc) noexcept;
// Statistics for tests: chunks mapped, large mappings live, small blocks on free lists.
struct ArenaStats {
  std::size_t chunks = 0, large = 0, free_blocks = 0;
};
ArenaStats arena_stats();

// shared_free for a block with a RobustLock at offset `lock_at`: the block is reused only
// once the lock's node is in no live thread's robust list (robust_retire, robust_lock.hpp).
void shared_free_robust(void* p, std::size_t lock_at, std::size_t size,
                        unsigned long fork_generation) noexcept;

// Frees an arena block when the last handle of the allocating process goes away.
struct ArenaDeleter {
  std::size_t bytes;
  unsigned long gen;
  pid_t pid;
  std::ptrdiff_t robust_at = -1;  // offset of a RobustLock in the block, -1 if none
  void operator()(void* p) const noexcept {
    if (!p || pid != this_process_pid()) return;
    if (robust_at >= 0)
      shared_free_robust(p, static_cast<std::size_t>(robust_at), bytes, gen);
    else
      shared_free(p, bytes, gen);
  }
};

// Creates a T in shared memory (`bytes` ≥ sizeof(T) reserves room for a trailing array)
// and returns the owning handle. Copies of the handle (also the copies a forked child
// inherits) refer to the same object. Throws what T's constructor or shared_alloc throws.
template <class T, class... A>
std::shared_ptr<T> make_shared_object(std::size_t bytes, A&&... args) {
  static_assert(std::is_trivially_destructible_v<T>, "arena objects are never destroyed");
  if (bytes < sizeof(T)) bytes = sizeof(T);
  void* mem = shared_alloc(bytes);
  const unsigned long gen = fork_epoch();
  T* obj;
  try {
    obj = ::new (mem) T(std::forward<A>(args)...);
  } catch (...) {
    shared_free(mem, bytes, gen);
    throw;
  }
  std::ptrdiff_t robust_at = -1;  // T declares where its RobustLock is: kRobustLockAt
  if constexpr (requires { T::kRobustLockAt; })
    robust_at = static_cast<std::ptrdiff_t>(T::kRobustLockAt);
  return std::shared_ptr<T>(obj, ArenaDeleter{bytes, gen, this_process_pid(), robust_at});
}

}  // namespace concur::detail
