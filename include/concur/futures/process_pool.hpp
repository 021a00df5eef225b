// concur/futures/process_pool.hpp — Python's concurrent.futures.ProcessPoolExecutor.
//
// max_workers worker processes (default cpu_count()), all started by the constructor from a
// single-threaded fork server made at that moment (detail/worker_pool.hpp), so a pool may be
// built and used by a parent with other threads running. submit(fn, args...) returns the
// same futures::Future<R> as the thread pool; map(fn, items, {.timeout, .chunksize,
// .buffersize}) returns an in-order result range; shutdown(wait, cancel_futures); the
// destructor is shutdown(true).
//
// What may be submitted: a function, a function pointer, or a lambda/functor whose captures
// are trivially copyable (they travel as bytes; no registration), or a functor with a
// cereal-style serialize. Arguments and the result must be sendable by the codec. Anything
// else is a compile-time error saying why. A lambda capturing by reference compiles (it is
// trivially copyable) but refers to the worker's copy of memory as it was when the pool was
// built: capture values.
// Exceptions come back as the same type for std:: exceptions and concur errors, else as
// RemoteError with the original type name and what().
//
// Beyond Python: a worker that dies (SIGKILL, SIGSEGV, _exit(3), the OOM killer) fails only
// the futures it had started, with BrokenProcessPool naming the signal or exit code; tasks it
// had received but not started run on other workers; a replacement worker is started and the
// pool keeps serving. max_tasks_per_child recycles workers (Python forbids it with fork).
// An initializer that throws breaks the pool: pending futures and later submits fail with
// BrokenProcessPool (as in Python).
//
// Lifetime: futures stay valid after the executor is gone; the executor must outlive map
// result ranges. Thread-safety: every member may be called from any thread; done callbacks
// run on the pool's manager thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "concur/detail/deadline.hpp"
#include "concur/detail/worker_pool.hpp"
#include "concur/errors.hpp"
#include "concur/futures/future.hpp"

namespace concur::futures {

}  // namespace concur::futures

namespace concur::detail {


// A job completing a Future<R>.
template <class R>
class FutureJob final : public wp::Job {
 public:
  explicit FutureJob(futures::Future<R> f) : fut_(std::move(f)) {}
  bool start() noexcept override {
    try {
      return fut_.set_running_or_notify_cancel();
    } catch (...) {
      return false;
    }
  }
  void finish(std::uint8_t status, std::span<const std::byte> bytes) noexcept override {
    try {
      if (status != 0) {
        fut_.set_exception(wp::decode_exception(bytes));
      } else if constexpr (std::is_void_v<R>) {
        (void)concur::detail::codec::decode<std::monostate>(bytes);
        fut_.set_result();
      } else {
        fut_.set_result(concur::detail::codec::decode<R>(bytes));
      }
    } catch (...) {
      try {
        fut_.set_exception(std::current_exception());
      } catch (...) {
      }
    }
  }
  void fail(std::exception_ptr e) noexcept override {
    try {
      fut_.set_exception(std::move(e));
    } catch (...) {
    }
  }
  bool cancel() noexcept override {
    try {
      return fut_.cancel();
    } catch (...) {
      return false;
    }
  }
  bool withdraw() noexcept override {
    try {
      return fut_.withdraw();
    } catch (...) {
      return false;
    }
  }

 private:
  futures::Future<R> fut_;
};

template <class F, class... A>
using call_result_t = std::remove_cvref_t<std::invoke_result_t<F&, A&&...>>;

// Submits fn(args...) to the engine; the returned future completes with its result.
template <class F, class... A>
auto engine_submit(wp::Engine& e, const char* after_shutdown, F&& fn, A&&... args) {
  using Fn = std::decay_t<F>;
  using R = call_result_t<Fn, std::decay_t<A>...>;
  futures::Future<R> fut;
  auto job = std::make_unique<FutureJob<R>>(fut);
  wp::encode_call<R, Fn>(*job, Fn(std::forward<F>(fn)),
                         std::tuple<std::decay_t<A>...>(std::forward<A>(args)...));
  e.submit(std::move(job), after_shutdown);
  return fut;
}

// Submits fn over one chunk of items; the future completes with the chunk's results.
template <class R, class Fn, class Item>
futures::Future<std::vector<wp::Stored<R>>> chunk_job(Fn fn, const std::vector<Item>& items,
                                             std::vector<std::unique_ptr<wp::Job>>& jobs) {
  futures::Future<std::vector<wp::Stored<R>>> fut;
  auto job = std::make_unique<FutureJob<std::vector<wp::Stored<R>>>>(fut);
  wp::encode_chunk<R, Fn, Item>(*job, fn, items);
  jobs.push_back(std::move(job));
  return fut;
}

// fn applied to a tuple's elements (starmap).
template <class F>
struct StarFn {
  F f;
  template <class Tuple>
  decltype(auto) operator()(Tuple&& t) {
    return std::apply(f, std::forward<Tuple>(t));
  }
  template <class Ar>
  requires concur::detail::codec::Sendable<F>
  void serialize(Ar& ar) { ar(f); }
};

// The in-order results of fn over a range, in chunks of `chunksize` items, at most
// `window` chunks in flight (0: every chunk submitted at once). Results are yielded one by
// one; a chunk's exception is thrown at its first item's position.
template <class F, class View>
class ChunkMapSource {
  using Item = std::remove_cvref_t<std::ranges::range_value_t<View>>;
  using Fn = std::decay_t<F>;
  using R = call_result_t<Fn, Item>;
  using Chunk = std::vector<wp::Stored<R>>;

