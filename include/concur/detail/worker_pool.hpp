// concur/detail/worker_pool.hpp — the one worker engine behind futures::ProcessPoolExecutor
// and multiprocessing::Pool.
//
// Processes: when an Engine is built it forks a small single-threaded "zygote" (fork
// server) that closes every inherited descriptor but its command socket and stdio. Workers
// are forked from the zygote, never from the (possibly busy, multi-threaded) parent, so a
// worker never inherits a lock some other parent thread held. Each worker talks to the
// parent over one SOCK_STREAM socketpair: tasks one way, results the other. The zygote
// watches its workers' pidfds, reaps them and reports each exit status to the parent.
// Consequence: a worker sees the parent's memory as it was when the pool was built (the
// code, globals, the initializer), plus what each task carries.
//
// Callables: a task is the address of a trampoline instantiated for <Fn, Args...> (the same
// address in every fork child of this image) followed by the encoded callable and the
// codec-encoded arguments. A callable travels as its bytes when it is trivially copyable
// (function pointers, lambdas with trivially copyable captures), else through the codec (a
// functor with a cereal-style serialize); anything else is a static_assert. Results travel
// through the codec; exceptions through detail/exception_transport.hpp.
//
// Frames (native byte order, both ends are the same image):
//   task   := len:u32 tramp:u64 payload         (len counts tramp + payload)
//   result := len:u32 status:u8 payload         (status 0: value, 1: ExceptionInfo,
//                                                2: the initializer failed, ExceptionInfo,
//                                                3: skipped, empty: see "Cancelling")
// Results come back in the order the worker received its tasks. Many frames travel in one
// write in both directions (the parent writes every task it can dispatch at once; a worker
// flushes its results when no further task is readable).
//
// Dispatch is least-loaded: a task goes to the worker with the fewest outstanding tasks, so
// tasks are written ahead (up to 512 per worker) only while every worker has work.
//
// Each worker has one 64-bit word in a shared anonymous mapping: low 32 bits, how many of
// the tasks it received it has taken (started or skipped), high 32 bits, how many of the
// next ones to skip. The worker takes each task with one compare-and-swap on that word; the
// parent sets the skip count with one too, so both agree on which tasks never started.
// Cancelling: shutdown(cancel_futures) makes each worker skip the tasks written to it and not
// yet taken (answered with status 3) and cancels their futures, as Python cancels every
// future that is not running.
//
// Self-healing: each worker publishes (the word above) how many of its tasks
// it has started, and mirrors the result frames it has not written yet into a shared batch
// area of its slot (64 KiB; a larger batch is written at once). When a worker dies, the
// parent reads what its socket still holds, then the mirrored frames past those: tasks
// the worker finished keep their results. The task it was running (started, no result)
// fails with BrokenProcessPool naming the signal or exit code; the tasks it had received but not
// started go back to the front of the queue; a replacement worker is forked. Everything is
// reaped (the zygote reaps workers, the parent reaps the zygote).
//
// Submit fast path: the manager thread owns the workers' state under one mutex it holds
// except while it sleeps in poll(); a submit (from another thread) that finds that mutex free
// and a worker idle writes the task to that worker itself, one hand-off less than going
// through the manager (one submit().result() went from 2.6x a socket round trip to 1.2-1.7x
// in one loaded sitting). A stream of submits (no worker idle) is batched by the manager.
//
// Thread-safety: submit/shutdown/terminate may be called from any thread. Job callbacks run
// on the engine's manager thread (or, for start(), on a submitting thread).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "concur/detail/codec.hpp"
#include "concur/detail/exception_transport.hpp"
#include "concur/errors.hpp"

