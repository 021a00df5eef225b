// concur/multiprocessing/pool.hpp — Python's multiprocessing.Pool, on the process-pool
// engine shared with futures::ProcessPoolExecutor (detail/worker_pool.hpp).
//
// Pool(processes = cpu_count(), {.initializer, .maxtasksperchild}) starts its workers from
// a single-threaded fork server at construction. apply/apply_async/map/map_async/starmap/
// imap/imap_unordered as in Python; AsyncResult with get(), get(timeout) (TimeoutError),
// wait, ready, successful (ValueError before ready). close() stops accepting work (workers
// exit when the queue is done), terminate() kills the workers at once, join() waits
// (ValueError("Pool is still running") before close/terminate). Work after close or
// terminate: ValueError("Pool not running"). The destructor is terminate(), as Python's
// `with Pool() as p:` is.
//
// Callbacks (Python's callback= / error_callback=): a leading Callbacks aggregate,
//   pool.apply_async(mp::Callbacks{.callback = on_result, .error_callback = on_error}, f, x);
// on_result(const R&) (map_async: the whole vector), on_error(std::exception_ptr). They run
// on the pool's manager thread (Python's result-handler thread) and must not block; the
// AsyncResult may be seen ready before its callback has returned.
//
// Beyond Python: a worker that dies fails only the results it had started, with
// BrokenProcessPool naming the signal or exit code (Python's Pool waits forever,
// cpython#66587), and the pool keeps serving; a failing initializer breaks the pool
// (BrokenProcessPool) instead of respawning failing workers forever. After terminate(),
// results not finished fail (running: BrokenProcessPool "pool terminated"; queued:
// CancelledError) instead of never completing.
//
// Callables and arguments: as for ProcessPoolExecutor (see futures/process_pool.hpp).
// Thread-safety: every member may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "concur/errors.hpp"
#include "concur/futures/process_pool.hpp"
#include "concur/multiprocessing/process.hpp"

namespace concur::multiprocessing {

struct PoolOptions {
  std::function<void()> initializer{};
  std::size_t maxtasksperchild = 0;  // 0: workers live as long as the pool
};

// Python's callback= / error_callback= (see the banner). Either may be omitted.
template <class OnResult = std::nullptr_t, class OnError = std::nullptr_t>
struct Callbacks {
  OnResult callback{};
  OnError error_callback{};
};

template <class T>
struct is_callbacks : std::false_type {};
template <class A, class B>
struct is_callbacks<Callbacks<A, B>> : std::true_type {};

// Python's AsyncResult (ApplyResult / MapResult).
template <class R>
class AsyncResult {
 public:
  explicit AsyncResult(futures::Future<R> f) : f_(std::move(f)) {}

  // The result; rethrows the task's exception.
  R get() const { return f_.result(); }
  // TimeoutError if not ready within timeout.
  template <class Rep, class Period>
  R get(std::chrono::duration<Rep, Period> timeout) const {
    return f_.result(timeout);
  }
  void wait() const { f_.wait(); }
  template <class Rep, class Period>
  void wait(std::chrono::duration<Rep, Period> timeout) const {
    (void)f_.wait(timeout);
  }
  bool ready() const { return f_.done(); }
  // ValueError("<AsyncResult ...> not ready") before ready().
  bool successful() const {
    if (!f_.done()) throw ValueError(repr() + " not ready");
    return !f_.cancelled() && f_.exception() == nullptr;
  }
  std::string repr() const;
  // The Future underneath (as_completed/wait interoperate with it).
  const futures::Future<R>& future() const noexcept { return f_; }

 private:
  futures::Future<R> f_;
};

template <class R>
std::string AsyncResult<R>::repr() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "<AsyncResult at %p>", static_cast<const void*>(f_.state_base()));
  return buf;
}

}  // namespace concur::multiprocessing

namespace concur::detail {


template <class R, class CB>
void attach_callbacks(const futures::Future<R>& f, CB cbs) {
  if constexpr (std::is_same_v<decltype(cbs.callback), std::nullptr_t> &&
                std::is_same_v<decltype(cbs.error_callback), std::nullptr_t>) {
    return;
  } else {
    f.add_done_callback([cbs = std::move(cbs)](futures::Future<R>& done) mutable {
      if (done.cancelled()) return;
      std::exception_ptr e = done.exception();
      if (e) {
        if constexpr (!std::is_same_v<decltype(cbs.error_callback), std::nullptr_t>)
          cbs.error_callback(e);
      } else if constexpr (!std::is_same_v<decltype(cbs.callback), std::nullptr_t>) {
        if constexpr (std::is_void_v<R>)
          cbs.callback();
        else
          cbs.callback(done.result());
      }
    });
  }
}

// Results in completion order (imap_unordered).
template <class F, class Item>
class UnorderedSource {
  using Fn = std::decay_t<F>;
  using R = detail::call_result_t<Fn, Item>;
  using Chunk = std::vector<wp::Stored<R>>;
  struct Ready {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<futures::Future<Chunk>> done;
  };

