// concur/futures/mpi.hpp — MpiPoolExecutor: the same submit/map/Future across the ranks of an
// Open MPI job (mpi4py.futures' MPIPoolExecutor and MPICommExecutor). Target concur::mpi
// (library concur_mpi), built only when MPI is found; the core library has no MPI dependency.
//
// Launch (mpi4py's `-m mpi4py.futures`): every rank runs the same program,
//   int main(int argc, char** argv) { return concur::futures::mpi::main(argc, argv, user_main); }
// Rank 0 runs user_main(argc, argv); every other rank serves tasks until user_main returns.
// Inside user_main, MpiPoolExecutor ex; submits to the other ranks of MPI_COMM_WORLD. Or,
// over an existing communicator (mpi4py's MPICommExecutor), on every rank of it:
//   concur::futures::MpiCommExecutor mce(comm, /*root=*/0);
//   if (auto* ex = mce.executor()) { ... }   // root only; the others served inside the ctor
//
// Callables are named: the same binary runs on every rank but addresses differ, so only
// functions registered with CONCUR_REMOTE(fn) (at namespace scope, static-init time) can be
// submitted. A lambda or function object is a compile-time error; an unregistered function
// is a ValueError from submit()/map(). A rank never runs anything it received other than a
// registered function, looked up by name; arguments, results and exceptions travel through
// the codec (concur/detail/codec.hpp, detail/exception_transport.hpp).
//
// Semantics: Python's executor. submit(fn, args...) -> Future<R> (the futures module's
// Future, so futures::wait/as_completed work); map(fn, items, {.timeout, .chunksize,
// .buffersize}) sends chunks of `chunksize` items as one message each and yields results in
// input order; shutdown(wait, cancel_futures); the destructor is shutdown(true). A task
// counts as running once it is sent to a rank (at most max_inflight_per_worker per rank), so
// cancel() succeeds only while it waits on rank 0. Futures complete on rank 0's
// communication thread, or on a thread of rank 0 that waits on one of them: such a thread
// (result(), exception(), wait() of a Future) polls MPI for replies itself for up to
// MpiOptions::wait_poll before it sleeps, and a submit sends its task itself when no other
// thread is making progress, so a lone submit(f).result() crosses no thread hand-off.
// Done-callbacks run on whichever of those threads completes the future.
//
// Ranks that go away: a worker rank whose process exits (exit(), return from main) while
// serving tells rank 0 first; rank 0 fails that rank's in-flight tasks with BrokenExecutor
// and keeps serving with the others (BrokenExecutor for everything once none is left). A
// rank killed by a signal, or one exiting with a non-zero status, makes Open MPI abort the
// whole job (its default fault model, MPI_ERRORS_ARE_FATAL; Open MPI 4.1 without ULFM cannot
// recover a communicator with a dead member), so no future sees it: the job ends.
//
// Idle ranks: a waiting rank (a worker between tasks, rank 0's communication thread while
// tasks are out) probes for messages without pause for MpiOptions::idle_spin after its last
// message, then sleeps between probes, doubling from 1 us to max_backoff (1 ms by default,
// as mpi4py's backoff). An idle job therefore costs ~0 CPU instead of one core per rank
// (what Open MPI's own blocking receive costs: it busy-polls); max_backoff = 0 busy-polls.
// Thread-safety: submit/map/shutdown may be called from any thread of rank 0.
#pragma once

#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "concur/detail/codec.hpp"
#include "concur/detail/deadline.hpp"
#include "concur/errors.hpp"
#include "concur/futures/future.hpp"