namespace concur::detail::wp {

// Runs one task in a worker: decodes the callable and arguments from `in`, calls it, appends
// the encoded result (status 0) or ExceptionInfo (status 1) to `out`; returns the status.
using Trampoline = std::uint8_t (*)(const std::byte* in, std::size_t n,
                                    std::vector<std::byte>& out);

// ---- how a callable travels ----
template <class>
inline constexpr bool dependent_false_v = false;

template <class Fn>
inline constexpr bool callable_sendable_v = std::is_trivially_copyable_v<Fn> || codec::Sendable<Fn>;

template <class Fn>
constexpr void check_callable() {
  static_assert(callable_sendable_v<Fn>,
                "concur process pool: this callable cannot travel to a worker process: it must "
                "be a function, a function pointer, or a lambda/functor whose captures are "
                "trivially copyable (capture values, not std::string/std::vector/std::function: "
                "pass those as arguments instead), or a functor with a cereal-style serialize.");
}

template <class T>
constexpr void check_argument() {
  static_assert(codec::Sendable<T>,
                "concur process pool: an argument or result cannot travel between processes: "
                "it must be sendable by the codec (see concur/detail/codec.hpp).");
}

// The callable's bytes: raw for trivially copyable callables, else the codec's message.
template <class Fn>
void put_callable(const Fn& f, std::vector<std::byte>& out) {
  if constexpr (std::is_trivially_copyable_v<Fn>) {
    const std::size_t at = out.size();
    out.resize(at + sizeof(Fn));
    std::memcpy(out.data() + at, static_cast<const void*>(std::addressof(f)), sizeof(Fn));
  } else {
    const std::uint64_t n = codec::encoded_size(f);
    const std::size_t at = out.size();
    out.resize(at + 8 + n);
    std::memcpy(out.data() + at, &n, 8);
    codec::encode_to(f, out.data() + at + 8);
  }
}

// Holds the callable decoded in a worker.
template <class Fn>
class CallableBox {
 public:
  // Reads the callable at in[0..n); returns the bytes consumed through `used`.
  CallableBox(const std::byte* in, std::size_t n, std::size_t& used) {
    if constexpr (std::is_trivially_copyable_v<Fn>) {
      if (n < sizeof(Fn)) throw codec::DecodeError("process pool: truncated task");
      std::memcpy(static_cast<void*>(&storage_), in, sizeof(Fn));
      used = sizeof(Fn);
    } else {
      std::uint64_t len = 0;
      if (n < 8) throw codec::DecodeError("process pool: truncated task");
      std::memcpy(&len, in, 8);
      if (len > n - 8) throw codec::DecodeError("process pool: truncated task");
      ::new (static_cast<void*>(&storage_))
          Fn(codec::decode<Fn>(std::span<const std::byte>(in + 8, len)));
      used = 8 + len;
    }
  }
  CallableBox(const CallableBox&) = delete;
  CallableBox& operator=(const CallableBox&) = delete;
  ~CallableBox() { get().~Fn(); }
  Fn& get() noexcept { return *std::launder(reinterpret_cast<Fn*>(&storage_)); }

 private:
  alignas(Fn) std::byte storage_[sizeof(Fn)];
};

void append_exception(std::exception_ptr e, std::vector<std::byte>& out);

template <class T>
void append_value(const T& v, std::vector<std::byte>& out) {
  codec::encode(v, out);
}

template <class R>
using Stored = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

// One call fn(args...).
template <class R, class Fn, class... A>
std::uint8_t call_trampoline(const std::byte* in, std::size_t n, std::vector<std::byte>& out) {
  const std::size_t mark = out.size();
  try {
    std::size_t used = 0;
    CallableBox<Fn> fn(in, n, used);
    auto args = codec::decode<std::tuple<A...>>(std::span<const std::byte>(in + used, n - used));
    if constexpr (std::is_void_v<R>) {
      std::apply([&](A&... a) { std::invoke(fn.get(), std::move(a)...); }, args);
      append_value(std::monostate{}, out);
    } else {
      R r = std::apply([&](A&... a) -> R { return std::invoke(fn.get(), std::move(a)...); }, args);
      append_value(r, out);
    }
    return 0;
  } catch (...) {
    out.resize(mark);
    append_exception(std::current_exception(), out);
    return 1;
  }
}

// A chunk: fn over every item of a vector<Item>, giving vector<R> (a vector of raw items
// or results travels as one memcpy).
template <class R, class Fn, class Item>
std::uint8_t chunk_trampoline(const std::byte* in, std::size_t n, std::vector<std::byte>& out) {
  const std::size_t mark = out.size();
  try {
    std::size_t used = 0;
    CallableBox<Fn> fn(in, n, used);
    auto items = codec::decode<std::vector<Item>>(std::span<const std::byte>(in + used, n - used));
    std::vector<Stored<R>> results;
    results.reserve(items.size());
    for (Item& x : items) {
      if constexpr (std::is_void_v<R>) {
        std::invoke(fn.get(), std::move(x));
        results.emplace_back();
      } else {
        results.push_back(std::invoke(fn.get(), std::move(x)));
      }
    }
    append_value(results, out);
    return 0;
  } catch (...) {
    out.resize(mark);
    append_exception(std::current_exception(), out);
    return 1;
  }
}

// ---- the parent's side of one task ----
class Job {
 public:
  virtual ~Job() = default;
  // Marks the task running; false if it was cancelled meanwhile (then it is dropped).
  virtual bool start() noexcept = 0;
  // Completes with the worker's answer (status 0: a value; 1: an exception).
  virtual void finish(std::uint8_t status, std::span<const std::byte> bytes) noexcept = 0;
  // Completes with an error of the engine (a dead worker, a broken pool).
  virtual void fail(std::exception_ptr e) noexcept = 0;
  // Cancels a queued task (shutdown(cancel_futures)); true if it was cancelled.
  virtual bool cancel() noexcept = 0;
  // Cancels a started task (start() succeeded) that its worker skipped without running it
  // (shutdown(cancel_futures) reached it before the worker did); true if it was cancelled.
  // A job that cannot be withdrawn fails instead (with CancelledError's text).
  virtual bool withdraw() noexcept { return false; }

