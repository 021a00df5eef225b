// concur/threading/local.hpp — Python's threading.local as a typed Local<T>: one T per thread
// per Local object.
//
// Lifetime: a thread's T is default-constructed (or made by the factory given to the
// constructor) on that thread's first get(); it is destroyed when the thread exits (by the
// exiting thread, during thread_local destruction; join() returns after that) or when the
// Local object is destroyed (by the destroying thread), whichever comes first. Never leaked.
//
// Cost: get() after the first call in a thread is a compare against a one-entry per-thread
// cache (no lock, no allocation) when one Local is used in a loop; otherwise a per-thread
// hash lookup under an uncontended per-thread mutex. The first get() allocates.
//
// Fork: in a forked child the values of threads that did not survive the fork stay
// allocated (like those threads' stacks) until the Local dies in the child.
//
// Thread-safety: get()/has_value()/reset() concern only the calling thread's value and may
// run in many threads at once. Destroying a Local while another thread is inside get() on it
// is a data race (as for any object).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace concur::detail {

struct LocalRecord;  // one per thread that used any Local (src/threading/local.cpp)

// The non-template part of Local<T>: identity and the threads holding a value.
class LocalCore {
 public:
  using Deleter = void (*)(void*);
  LocalCore();
  ~LocalCore();  // destroys every thread's value
  LocalCore(const LocalCore&) = delete;
  LocalCore& operator=(const LocalCore&) = delete;

  // This thread's value or nullptr. No allocation.
  void* find() const noexcept;
  // Stores this thread's value (which must not exist yet); takes ownership.
  void insert(void* value, Deleter del);
  // Destroys this thread's value if any.
  void erase() noexcept;

 private:
  std::uint64_t id_;  // never reused, so stale per-thread entries can never be confused
  std::mutex mu_;
  std::vector<std::weak_ptr<LocalRecord>> records_;  // guarded by mu_
};

}  // namespace concur::detail

namespace concur::threading {

template <class T>
class Local {
 public:
  // Each thread's value is T{} on first use.
  Local() = default;
  // Each thread's value is factory() on first use (Python's local subclass with __init__).
  explicit Local(std::function<T()> factory) : factory_(std::move(factory)) {}
  Local(const Local&) = delete;
  Local& operator=(const Local&) = delete;
  // Destroys every thread's value.
  ~Local() = default;

  // This thread's value, created on first use. Throws what T's constructor throws.
  T& get() {
    if (void* p = core_.find()) return *static_cast<T*>(p);
    T* value = factory_ ? new T(factory_()) : new T();
    core_.insert(value, [](void* q) { delete static_cast<T*>(q); });
    return *value;
  }
  T* operator->() { return &get(); }
  T& operator*() { return get(); }
  // Whether this thread has a value yet (a new thread has none). Never allocates.
  bool has_value() const noexcept { return core_.find() != nullptr; }
  // Destroys this thread's value (Python's `del local.attr`); the next get() makes a new one.
  void reset() noexcept { core_.erase(); }

 private:
  std::function<T()> factory_;
  detail::LocalCore core_;  // declared last: destroyed first, while factory_ still exists
};

}  // namespace concur::threading