namespace concur::futures {

// How ranks wait (see the banner) and how many tasks a rank holds at once.
struct MpiOptions {
  // Probe without pause this long after the last message...
  std::chrono::nanoseconds idle_spin = std::chrono::microseconds(200);
  // ...then sleep between probes, doubling from 1 us up to this. 0: never sleep.
  std::chrono::nanoseconds max_backoff = std::chrono::milliseconds(1);
  // Tasks sent to one rank before its first result is back (>= 1): 2 hides the round trip.
  int max_inflight_per_worker = 2;
  // A thread waiting on a future of this executor polls for replies itself this long (the
  // communication thread stands aside meanwhile), then sleeps. It costs the waiter's CPU
  // for up to this long per wait; 0: waiters sleep at once and the communication thread
  // completes every future (one thread hand-off more per task).
  std::chrono::nanoseconds wait_poll = std::chrono::milliseconds(1);
};

namespace mpi::detail {

namespace codec = concur::detail::codec;

// Runs a registered function on encoded arguments, appending its encoded result to out.
using Invoker = void (*)(std::span<const std::byte> args, std::vector<std::byte>& out);
using FnAddress = void (*)();

struct Entry {
  std::string name;
  FnAddress address;
  Invoker call;   // args: tuple<params...>; result: R (std::monostate for void)
  Invoker chunk;  // args: vector<tuple<params...>>; result: vector<R>
};

// The registry (filled at static-init time by CONCUR_REMOTE). register_function never
// throws: a second name for the same address is an alias, a name given to two addresses
// makes both lookups of that name fail with a message saying so.
bool register_function(const char* name, FnAddress address, Invoker call, Invoker chunk) noexcept;
// nullptr if not registered.
const Entry* find_by_address(FnAddress address) noexcept;
// ValueError if not registered (or registered for two functions).
const Entry& find_by_name(std::string_view name);

template <class F>
struct fn_traits {
  static constexpr bool ok = false;
};
template <class R, class... A>
struct fn_traits<R (*)(A...)> {
  static constexpr bool ok = true;
  using Ret = std::conditional_t<std::is_void_v<R>, void, std::remove_cvref_t<R>>;
  using Stored = std::conditional_t<std::is_void_v<R>, std::monostate, std::remove_cvref_t<R>>;
  using Params = std::tuple<A...>;
  using Args = std::tuple<std::remove_cvref_t<A>...>;
};
template <class R, class... A>
struct fn_traits<R (*)(A...) noexcept> : fn_traits<R (*)(A...)> {};

// The I-th decoded argument as fn's I-th parameter takes it: lvalue-reference parameters
// get the decoded value itself, by-value and rvalue-reference ones get it moved.
template <class T, std::size_t I>
using Passed =
    std::conditional_t<std::is_lvalue_reference_v<std::tuple_element_t<I, typename T::Params>>,
                       std::tuple_element_t<I, typename T::Args>&,
                       std::tuple_element_t<I, typename T::Args>&&>;

template <auto Fn, std::size_t... I>
typename fn_traits<decltype(Fn)>::Stored apply_decoded(typename fn_traits<decltype(Fn)>::Args& a,
                                                       std::index_sequence<I...>) {
  using T = fn_traits<decltype(Fn)>;
  if constexpr (std::is_void_v<typename T::Ret>) {
    Fn(static_cast<Passed<T, I>>(std::get<I>(a))...);
    return {};
  } else {
    return Fn(static_cast<Passed<T, I>>(std::get<I>(a))...);
  }
}

template <auto Fn>
void invoke_one(std::span<const std::byte> in, std::vector<std::byte>& out) {
  using T = fn_traits<decltype(Fn)>;
  auto args = codec::decode<typename T::Args>(in);
  codec::encode(
      apply_decoded<Fn>(args, std::make_index_sequence<std::tuple_size_v<typename T::Args>>{}),
      out);
}

template <auto Fn>
void invoke_chunk(std::span<const std::byte> in, std::vector<std::byte>& out) {
  using T = fn_traits<decltype(Fn)>;
  auto items = codec::decode<std::vector<typename T::Args>>(in);
  std::vector<typename T::Stored> results;
  results.reserve(items.size());
  for (auto& a : items)
    results.push_back(
        apply_decoded<Fn>(a, std::make_index_sequence<std::tuple_size_v<typename T::Args>>{}));
  codec::encode(results, out);
}

template <auto Fn>
bool registrar(const char* name) noexcept {
  using P = decltype(Fn);
  static_assert(std::is_pointer_v<P> && std::is_function_v<std::remove_pointer_t<P>>,
                "CONCUR_REMOTE(fn) takes the name of a function (not a lambda, a function "
                "object or a member function): other ranks find it by that name");
  using T = fn_traits<P>;
  static_assert(codec::Sendable<typename T::Args>,
                "CONCUR_REMOTE(fn): every parameter type must be Sendable (see codec.hpp)");
  static_assert(codec::Sendable<typename T::Stored>,
                "CONCUR_REMOTE(fn): the return type must be Sendable (see codec.hpp)");
  return register_function(name, reinterpret_cast<FnAddress>(Fn), &invoke_one<Fn>,
                           &invoke_chunk<Fn>);
}

// Decodes a result message and completes the future with it (DecodeError/TypeError: the
// caller fails the future with that instead).
using Completer = void (*)(concur::detail::StateBase* state, std::span<const std::byte> result);

template <class Stored>
void complete(concur::detail::StateBase* s, std::span<const std::byte> result) {
  auto* st = static_cast<concur::detail::TypedState<Stored>*>(s);
  st->set_value(codec::decode<Stored>(result));
}
template <>
inline void complete<void>(concur::detail::StateBase* s, std::span<const std::byte> result) {
  (void)codec::decode<std::monostate>(result);
  static_cast<concur::detail::TypedState<void>*>(s)->set_value();
}

// One task waiting on rank 0: the function's registry entry, its encoded arguments and a
// reference to its future's state.
struct Call {
  const Entry* fn = nullptr;
  bool chunk = false;
  std::vector<std::byte> args;
  concur::detail::StateBase* state = nullptr;  // one reference, owned
  Completer complete = nullptr;
};

class Session;
class Engine;

template <class F>
const Entry& entry_for(F fn) {
  const Entry* e = find_by_address(reinterpret_cast<FnAddress>(fn));
  if (!e)
    throw ValueError(
        "MpiPoolExecutor: the function is not registered; only functions named with "
        "CONCUR_REMOTE(fn) run on other ranks");
  return *e;
}

template <class F>
constexpr void check_callable() {
  static_assert(std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>,
                "MpiPoolExecutor runs only named functions registered with CONCUR_REMOTE(fn), "
                "not lambdas or function objects: other ranks find a function by its name");
}

}  // namespace mpi::detail

class MpiPoolExecutor;

namespace mpi::detail {
template <class Fp, class View>
class MapSource;
}

class MpiPoolExecutor {
 public:
  // Over the ranks of concur::futures::mpi::main's job (all but rank 0, or the first
  // max_workers of them). RuntimeError outside mpi::main's user_main (or not on rank 0);
  // ValueError if max_workers <= 0 or the job has no other rank. One executor at a time
  // per communicator (RuntimeError otherwise); a previous one shut down without waiting is
  // waited for.
  explicit MpiPoolExecutor(std::optional<int> max_workers = std::nullopt, MpiOptions options = {});
  explicit MpiPoolExecutor(MpiOptions options) : MpiPoolExecutor(std::nullopt, options) {}
  MpiPoolExecutor(const MpiPoolExecutor&) = delete;
  MpiPoolExecutor& operator=(const MpiPoolExecutor&) = delete;
  ~MpiPoolExecutor();