  Trampoline tramp = nullptr;
  std::vector<std::byte> payload;  // the callable, then the arguments
  bool started = false;            // start() succeeded (a requeued task is not restarted)
  bool withdrawn = false;          // its worker will skip it (shutdown(cancel_futures))
};

// The exception_ptr a status-1 payload carries.
std::exception_ptr decode_exception(std::span<const std::byte> payload) noexcept;

struct EngineOptions {
  std::function<void()> initializer{};
  std::size_t max_tasks_per_child = 0;       // 0: unlimited
  std::string kind = "ProcessPoolExecutor";  // for messages
};

class EngineCore;

class Engine {
 public:
  // Forks the zygote and `workers` workers (> 0). OSError if the OS refuses.
  Engine(int workers, EngineOptions options);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  // shutdown(true, false).
  ~Engine();

  // Queues a job. RuntimeError(after_shutdown) after shutdown; BrokenProcessPool if broken.
  void submit(std::unique_ptr<Job> job, const char* after_shutdown);
  // Queues many jobs under one lock (all or none).
  void submit_many(std::vector<std::unique_ptr<Job>>& jobs, const char* after_shutdown);
  // Stops accepting jobs; cancel_futures cancels the queued ones; wait: until every worker
  // and the zygote have exited and been reaped.
  void shutdown(bool wait, bool cancel_futures);
  // Kills every worker at once: queued jobs are cancelled, running ones fail with
  // BrokenProcessPool("pool terminated"). Waits until everything is reaped.
  void terminate();
  // True once shutdown() or terminate() was called.
  bool closed() const;
  int max_workers() const noexcept;
  // Pids of the workers alive now (tests, diagnostics).
  std::vector<int> worker_pids() const;
  // Workers that died unexpectedly and were replaced so far.
  std::size_t replaced_workers() const;

 private:
  std::shared_ptr<EngineCore> core_;
};

// Builds the job of one call fn(args...) completing `complete` (a Future-like producer).
template <class R, class Fn, class... A>
void encode_call(Job& job, const Fn& fn, const std::tuple<A...>& args) {
  check_callable<Fn>();
  (check_argument<A>(), ...);
  if constexpr (!std::is_void_v<R>) check_argument<R>();
  job.tramp = &call_trampoline<R, Fn, A...>;
  put_callable(fn, job.payload);
  codec::encode(args, job.payload);
}

template <class R, class Fn, class Item>
void encode_chunk(Job& job, const Fn& fn, const std::vector<Item>& items) {
  check_callable<Fn>();
  check_argument<Item>();
  if constexpr (!std::is_void_v<R>) check_argument<R>();
  job.tramp = &chunk_trampoline<R, Fn, Item>;
  put_callable(fn, job.payload);
  codec::encode(items, job.payload);
}

}  // namespace concur::detail::wp
