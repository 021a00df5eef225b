// concur/multiprocessing/sharedctypes.hpp — Value<T>, RawValue<T>, Array<T>, RawArray<T>:
// Python's multiprocessing.Value/RawValue/Array/RawArray for any trivially copyable T.
//
// Each object is a copyable handle to a block in the process-shared arena
// (detail/arena.hpp): create it before Process::start(), and the child's copy refers to
// the same memory. Copies within a process refer to the same memory too.
//
// Synchronization, as in Python: Value/Array carry an RLock (get_lock(), robust: see
// synchronize.hpp); value() and set() are each synchronized, so `v.set(v.value() + 1)` from
// several processes still loses updates — hold get_lock() around both, or (beyond Python)
// use the lock-free fetch_add/fetch_sub/compare_exchange, which are exact under any
// contention. value()/set() are single atomic loads/stores (no lock taken) when T fits a
// lock-free atomic (std::atomic_ref<T>::is_always_lock_free: 1, 2, 4, 8-byte types);
// larger T are copied under the lock. RawValue/RawArray have no lock: value()/set() of a
// large T may then tear, as in Python.
//
// Array's operator[] and span() give direct references into shared memory (no lock, like
// indexing a RawArray); use get_lock() or the element atomics to coordinate.
//
// Memory ordering: value() is an acquire load, set() a release store, the read-modify-write
// operations are sequentially consistent. Lifetime: see detail/arena.hpp.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "concur/detail/arena.hpp"
#include "concur/detail/robust_lock.hpp"
#include "concur/errors.hpp"
#include "concur/multiprocessing/synchronize.hpp"

namespace concur::detail {

template <class T>
inline constexpr bool kLockFree = std::atomic_ref<T>::is_always_lock_free;
template <class T>
inline constexpr bool kArithmetic =
    (std::is_integral_v<T> && !std::is_same_v<T, bool>) || std::is_floating_point_v<T>;
template <class T>
inline constexpr std::size_t kAlign = std::max(alignof(T), std::atomic_ref<T>::required_alignment);

template <class T>
struct ValueBlock {
  static constexpr std::size_t kRobustLockAt = 0;  // `lock` (see make_shared_object)
  concur::detail::RobustLock lock;
  alignas(kAlign<T>) T value;
  explicit ValueBlock(const T& v) : value(v) {}
};

struct ArrayHeader {
  static constexpr std::size_t kRobustLockAt = 0;  // `lock` (see make_shared_object)
  concur::detail::RobustLock lock;
  std::size_t size = 0;
};
inline constexpr std::size_t kArrayData = 64;  // elements start on their own cache line
static_assert(sizeof(ArrayHeader) <= kArrayData);

// The shared part of Value and RawValue.
template <class T>
class ValueBase {
  static_assert(std::is_trivially_copyable_v<T>, "Value<T> needs a trivially copyable T");

 public:
  // The current value: an atomic load, or a copy under the lock (if any).
  T value() const {
    if constexpr (kLockFree<T>) {
      return std::atomic_ref<T>(b_->value).load(std::memory_order_acquire);
    } else {
      if (!has_lock_ || b_->lock.owned_by_me()) return b_->value;
      b_->lock.lock();  // re-entrant use of the RLock: the owner reads directly (above)
      const T v = b_->value;
      b_->lock.unlock();
      return v;
    }
  }
  // Stores v: an atomic store, or a copy under the lock (if any).
  void set(const T& v) {
    if constexpr (kLockFree<T>) {
      std::atomic_ref<T>(b_->value).store(v, std::memory_order_release);
    } else {
      if (!has_lock_ || b_->lock.owned_by_me()) {
        b_->value = v;
        return;
      }
      b_->lock.lock();
      b_->value = v;
      b_->lock.unlock();
    }
  }
  // Python's get_obj(): the shared object itself (unsynchronized access).
  T* get_obj() const noexcept { return &b_->value; }

  // Atomically adds d; returns the previous value. Lock-free, exact under contention.
  template <class U = T, std::enable_if_t<kArithmetic<U> && kLockFree<U>, int> = 0>
  T fetch_add(T d) noexcept {
    return std::atomic_ref<T>(b_->value).fetch_add(d, std::memory_order_seq_cst);
  }
  // Atomically subtracts d; returns the previous value.
  template <class U = T, std::enable_if_t<kArithmetic<U> && kLockFree<U>, int> = 0>
  T fetch_sub(T d) noexcept {
    return std::atomic_ref<T>(b_->value).fetch_sub(d, std::memory_order_seq_cst);
  }
  // If value == expected, stores desired and returns true; else loads the value into
  // `expected` and returns false (std::atomic's strong compare-exchange).
  template <class U = T, std::enable_if_t<kLockFree<U>, int> = 0>
  bool compare_exchange(T& expected, T desired) noexcept {
    return std::atomic_ref<T>(b_->value).compare_exchange_strong(expected, desired,
                                                                 std::memory_order_seq_cst);
  }

 protected:
  ValueBase(const T& init, bool lock)
      : b_(concur::detail::make_shared_object<ValueBlock<T>>(sizeof(ValueBlock<T>), init)),
        has_lock_(lock) {}
  multiprocessing::RLock lock_handle() const {
    return multiprocessing::RLock(std::shared_ptr<concur::detail::RobustLock>(b_, &b_->lock));
  }
  std::shared_ptr<ValueBlock<T>> b_;
  bool has_lock_;
};

// The shared part of Array and RawArray.
template <class T>
class ArrayBase {
  static_assert(std::is_trivially_copyable_v<T>, "Array<T> needs a trivially copyable T");
  static_assert(kAlign<T> <= kArrayData, "element alignment above 64 bytes");

