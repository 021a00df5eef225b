// concur/detail/executor_map.hpp — the in-order result range of Executor::map.
//
// Shared by the executors: MapResult<Executor, F, View> is the futures module's one
// single-pass result range (detail::ResultRange) over a MapSource. As in Python
// 3.14 (cpython#74028): without MapOptions::buffersize every item is submitted by the map()
// call, so every call runs even if the range is dropped unconsumed (CPython's
// test_map_submits_without_iteration); with buffersize = n the first n are submitted by the
// call and one more item is read and submitted each time a result is about to be waited for
// (a bounded window, for large or endless inputs). map() after shutdown throws at once.
// Results come in input order; a task's exception is rethrown by begin()/operator++ at its
// position (that position is consumed: a caller that catches may keep iterating); the
// deadline (MapOptions::timeout) is measured from the map() call and throws TimeoutError.
// Destroying the range once iterating has begun cancels the tasks still pending (as closing
// Python's generator does); running ones finish unobserved. A range never begun cancels
// nothing (Python's generator never started runs no finally).
//
// Shutdown while iterating: every result already submitted is still delivered (the pool
// runs its queue before its workers exit). With buffersize, the items not yet submitted
// cannot be: after the last submitted result, iterating throws the submit's RuntimeError
// ("cannot schedule new futures after shutdown") once, then ends. (Python 3.14 raises it
// from the first submit attempt and cancels the results still in its window.)
//
// Lifetime: the range refers to its executor, which must outlive it. A range given as an
// lvalue is referred to (it must outlive the MapResult); an rvalue range is moved in.
// Thread-safety: one MapResult is used by one thread. F is called concurrently from the
// workers and must tolerate that (as in Python).
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>
#include <variant>

#include "concur/errors.hpp"
#include "concur/futures/future.hpp"

namespace concur::detail {

template <class Exec, class F, class View>
class MapSource {
  using Item = std::ranges::range_value_t<View>;
  using Raw = std::invoke_result_t<F&, Item&&>;
  using Ret = std::conditional_t<std::is_void_v<Raw>, void, std::remove_cvref_t<Raw>>;

 public:
  // What iterating yields: the function's result (std::monostate for void functions).
  using value_type = std::conditional_t<std::is_void_v<Ret>, std::monostate, Ret>;

  MapSource(Exec& ex, F fn, View view, const futures::MapOptions& opts)
      : ex_(&ex),
        fn_(std::make_shared<F>(std::move(fn))),
        view_(std::move(view)),
        it_(std::ranges::begin(view_)),
        buffersize_(opts.buffersize.value_or(0)) {
    if (opts.buffersize && *opts.buffersize == 0)
      throw ValueError("buffersize must be None or > 0");
    if (opts.timeout) deadline_ = concur::detail::Deadline::after(*opts.timeout).time_point();
    try {
      while ((buffersize_ == 0 || window_.size() < buffersize_) && submit_next()) {
      }
    } catch (...) {
      // Nothing submitted (map() after shutdown, a broken pool): throw from map() itself.
      // Otherwise the pool was shut down meanwhile: deliver what was submitted first.
      if (window_.empty()) throw;
      failed_submit_ = std::current_exception();
    }
  }
  MapSource(MapSource&&) = default;
  MapSource& operator=(MapSource&&) = delete;
  ~MapSource() {
    if (begun_)
      for (auto& f : window_) (void)f.cancel();
  }

  value_type* next() {
    begun_ = true;
    current_.reset();
    if (window_.empty()) {
      if (failed_submit_) std::rethrow_exception(std::exchange(failed_submit_, nullptr));
      return nullptr;
    }
    // Python's order: top the window up first, then wait for the oldest result.
    if (buffersize_ != 0 && !failed_submit_) {
      try {
        (void)submit_next();
      } catch (...) {
        failed_submit_ = std::current_exception();
      }
    }
    futures::Future<Ret>& front = window_.front();
    if (deadline_) {
      if (!front.state_base()->wait(&*deadline_))
        throw TimeoutError("map() result not available within the timeout");
    } else {
      front.wait();
    }
    futures::Future<Ret> f = std::move(front);
    window_.pop_front();
    if constexpr (std::is_void_v<Ret>) {
      f.result();
      current_.emplace();
    } else {
      current_.emplace(f.result());
    }
    return &*current_;
  }

 private:
  bool submit_next() {
    if (it_ == std::ranges::end(view_)) return false;
    Item item(*it_);
    auto fn = fn_;
    window_.push_back(ex_->submit(
        [fn](Item&& x) -> Ret {
          if constexpr (std::is_void_v<Ret>)
            std::invoke(*fn, std::move(x));
          else
            return std::invoke(*fn, std::move(x));
        },
        std::move(item)));
    ++it_;  // only once submitted: a failed submit leaves the item unconsumed
    return true;
  }

  Exec* ex_;
  std::shared_ptr<F> fn_;
  View view_;
  std::ranges::iterator_t<View> it_;
  std::size_t buffersize_;  // 0: everything submitted up front
  std::deque<futures::Future<Ret>> window_;
  std::optional<concur::detail::Clock::time_point> deadline_;
  std::optional<value_type> current_;
  std::exception_ptr failed_submit_;  // a submit that failed after some succeeded
  bool begun_ = false;
};

template <class Exec, class F, class View>
using MapResult = ResultRange<MapSource<Exec, F, View>>;

}  // namespace concur::detail
