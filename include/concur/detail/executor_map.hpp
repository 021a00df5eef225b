// concur/detail/executor_map.hpp — the lazy, in-order result range of Executor::map.
//
// Shared by the executors: MapResult<Executor, F, View> keeps at most `window` tasks in
// flight (Python submits the whole input at once, cpython#74028), submits the first window
// when map() is called (so map() after shutdown throws at once, as in Python), and one more
// input item each time a result is consumed. Results come in input order; a task's
// exception is rethrown by begin()/operator++ at its position (that position is consumed:
// a caller that catches may keep iterating); the deadline (MapOptions::timeout) is measured
// from the map() call and throws TimeoutError. Destroying the range early cancels the tasks
// still pending (as closing Python's generator does); running ones finish unobserved.
//
// Lifetime: the range refers to its executor, which must outlive it. A range given as an
// lvalue is referred to (it must outlive the MapResult); an rvalue range is moved in.
// Thread-safety: one MapResult is used by one thread. F is called concurrently from the
// workers and must tolerate that (as in Python).
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
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

namespace concur::futures::detail {

template <class Exec, class F, class View>
class MapResult {
  using Item = std::ranges::range_value_t<View>;
  using Raw = std::invoke_result_t<F&, Item&&>;
  using Ret = std::conditional_t<std::is_void_v<Raw>, void, std::remove_cvref_t<Raw>>;

 public:
  // What iterating yields: the function's result (std::monostate for void functions).
  using value_type = std::conditional_t<std::is_void_v<Ret>, std::monostate, Ret>;

  MapResult(Exec& ex, F fn, View view, const MapOptions& opts, std::size_t default_window)
      : ex_(&ex),
        fn_(std::make_shared<F>(std::move(fn))),
        view_(std::move(view)),
        it_(std::ranges::begin(view_)),
        window_size_(opts.buffersize.value_or(default_window)) {
    if (opts.buffersize && *opts.buffersize == 0)
      throw ValueError("buffersize must be None or > 0");
    if (window_size_ == 0) window_size_ = 1;
    if (opts.timeout) deadline_ = concur::detail::Deadline::after(*opts.timeout).time_point();
    while (window_.size() < window_size_ && submit_next()) {
    }
  }
  MapResult(const MapResult&) = delete;
  MapResult& operator=(const MapResult&) = delete;
  ~MapResult() {
    for (auto& f : window_) (void)f.cancel();
  }

  class iterator {
   public:
    using value_type = MapResult::value_type;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    value_type& operator*() const { return *r_->current_; }
    value_type* operator->() const { return &*r_->current_; }
    iterator& operator++() {
      r_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.at_end(); }

   private:
    friend class MapResult;
    bool at_end() const { return r_->finished_; }
    explicit iterator(MapResult* r) : r_(r) {}
    MapResult* r_ = nullptr;
  };

  // Waits for the first result (rethrowing its exception). Single pass: call once.
  iterator begin() {
    advance();
    return iterator(this);
  }
  std::default_sentinel_t end() const noexcept { return {}; }

  // Collects the remaining results into a vector (rethrows at the first failure).
  std::vector<value_type> to_vector() {
    std::vector<value_type> out;
    for (auto& v : *this) out.push_back(std::move(v));
    return out;
  }

 private:
  bool submit_next() {
    if (it_ == std::ranges::end(view_)) return false;
    Item item(*it_);
    ++it_;
    auto fn = fn_;
    window_.push_back(ex_->submit(
        [fn](Item&& x) -> Ret {
          if constexpr (std::is_void_v<Ret>)
            std::invoke(*fn, std::move(x));
          else
            return std::invoke(*fn, std::move(x));
        },
        std::move(item)));
    return true;
  }

  void advance() {
    current_.reset();
    if (window_.empty()) {
      finished_ = true;
      return;
    }
    Future<Ret>& front = window_.front();
    if (deadline_) {
      if (!front.state_base()->wait(&*deadline_))
        throw TimeoutError("map() result not available within the timeout");
    } else {
      front.wait();
    }
    Future<Ret> f = std::move(front);
    window_.pop_front();
    submit_next();
    if constexpr (std::is_void_v<Ret>) {
      f.result();
      current_.emplace();
    } else {
      current_.emplace(f.result());
    }
  }

  Exec* ex_;
  std::shared_ptr<F> fn_;
  View view_;
  std::ranges::iterator_t<View> it_;
  std::size_t window_size_;
  std::deque<Future<Ret>> window_;
  std::optional<concur::detail::Clock::time_point> deadline_;
  std::optional<value_type> current_;
  bool finished_ = false;
};

}  // namespace concur::futures::detail