  // Schedules fn(args...) on some rank; fn must be registered with CONCUR_REMOTE. The
  // arguments are converted to fn's parameter types and encoded now. RuntimeError after
  // shutdown; BrokenExecutor once no rank is left; ValueError for an unregistered fn.
  template <class F, class... A>
  [[nodiscard]] auto submit(F&& fn, A&&... args) {
    using Fp = std::decay_t<F>;
    mpi::detail::check_callable<Fp>();
    using T = mpi::detail::fn_traits<Fp>;
    static_assert(std::is_invocable_v<Fp, A&&...>,
                  "submit: fn cannot be called with these arguments");
    using R = typename T::Ret;
    const auto& entry = mpi::detail::entry_for(static_cast<Fp>(fn));
    typename T::Args tuple(std::forward<A>(args)...);
    mpi::detail::Call c;
    c.fn = &entry;
    mpi::detail::codec::encode(tuple, c.args);
    Future<R> fut;
    c.complete = &mpi::detail::complete<R>;
    return push_call(std::move(c), std::move(fut));
  }

  // fn over every item (one argument each), results in input order; every `chunksize`
  // consecutive items travel as one message and run on one rank. Without buffersize every
  // chunk is submitted by the call; with buffersize = n, n chunks are in flight at most.
  // Destroying the range after iterating began cancels the chunks not yet sent.
  template <class F, std::ranges::input_range R>
  [[nodiscard]] auto map(F fn, R&& items, MapOptions options = {}) {
    using Fp = std::decay_t<F>;
    mpi::detail::check_callable<Fp>();
    using View = std::views::all_t<R>;
    return detail::ResultRange<mpi::detail::MapSource<Fp, View>>(
        *this, static_cast<Fp>(fn), std::views::all(std::forward<R>(items)), options);
  }