 public:
  using value_type = wp::Stored<R>;

  template <class View>
  UnorderedSource(wp::Engine& e, const char* after, Fn fn, View&& view, std::size_t chunksize)
      : ready_(std::make_shared<Ready>()) {
    if (chunksize < 1) throw ValueError("Chunksize must be 1+, not 0");
    std::vector<std::unique_ptr<wp::Job>> jobs;
    std::vector<futures::Future<Chunk>> futs;
    std::vector<Item> items;
    auto it = std::ranges::begin(view);
    while (it != std::ranges::end(view)) {
      items.clear();
      for (std::size_t i = 0; i < chunksize && it != std::ranges::end(view); ++i, ++it)
        items.push_back(Item(*it));
      futs.push_back(detail::chunk_job<R, Fn, Item>(fn, items, jobs));
    }
    if (!jobs.empty()) e.submit_many(jobs, after);
    left_ = futs.size();
    for (auto& f : futs) {
      std::weak_ptr<Ready> w = ready_;
      f.add_done_callback([w](futures::Future<Chunk>& d) {
        if (auto r = w.lock()) {
          std::lock_guard g(r->mu);
          r->done.push_back(d);
          r->cv.notify_one();
        }
      });
    }
  }

  value_type* next() {
    while (pos_ >= current_.size()) {
      current_.clear();
      pos_ = 0;
      if (left_ == 0) return nullptr;
      futures::Future<Chunk> f;
      {
        std::unique_lock g(ready_->mu);
        ready_->cv.wait(g, [&] { return !ready_->done.empty(); });
        f = std::move(ready_->done.front());
        ready_->done.pop_front();
      }
      --left_;
      current_ = f.result();
    }
    return &current_[pos_++];
  }

 private:
  std::shared_ptr<Ready> ready_;
  std::size_t left_ = 0;
  Chunk current_;
  std::size_t pos_ = 0;
};

}  // namespace concur::detail

namespace concur::multiprocessing {

class Pool {
 public:
  // processes == 0 -> ValueError("Number of processes must be at least 1").
  explicit Pool(unsigned processes = cpu_count(), PoolOptions options = {});
  explicit Pool(PoolOptions options);
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  ~Pool();  // terminate()

  // fn(args...) in a worker; blocks for the result.
  template <class F, class... A>
  requires(!is_callbacks<std::decay_t<F>>::value) auto apply(F&& fn, A&&... args) {
    return apply_async(std::forward<F>(fn), std::forward<A>(args)...).get();
  }

  template <class F, class... A>
  requires(!is_callbacks<std::decay_t<F>>::value) auto apply_async(F&& fn, A&&... args) {
    return apply_async(Callbacks<>{}, std::forward<F>(fn), std::forward<A>(args)...);
  }
  template <class CR, class CE, class F, class... A>
  auto apply_async(Callbacks<CR, CE> cbs, F&& fn, A&&... args) {
    auto f = guarded([&] {
      return detail::engine_submit(engine_, kNotRunning, std::forward<F>(fn),
                                            std::forward<A>(args)...);
    });
    detail::attach_callbacks(f, std::move(cbs));
    return AsyncResult<typename decltype(f)::value_type>(std::move(f));
  }