 public:
  using value_type = wp::Stored<R>;

  ChunkMapSource(wp::Engine& e, const char* after_shutdown, Fn fn, View view, std::size_t chunksize,
                 std::size_t window, std::optional<std::chrono::nanoseconds> timeout)
      : e_(&e),
        after_(after_shutdown),
        fn_(std::move(fn)),
        view_(std::move(view)),
        it_(std::ranges::begin(view_)),
        chunksize_(chunksize),
        window_(window) {
    if (chunksize_ < 1) throw ValueError("chunksize must be >= 1.");
    if (timeout) deadline_ = concur::detail::Deadline::after(*timeout).time_point();
    submit_more(window_ == 0 ? ~std::size_t{0} : window_);
  }
  ChunkMapSource(ChunkMapSource&&) = default;
  ChunkMapSource& operator=(ChunkMapSource&&) = delete;
  ~ChunkMapSource() {
    if (begun_)
      for (auto& f : pending_) (void)f.cancel();
  }

  value_type* next() {
    begun_ = true;
    while (pos_ >= current_.size()) {
      current_.clear();
      pos_ = 0;
      if (pending_.empty()) {
        if (failed_) std::rethrow_exception(std::exchange(failed_, nullptr));
        return nullptr;
      }
      if (window_ != 0 && !failed_) {
        try {
          submit_more(1);
        } catch (...) {
          failed_ = std::current_exception();
        }
      }
      futures::Future<Chunk>& front = pending_.front();
      if (deadline_) {
        if (!front.state_base()->wait(&*deadline_))
          throw TimeoutError("map() result not available within the timeout");
      } else {
        front.wait();
      }
      futures::Future<Chunk> f = std::move(front);
      pending_.pop_front();
      current_ = f.result();
    }
    return &current_[pos_++];
  }

 private:
  void submit_more(std::size_t chunks) {
    std::vector<std::unique_ptr<wp::Job>> jobs;
    std::vector<futures::Future<Chunk>> futs;
    std::vector<Item> items;
    while (chunks-- > 0 && it_ != std::ranges::end(view_)) {
      items.clear();
      for (std::size_t i = 0; i < chunksize_ && it_ != std::ranges::end(view_); ++i, ++it_)
        items.push_back(Item(*it_));
      futs.push_back(chunk_job<R, Fn, Item>(fn_, items, jobs));
    }
    if (jobs.empty()) return;
    e_->submit_many(jobs, after_);
    for (auto& f : futs) pending_.push_back(std::move(f));
  }

  wp::Engine* e_;
  const char* after_;
  Fn fn_;
  View view_;
  std::ranges::iterator_t<View> it_;
  std::size_t chunksize_;
  std::size_t window_;
  std::deque<futures::Future<Chunk>> pending_;
  Chunk current_;
  std::size_t pos_ = 0;
  std::optional<concur::detail::Clock::time_point> deadline_;
  std::exception_ptr failed_;
  bool begun_ = false;
};

}  // namespace concur::detail

namespace concur::futures {

class ProcessPoolExecutor {
 public:
  // Python's default: cpu_count().
  static int default_max_workers();

  // max_workers <= 0 -> ValueError("max_workers must be greater than 0");
  // max_tasks_per_child == 0 -> ValueError("max_tasks_per_child must be >= 1").
  // Starts the fork server and the workers. OSError if the OS refuses.
  explicit ProcessPoolExecutor(int max_workers = default_max_workers(),
                               ExecutorOptions options = {});
  explicit ProcessPoolExecutor(ExecutorOptions options);
  ProcessPoolExecutor(const ProcessPoolExecutor&) = delete;
  ProcessPoolExecutor& operator=(const ProcessPoolExecutor&) = delete;
  ~ProcessPoolExecutor();

  // Schedules fn(args...) in a worker process; RuntimeError("cannot schedule new futures
  // after shutdown") after shutdown(); BrokenProcessPool if the pool is broken.
  template <class F, class... A>
  [[nodiscard]] auto submit(F&& fn, A&&... args) {
    return detail::engine_submit(engine_, kAfterShutdown, std::forward<F>(fn),
                                 std::forward<A>(args)...);
  }

  // fn over every item, results in input order; options.chunksize items travel per task
  // (a chunk of trivially copyable items is one memcpy); options.buffersize bounds the
  // chunks in flight (default: all submitted by the call, as in Python); options.timeout is
  // measured from the call (TimeoutError). chunksize < 1 -> ValueError.
  template <class F, std::ranges::input_range R>
  [[nodiscard]] auto map(F fn, R&& items, MapOptions options = {}) {
    using View = std::views::all_t<R>;
    using Src = detail::ChunkMapSource<F, View>;
    if (options.buffersize && *options.buffersize == 0)
      throw ValueError("buffersize must be None or > 0");
    return ResultRange<Src>(engine_, kAfterShutdown, std::move(fn),
                            std::views::all(std::forward<R>(items)), options.chunksize,
                            options.buffersize.value_or(0), options.timeout);
  }

  void shutdown(bool wait = true, bool cancel_futures = false);

  int max_workers() const noexcept;
  // The pids of the workers alive now (diagnostics, tests).
  std::vector<int> worker_pids() const;
  // Workers that died unexpectedly and were replaced.
  std::size_t replaced_workers() const;

 private:
  template <class S>
  using ResultRange = detail::ResultRange<S>;
  static constexpr const char* kAfterShutdown = "cannot schedule new futures after shutdown";
  concur::detail::wp::Engine engine_;
};

}  // namespace concur::futures