  // Stops accepting work. cancel_futures: cancels every task not yet sent. wait: blocks
  // until every sent (and, without cancel_futures, queued) task has finished. Idempotent.
  void shutdown(bool wait = true, bool cancel_futures = false);

  // Ranks serving this executor.
  int max_workers() const noexcept;

 private:
  friend class MpiCommExecutor;
  template <class Fp, class View>
  friend class mpi::detail::MapSource;
  MpiPoolExecutor(std::shared_ptr<mpi::detail::Session> session, std::optional<int> max_workers,
                  MpiOptions options);

  template <class R>
  Future<R> push_call(mpi::detail::Call c, Future<R> fut) {
    c.state = fut.state_base();
    c.state->add_ref();
    push(std::move(c));  // releases the reference itself if it throws
    return fut;
  }
  void push(mpi::detail::Call c);

  std::shared_ptr<mpi::detail::Engine> engine_;
};

// mpi4py's MPICommExecutor: collective over `comm` (every rank of it constructs one). On
// `root`, executor() is an MpiPoolExecutor over the other ranks; on the others the
// constructor serves tasks until the root's MpiCommExecutor is destroyed, then executor()
// is nullptr. MPI must be initialized with at least MPI_THREAD_SERIALIZED (RuntimeError).
// The traffic goes over a duplicate of comm, so the caller's own messages on comm are not
// disturbed.
class MpiCommExecutor {
 public:
  explicit MpiCommExecutor(MPI_Comm comm = MPI_COMM_WORLD, int root = 0, MpiOptions options = {});
  MpiCommExecutor(const MpiCommExecutor&) = delete;
  MpiCommExecutor& operator=(const MpiCommExecutor&) = delete;
  // Root: shutdown(true), then releases the other ranks. Every rank frees the duplicate.
  ~MpiCommExecutor();
  MpiPoolExecutor* executor() noexcept { return executor_.get(); }

 private:
  std::shared_ptr<mpi::detail::Session> session_;
  std::unique_ptr<MpiPoolExecutor> executor_;
};

namespace mpi {

// The program's main on every rank: initializes MPI (MPI_THREAD_MULTIPLE requested, at least
// SERIALIZED required), runs user_main(argc, argv) on rank 0 while the others serve tasks,
// releases them when it returns, finalizes MPI. Returns user_main's value on rank 0 (1 if it
// threw: the exception is printed to stderr), 0 elsewhere.
int main(int argc, char** argv, const std::function<int(int, char**)>& user_main,
         MpiOptions options = {});

// This process's rank in MPI_COMM_WORLD and the job's size (after MPI_Init).
int rank();
int size();

namespace detail {

// map()'s source: chunks of items submitted as one message each, results flattened.
template <class Fp, class View>
class MapSource {
  using T = fn_traits<Fp>;
  using Stored = typename T::Stored;
  using Item = std::ranges::range_value_t<View>;
  using Chunk = std::vector<typename T::Args>;