 public:
  using value_type = T;
  std::size_t size() const noexcept { return header().size; }
  // Unchecked element access (a reference into shared memory).
  T& operator[](std::size_t i) const noexcept { return data()[i]; }
  // Checked access: IndexError("array index out of range").
  T& at(std::size_t i) const {
    if (i >= size()) throw IndexError("array index out of range");
    return data()[i];
  }
  std::span<T> span() const noexcept { return {data(), size()}; }
  T* begin() const noexcept { return data(); }
  T* end() const noexcept { return data() + size(); }
  std::vector<T> to_vector() const { return {begin(), end()}; }

  // Lock-free element atomics (IndexError if i is out of range).
  template <class U = T, std::enable_if_t<kArithmetic<U> && kLockFree<U>, int> = 0>
  T fetch_add(std::size_t i, T d) {
    return std::atomic_ref<T>(at(i)).fetch_add(d, std::memory_order_seq_cst);
  }
  template <class U = T, std::enable_if_t<kArithmetic<U> && kLockFree<U>, int> = 0>
  T fetch_sub(std::size_t i, T d) {
    return std::atomic_ref<T>(at(i)).fetch_sub(d, std::memory_order_seq_cst);
  }
  template <class U = T, std::enable_if_t<kLockFree<U>, int> = 0>
  bool compare_exchange(std::size_t i, T& expected, T desired) {
    return std::atomic_ref<T>(at(i)).compare_exchange_strong(expected, desired,
                                                             std::memory_order_seq_cst);
  }

 protected:
  explicit ArrayBase(std::size_t n) {
    if (n > (SIZE_MAX - kArrayData) / (sizeof(T) == 0 ? 1 : sizeof(T)))
      throw ValueError("array size too large");
    b_ = concur::detail::make_shared_object<ArrayHeader>(kArrayData + n * sizeof(T));
    b_->size = n;
    if constexpr (!std::is_trivially_default_constructible_v<T>) {
      for (std::size_t i = 0; i < n; ++i) ::new (static_cast<void*>(data() + i)) T();
    }  // else: the arena hands out zeroed memory, Python's zero-fill
  }
  ArrayBase(std::span<const T> init) : ArrayBase(init.size()) {
    if (!init.empty()) std::memcpy(static_cast<void*>(data()), init.data(), init.size_bytes());
  }
  const ArrayHeader& header() const noexcept { return *b_; }
  T* data() const noexcept {
    return reinterpret_cast<T*>(reinterpret_cast<char*>(b_.get()) + kArrayData);
  }
  multiprocessing::RLock lock_handle() const {
    return multiprocessing::RLock(std::shared_ptr<concur::detail::RobustLock>(b_, &b_->lock));
  }
  std::shared_ptr<ArrayHeader> b_;
};

}  // namespace concur::detail

namespace concur::multiprocessing {

// Python's multiprocessing.Value(typecode, value, lock=True) for a trivially copyable T.
template <class T>
class Value : public concur::detail::ValueBase<T> {
 public:
  // Allocates the value in shared memory. lock = false: no lock (get_lock() throws).
  explicit Value(const T& init = T{}, bool lock = true)
      : concur::detail::ValueBase<T>(init, lock), lock_(this->lock_handle()) {}
  // The value's robust RLock (the same lock in every process and copy). Throws
  // RuntimeError("Value created with lock=false has no lock") when created without one.
  RLock& get_lock() {
    if (!this->has_lock_) throw RuntimeError("Value created with lock=false has no lock");
    return lock_;
  }

 private:
  RLock lock_;
};

// Python's multiprocessing.RawValue: no lock.
template <class T>
class RawValue : public concur::detail::ValueBase<T> {
 public:
  explicit RawValue(const T& init = T{}) : concur::detail::ValueBase<T>(init, false) {}
};

// Python's multiprocessing.Array(typecode, size_or_initializer, lock=True).
template <class T>
class Array : public concur::detail::ArrayBase<T> {
 public:
  // n value-initialized (zeroed) elements.
  explicit Array(std::size_t n, bool lock = true)
      : concur::detail::ArrayBase<T>(n), lock_(this->lock_handle()), has_lock_(lock) {}
  Array(std::initializer_list<T> init, bool lock = true)
      : Array(std::span<const T>(init.begin(), init.size()), lock) {}
  explicit Array(std::span<const T> init, bool lock = true)
      : concur::detail::ArrayBase<T>(init), lock_(this->lock_handle()), has_lock_(lock) {}
  // The array's robust RLock; RuntimeError if created with lock = false.
  RLock& get_lock() {
    if (!has_lock_) throw RuntimeError("Array created with lock=false has no lock");
    return lock_;
  }

 private:
  RLock lock_;
  bool has_lock_;
};

// Python's multiprocessing.RawArray: no lock.
template <class T>
class RawArray : public concur::detail::ArrayBase<T> {
 public:
  explicit RawArray(std::size_t n) : concur::detail::ArrayBase<T>(n) {}
  RawArray(std::initializer_list<T> init)
      : concur::detail::ArrayBase<T>(std::span<const T>(init.begin(), init.size())) {}
  explicit RawArray(std::span<const T> init) : concur::detail::ArrayBase<T>(init) {}
};

}  // namespace concur::multiprocessing
