// concur/detail/thread_annotations.hpp — clang thread-safety annotations for concur's own
// mutex-guarded state, checked by the `clang-tsa` build (CMakePresets.json, `make tsa`):
// clang++ -Wthread-safety -Werror=thread-safety over the library.
//
// The macros expand to clang's attributes under clang and to nothing elsewhere (GCC has no
// such analysis). libstdc++'s std::mutex carries no capability attribute, so internal
// state guarded by a std::mutex uses detail::Mutex (a std::mutex with the attribute, same
// size and cost: every member is an inline forward) and detail::MutexLock (a scoped
// guard the analysis understands) instead of std::mutex and std::lock_guard.
//
//   detail::Mutex mu;
//   int count CONCUR_GUARDED_BY(mu) = 0;
//   void bump_locked() CONCUR_REQUIRES(mu) { ++count; }
//   void bump() { detail::MutexLock g(mu); bump_locked(); }
//
// The futex-based locks are not annotated: Python lets any thread release a Lock, which
// the analysis (a lock is released by the scope that took it) cannot express.
#pragma once

#include <mutex>

#if defined(__clang__)
#define CONCUR_TSA(x) __attribute__((x))
#else
#define CONCUR_TSA(x)
#endif

#define CONCUR_CAPABILITY(x) CONCUR_TSA(capability(x))
#define CONCUR_SCOPED_CAPABILITY CONCUR_TSA(scoped_lockable)
#define CONCUR_GUARDED_BY(x) CONCUR_TSA(guarded_by(x))
#define CONCUR_PT_GUARDED_BY(x) CONCUR_TSA(pt_guarded_by(x))
#define CONCUR_REQUIRES(...) CONCUR_TSA(requires_capability(__VA_ARGS__))
#define CONCUR_EXCLUDES(...) CONCUR_TSA(locks_excluded(__VA_ARGS__))
#define CONCUR_ACQUIRE(...) CONCUR_TSA(acquire_capability(__VA_ARGS__))
#define CONCUR_RELEASE(...) CONCUR_TSA(release_capability(__VA_ARGS__))
#define CONCUR_TRY_ACQUIRE(...) CONCUR_TSA(try_acquire_capability(__VA_ARGS__))
#define CONCUR_RETURN_CAPABILITY(x) CONCUR_TSA(lock_returned(x))
#define CONCUR_NO_THREAD_SAFETY_ANALYSIS CONCUR_TSA(no_thread_safety_analysis)

namespace concur::detail {

// std::mutex as a capability. Lockable, so std::unique_lock/std::condition_variable_any
// work with it too (those are invisible to the analysis).
class CONCUR_CAPABILITY("mutex") Mutex {
 public:
  constexpr Mutex() noexcept = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() CONCUR_ACQUIRE() { m_.lock(); }
  void unlock() CONCUR_RELEASE() { m_.unlock(); }
  bool try_lock() CONCUR_TRY_ACQUIRE(true) { return m_.try_lock(); }
  // The fork protocol (detail/fork.hpp) holds a module lock across fork(): taken in the
  // prepare handler, released in the parent and child handlers. The analysis pairs a lock
  // with its release in one scope and cannot see that; these two are the unchecked forms,
  // for those handlers only.
  void fork_lock() CONCUR_NO_THREAD_SAFETY_ANALYSIS { m_.lock(); }
  void fork_unlock() CONCUR_NO_THREAD_SAFETY_ANALYSIS { m_.unlock(); }
  // The wrapped mutex (for std::condition_variable through std::unique_lock).
  std::mutex& native() noexcept { return m_; }

 private:
  std::mutex m_;
};

// std::lock_guard for Mutex, visible to the analysis.
class CONCUR_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& m) CONCUR_ACQUIRE(m) : m_(m) { m_.lock(); }
  ~MutexLock() CONCUR_RELEASE() { m_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& m_;
};

}  // namespace concur::detail