 public:
  using value_type = Stored;

  MapSource(MpiPoolExecutor& ex, Fp fn, View view, const MapOptions& opts)
      : ex_(&ex),
        entry_(&entry_for(fn)),
        view_(std::move(view)),
        it_(std::ranges::begin(view_)),
        chunksize_(opts.chunksize),
        buffersize_(opts.buffersize.value_or(0)) {
    static_assert(std::is_invocable_v<Fp, Item>, "map: fn cannot be called with an item");
    if (chunksize_ < 1) throw ValueError("chunksize must be >= 1.");
    if (opts.buffersize && *opts.buffersize == 0)
      throw ValueError("buffersize must be None or > 0");
    if (opts.timeout) deadline_ = concur::detail::Deadline::after(*opts.timeout).time_point();
    try {
      while ((buffersize_ == 0 || window_.size() < buffersize_) && submit_next()) {
      }
    } catch (...) {
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
    if (pos_ < current_.size()) return &current_[pos_++];
    current_.clear();
    pos_ = 0;
    if (window_.empty()) {
      if (failed_submit_) std::rethrow_exception(std::exchange(failed_submit_, nullptr));
      return nullptr;
    }
    if (buffersize_ != 0 && !failed_submit_) {
      try {
        (void)submit_next();
      } catch (...) {
        failed_submit_ = std::current_exception();
      }
    }
    Future<std::vector<Stored>>& front = window_.front();
    if (deadline_) {
      if (!front.state_base()->wait(&*deadline_))
        throw TimeoutError("map() result not available within the timeout");
    }
    Future<std::vector<Stored>> f = std::move(front);
    window_.pop_front();
    current_ = f.result();
    if (current_.empty()) return next();
    return &current_[pos_++];
  }

 private:
  bool submit_next() {
    if (it_ == std::ranges::end(view_)) return false;
    Chunk chunk;
    while (chunk.size() < chunksize_ && it_ != std::ranges::end(view_)) {
      chunk.emplace_back(Item(*it_));
      ++it_;
    }
    Call c;
    c.fn = entry_;
    c.chunk = true;
    codec::encode(chunk, c.args);
    c.complete = &complete<std::vector<Stored>>;
    window_.push_back(ex_->push_call(std::move(c), Future<std::vector<Stored>>()));
    return true;
  }

  MpiPoolExecutor* ex_;
  const Entry* entry_;
  View view_;
  std::ranges::iterator_t<View> it_;
  std::size_t chunksize_;
  std::size_t buffersize_;
  std::deque<Future<std::vector<Stored>>> window_;
  std::optional<concur::detail::Clock::time_point> deadline_;
  std::vector<Stored> current_;
  std::size_t pos_ = 0;
  std::exception_ptr failed_submit_;
  bool begun_ = false;
};

}  // namespace detail
}  // namespace mpi
}  // namespace concur::futures

#define CONCUR_REMOTE_CAT2(a, b) a##b
#define CONCUR_REMOTE_CAT(a, b) CONCUR_REMOTE_CAT2(a, b)
// Registers the function `fn` (at namespace scope, any namespace) under the name spelled
// here, so that MpiPoolExecutor can run it on other ranks. Spell it the same way wherever it
// is registered (registering it in several translation units is fine).
#define CONCUR_REMOTE(fn)                                                                        \
  [[maybe_unused]] static const bool CONCUR_REMOTE_CAT(concur_remote_registered_, __COUNTER__) = \
      ::concur::futures::mpi::detail::registrar<&fn>(#fn)