  // fn over every item; the results in order. chunksize 0: Python's default,
  // ceil(len / (4 * processes)).
  template <class F, std::ranges::input_range R>
  auto map(F fn, const R& items, std::size_t chunksize = 0) {
    return map_async(std::move(fn), items, chunksize).get();
  }
  template <class F, std::ranges::input_range R>
  auto map_async(F fn, const R& items, std::size_t chunksize = 0) {
    return map_async(Callbacks<>{}, std::move(fn), items, chunksize);
  }
  template <class CR, class CE, class F, std::ranges::input_range R>
  auto map_async(Callbacks<CR, CE> cbs, F fn, const R& items, std::size_t chunksize = 0) {
    using Item = std::remove_cvref_t<std::ranges::range_value_t<R>>;
    using Ret = detail::call_result_t<std::decay_t<F>, Item>;
    using Out = std::vector<concur::detail::wp::Stored<Ret>>;
    std::vector<Item> all(std::ranges::begin(items), std::ranges::end(items));
    const std::size_t cs = chunksize != 0 ? chunksize : default_chunksize(all.size());
    std::vector<std::unique_ptr<concur::detail::wp::Job>> jobs;
    std::vector<futures::Future<Out>> parts;
    std::vector<Item> chunk;
    for (std::size_t i = 0; i < all.size(); i += cs) {
      chunk.assign(all.begin() + static_cast<std::ptrdiff_t>(i),
                   all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), i + cs)));
      parts.push_back(detail::chunk_job<Ret, std::decay_t<F>, Item>(fn, chunk, jobs));
    }
    guarded([&] {
      if (!jobs.empty()) engine_.submit_many(jobs, kNotRunning);
      return 0;
    });
    futures::Future<Out> whole = gather(std::move(parts));
    detail::attach_callbacks(whole, std::move(cbs));
    return AsyncResult<Out>(std::move(whole));
  }

  // fn(elements of each tuple) for every tuple of items.
  template <class F, std::ranges::input_range R>
  auto starmap(F fn, const R& items, std::size_t chunksize = 0) {
    return map(detail::StarFn<std::decay_t<F>>{std::move(fn)}, items, chunksize);
  }
  template <class F, std::ranges::input_range R>
  auto starmap_async(F fn, const R& items, std::size_t chunksize = 0) {
    return map_async(detail::StarFn<std::decay_t<F>>{std::move(fn)}, items, chunksize);
  }

  // Lazy ranges of results: in order (imap) or as they finish (imap_unordered). Every
  // chunk is submitted by the call (as Python's task handler does). The range refers to
  // the pool, which must outlive it.
  template <class F, std::ranges::input_range R>
  auto imap(F fn, R&& items, std::size_t chunksize = 1) {
    using View = std::views::all_t<R>;
    using Src = detail::ChunkMapSource<F, View>;
    if (chunksize < 1) throw ValueError("Chunksize must be 1+, not 0");
    return guarded([&] {
      return detail::ResultRange<Src>(engine_, kNotRunning, std::move(fn),
                                               std::views::all(std::forward<R>(items)), chunksize,
                                               std::size_t{0}, std::nullopt);
    });
  }
  template <class F, std::ranges::input_range R>
  auto imap_unordered(F fn, R&& items, std::size_t chunksize = 1) {
    using Item = std::remove_cvref_t<std::ranges::range_value_t<R>>;
    using Src = detail::UnorderedSource<F, Item>;
    return guarded([&] {
      return detail::ResultRange<Src>(engine_, kNotRunning, std::move(fn), items,
                                               chunksize);
    });
  }

  void close();
  void terminate();
  void join();

  unsigned processes() const noexcept;
  std::vector<int> worker_pids() const;

 private:
  static constexpr const char* kNotRunning = "Pool not running";
  std::size_t default_chunksize(std::size_t n) const;
  // Runs fn, turning the engine's "after shutdown" RuntimeError into Python's ValueError.
  template <class Fn>
  auto guarded(Fn&& fn) {
    try {
      return fn();
    } catch (const futures::BrokenExecutor&) {
      throw;
    } catch (const RuntimeError& e) {
      throw ValueError(e.what());
    }
  }
  // One future for the concatenation of the chunks' results.
  template <class T>
  static futures::Future<std::vector<T>> gather(std::vector<futures::Future<std::vector<T>>> parts);

  enum class State { run, close, terminate };
  mutable std::mutex mu_;
  State state_ = State::run;
  concur::detail::wp::Engine engine_;
};

template <class T>
futures::Future<std::vector<T>> Pool::gather(std::vector<futures::Future<std::vector<T>>> parts) {
  futures::Future<std::vector<T>> whole;
  if (parts.empty()) {
    (void)whole.set_running_or_notify_cancel();
    whole.set_result(std::vector<T>{});
    return whole;
  }
  struct Shared {
    std::mutex mu;
    std::size_t left;
    std::vector<futures::Future<std::vector<T>>> parts;
    futures::Future<std::vector<T>> whole;
  };
  auto s = std::make_shared<Shared>();
  s->left = parts.size();
  s->parts = parts;
  s->whole = whole;
  (void)whole.set_running_or_notify_cancel();
  for (auto& p : parts)
    p.add_done_callback([s](futures::Future<std::vector<T>>&) {
      {
        std::lock_guard g(s->mu);
        if (--s->left != 0) return;
      }
      std::vector<T> out;
      try {
        for (auto& q : s->parts) {
          std::vector<T> v = q.result();
          out.insert(out.end(), std::make_move_iterator(v.begin()),
                     std::make_move_iterator(v.end()));
        }
        s->whole.set_result(std::move(out));
      } catch (...) {
        try {
          s->whole.set_exception(std::current_exception());
        } catch (...) {
        }
      }
      s->parts.clear();
    });
  return whole;
}

}  // namespace concur::multiprocessing
