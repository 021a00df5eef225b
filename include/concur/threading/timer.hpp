// concur/threading/timer.hpp — Python's threading.Timer: a Thread that calls a function
// after an interval unless cancel() came first.
//
// The interval is measured from the moment the thread runs (as Python does), on the steady
// clock. cancel() is a futex event: the waiting thread wakes at once and ends without
// calling the function. A Timer is target style: destroying a started Timer object does not
// cancel it (the thread goes on, as in Python); call cancel() (and join()) first if the
// function must not run.
//
// Thread-safety: cancel() may be called from any thread, any number of times, before or
// after start().
#pragma once

#include <chrono>
#include <memory>
#include <utility>

#include "concur/detail/deadline.hpp"
#include "concur/detail/futex.hpp"
#include "concur/threading/thread.hpp"

namespace concur::threading {

class Timer final : public Thread {
 public:
  // Calls fn(args...) (decay-copied) `interval` after start(), unless cancelled.
  template <class Rep, class Period, class F, class... A>
  Timer(std::chrono::duration<Rep, Period> interval, F&& fn, A&&... args)
      : Timer(ThreadOptions{}, interval, std::forward<F>(fn), std::forward<A>(args)...) {}
  // Same, with a name / daemon flag.
  template <class Rep, class Period, class F, class... A>
  Timer(ThreadOptions options, std::chrono::duration<Rep, Period> interval, F&& fn, A&&... args)
      : Timer(std::move(options), std::make_shared<Finished>(),
              concur::detail::saturating_ns(interval),
              detail::make_target(std::forward<F>(fn), std::forward<A>(args)...)) {}

  // Stops the timer if it has not fired yet (the function will not run). Never blocks,
  // never throws.
  void cancel() noexcept { finished_->set(); }
  // True once cancelled or once the function has been called.
  bool finished() const noexcept { return finished_->is_set(); }

 private:
  using Finished = concur::detail::BasicEvent<concur::detail::Scope::Private>;
  struct Fire final : detail::TargetBase {
    Fire(std::shared_ptr<Finished> f, std::chrono::nanoseconds i,
         std::unique_ptr<detail::TargetBase> t)
        : finished(std::move(f)), interval(i), target(std::move(t)) {}
    void call() override {
      struct SetOnExit {  // Python's try/finally: finished is set even if the call throws
        Finished& f;
        ~SetOnExit() { f.set(); }
      } guard{*finished};
      if (!finished->wait(concur::detail::Deadline::after(interval).get())) target->call();
    }
    std::shared_ptr<Finished> finished;
    std::chrono::nanoseconds interval;
    std::unique_ptr<detail::TargetBase> target;
  };
  Timer(ThreadOptions options, std::shared_ptr<Finished> f, std::chrono::nanoseconds interval,
        std::unique_ptr<detail::TargetBase> target)
      : Thread(std::move(options),
               std::unique_ptr<detail::TargetBase>(
                   std::make_unique<Fire>(f, interval, std::move(target)))),
        finished_(std::move(f)) {}

  std::shared_ptr<Finished> finished_;
};

}  // namespace concur::threading
