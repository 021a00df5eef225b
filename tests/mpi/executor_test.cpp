// concur-test: labels=no_tsan
// (no_tsan: exceptions made on rank 0's communication thread and caught on the main thread
// are reported as races when the communication thread drops the last reference: the
// exception_ptr's reference count lives in libstdc++, which ThreadSanitizer does not see, so
// the happens-before its atomic count gives is invisible to it. Every other access is
// clean under TSan; mpi.comm_executor_test runs under it.)
// MpiPoolExecutor over 3 ranks (mpirun -np 3): rank 0 runs these cases, ranks 1 and 2 serve.
// submit, map (chunksize, buffersize, timeout), exceptions (concur, std, unknown user types),
// shutdown/cancel, wait/as_completed, an unregistered function, a large payload, executors
// one after another, and the registry's own rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "concur/errors.hpp"
#include "concur/futures/mpi.hpp"

namespace futures = concur::futures;
using namespace std::chrono_literals;

namespace {
int add(int a, int b) {
  return a + b;
}
std::string greet(const std::string& who) {
  return "hello " + who;
}
std::vector<int> iota_n(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}
std::size_t total_size(std::vector<std::byte> blob) {
  return blob.size();
}
std::vector<std::byte> echo_blob(const std::vector<std::byte>& blob) {
  return blob;
}
int which_rank() {
  return futures::mpi::rank();
}
int slow_rank(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return futures::mpi::rank();
}
void nothing(int) {}
int square(int x) {
  return x * x;
}
int fails_on_seven(int x) {
  if (x == 7) throw concur::ValueError("seven is not allowed");
  return x;
}
int throws_value_error() {
  throw concur::ValueError("bad value 42");
}
int throws_out_of_range() {
  throw std::out_of_range("index 9 out of range");
}
struct MyOwnError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
int throws_unknown() {
  throw MyOwnError("private failure");
}
int throws_int() {
  throw 7;
}
int never_registered(int x) {
  return x;
}
long sum_pair(std::pair<int, long> p) {
  return p.first + p.second;
}
// Registered on rank 0 only, at run time (see MismatchedPeersAreErrorsNotCrashes).
int only_on_rank0(int x) {
  return x;
}
int fake_add(std::string s) {
  return static_cast<int>(s.size());
}
}  // namespace

CONCUR_REMOTE(add);
CONCUR_REMOTE(greet);
CONCUR_REMOTE(iota_n);
CONCUR_REMOTE(total_size);
CONCUR_REMOTE(echo_blob);
CONCUR_REMOTE(which_rank);
CONCUR_REMOTE(slow_rank);
CONCUR_REMOTE(nothing);
CONCUR_REMOTE(square);
CONCUR_REMOTE(fails_on_seven);
CONCUR_REMOTE(throws_value_error);
CONCUR_REMOTE(throws_out_of_range);
CONCUR_REMOTE(throws_unknown);
CONCUR_REMOTE(throws_int);
CONCUR_REMOTE(sum_pair);
// Registered twice (as another translation unit would): an alias, not an error.
CONCUR_REMOTE(add);

TEST(MpiPoolExecutor, SubmitReturnsValuesOfEveryKind) {
  futures::MpiPoolExecutor ex;
  EXPECT_EQ(ex.max_workers(), 2);
  auto a = ex.submit(add, 2, 40);
  auto g = ex.submit(greet, std::string("mpi"));
  auto v = ex.submit(iota_n, 5);
  auto n = ex.submit(nothing, 1);
  auto p = ex.submit(sum_pair, std::pair<int, long>{1, 2});
  EXPECT_EQ(a.result(10s), 42);
  EXPECT_EQ(g.result(10s), "hello mpi");
  EXPECT_EQ(v.result(10s), (std::vector<int>{0, 1, 2, 3, 4}));
  n.result(10s);
  EXPECT_TRUE(n.done());
  EXPECT_EQ(p.result(10s), 3);
  // Arguments are converted to the parameter types (here const char* -> std::string).
  EXPECT_EQ(ex.submit(greet, "you").result(10s), "hello you");
}

TEST(MpiPoolExecutor, TasksRunOnTheOtherRanks) {
  futures::MpiPoolExecutor ex;
  std::vector<futures::Future<int>> fs;
  for (int i = 0; i < 20; ++i) fs.push_back(ex.submit(slow_rank, 5));
  std::set<int> ranks;
  for (auto& f : fs) ranks.insert(f.result(30s));
  EXPECT_EQ(ranks, (std::set<int>{1, 2}));
  // max_workers limits the ranks used.
  ex.shutdown();
  futures::MpiPoolExecutor one(1);
  EXPECT_EQ(one.max_workers(), 1);
  std::set<int> r1;
  for (int i = 0; i < 6; ++i) r1.insert(one.submit(which_rank).result(10s));
  EXPECT_EQ(r1, (std::set<int>{1}));
}

TEST(MpiPoolExecutor, MapInOrderWithAnyChunksize) {
  futures::MpiPoolExecutor ex;
  std::vector<int> in(103);
  std::iota(in.begin(), in.end(), -50);
  std::vector<int> want;
  for (int x : in) want.push_back(x * x);
  for (std::size_t chunk : {1u, 2u, 7u, 103u, 1000u}) {
    std::vector<int> got;
    for (int r : ex.map(square, in, {.chunksize = chunk})) got.push_back(r);
    EXPECT_EQ(got, want) << "chunksize " << chunk;
  }
  // buffersize bounds the chunks in flight; the results are the same.
  auto got = ex.map(square, in, {.chunksize = 3, .buffersize = 2}).to_vector();
  EXPECT_EQ(got, want);
  // An empty input, an rvalue range, a timeout of hours::max (no limit).
  EXPECT_TRUE(ex.map(square, std::vector<int>{}).to_vector().empty());
  auto big = ex.map(square, std::vector<int>{3, 4}, {.timeout = std::chrono::nanoseconds::max()});
  EXPECT_EQ(big.to_vector(), (std::vector<int>{9, 16}));
  EXPECT_THROW((void)ex.map(square, in, {.chunksize = 0}), concur::ValueError);
}

TEST(MpiPoolExecutor, MapRethrowsAtTheFailingItem) {
  futures::MpiPoolExecutor ex;
  std::vector<int> in(12);
  std::iota(in.begin(), in.end(), 0);
  std::vector<int> got;
  auto range = ex.map(fails_on_seven, in, {.chunksize = 1});
  try {
    for (int r : range) got.push_back(r);
    FAIL() << "no exception";
  } catch (const concur::ValueError& e) {
    EXPECT_STREQ(e.what(), "seven is not allowed");
  }
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
  // With chunks, the whole chunk holding 7 fails (Python's _process_chunk).
  got.clear();
  try {
    for (int r : ex.map(fails_on_seven, in, {.chunksize = 4})) got.push_back(r);
    FAIL() << "no exception";
  } catch (const concur::ValueError&) {
  }
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3}));
}

TEST(MpiPoolExecutor, ExceptionsComeBackWithTheirType) {
  futures::MpiPoolExecutor ex;
  try {
    (void)ex.submit(throws_value_error).result(10s);
    FAIL();
  } catch (const concur::ValueError& e) {
    EXPECT_STREQ(e.what(), "bad value 42");
  }
  EXPECT_THROW((void)ex.submit(throws_out_of_range).result(10s), std::out_of_range);
  try {
    (void)ex.submit(throws_unknown).result(10s);
    FAIL();
  } catch (const concur::RemoteError& e) {
    EXPECT_NE(e.type_name().find("MyOwnError"), std::string::npos) << e.type_name();
    EXPECT_NE(std::string(e.what()).find("private failure"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)ex.submit(throws_int).result(10s), concur::RemoteError);
  // The ranks keep serving after a failure.
  EXPECT_EQ(ex.submit(add, 1, 1).result(10s), 2);
}

TEST(MpiPoolExecutor, UnregisteredFunctionIsAValueError) {
  futures::MpiPoolExecutor ex;
  try {
    (void)ex.submit(never_registered, 1);
    FAIL();
  } catch (const concur::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("CONCUR_REMOTE"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)ex.map(never_registered, std::vector<int>{1}), concur::ValueError);
  // A worker looks functions up by name only; an unknown name is refused there too.
  EXPECT_THROW((void)futures::mpi::detail::find_by_name("never_registered"), concur::ValueError);
  EXPECT_EQ(futures::mpi::detail::find_by_name("add").name, "add");
}

// What a rank receives from a peer built differently (or hostile): a name it does not know,
// or arguments of another type under a known name. Each is an error in that task's future
// (the codec refuses the bytes before anything runs); the rank keeps serving.
TEST(MpiPoolExecutor, MismatchedPeersAreErrorsNotCrashes) {
  namespace d = futures::mpi::detail;
  d::register_function("only_on_rank0", reinterpret_cast<d::FnAddress>(&only_on_rank0),
                       &d::invoke_one<&only_on_rank0>, &d::invoke_chunk<&only_on_rank0>);
  // Rank 0 sends fake_add's std::string argument under the name "add" (int, int).
  d::register_function("add", reinterpret_cast<d::FnAddress>(&fake_add), &d::invoke_one<&fake_add>,
                       &d::invoke_chunk<&fake_add>);
  futures::MpiPoolExecutor ex;
  try {
    (void)ex.submit(only_on_rank0, 1).result(10s);
    FAIL();
  } catch (const concur::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("no function named 'only_on_rank0'"), std::string::npos)
        << e.what();
  }
  for (int i = 0; i < 4; ++i)
    EXPECT_THROW((void)ex.submit(fake_add, std::string(100, 'x')).result(10s), concur::Error);
  EXPECT_THROW((void)ex.map(fake_add, std::vector<std::string>{"a", "b"}).to_vector(),
               concur::Error);
  EXPECT_EQ(ex.submit(add, 2, 3).result(10s), 5);
}

TEST(MpiPoolExecutor, WaitAndAsCompleted) {
  futures::MpiPoolExecutor ex;
  std::vector<futures::Future<int>> fs{ex.submit(slow_rank, 300), ex.submit(slow_rank, 1)};
  auto first = futures::wait(fs, 20s, futures::ReturnWhen::FIRST_COMPLETED);
  ASSERT_GE(first.done.size(), 1u);
  auto all = futures::wait(fs, 20s);
  EXPECT_EQ(all.done.size(), 2u);
  EXPECT_TRUE(all.not_done.empty());

  std::vector<futures::Future<int>> gs;
  for (int i = 0; i < 10; ++i) gs.push_back(ex.submit(square, i));
  std::multiset<int> seen;
  for (auto& f : futures::as_completed(gs, 20s)) seen.insert(f.result());
  EXPECT_EQ(seen, (std::multiset<int>{0, 1, 4, 9, 16, 25, 36, 49, 64, 81}));
  // A failed task counts for FIRST_EXCEPTION.
  std::vector<futures::Future<int>> hs{ex.submit(throws_value_error), ex.submit(slow_rank, 2000)};
  auto fe = futures::wait(hs, 20s, futures::ReturnWhen::FIRST_EXCEPTION);
  ASSERT_EQ(fe.done.size(), 1u);
  EXPECT_TRUE(fe.done[0].exception() != nullptr);
}

TEST(MpiPoolExecutor, ShutdownCancelsWhatWasNotSent) {
  futures::MpiPoolExecutor ex;
  std::vector<futures::Future<int>> fs;
  for (int i = 0; i < 30; ++i) fs.push_back(ex.submit(slow_rank, 50));
  // Wait until the first tasks are out (running) so that the test sees both kinds.
  ASSERT_TRUE(fs[0].wait(20s) || fs[0].running());
  ex.shutdown(false, true);
  EXPECT_THROW((void)ex.submit(add, 1, 2), concur::RuntimeError);
  std::size_t cancelled = 0, finished = 0;
  for (auto& f : fs) {
    f.wait();
    if (f.cancelled()) {
      ++cancelled;
      EXPECT_THROW((void)f.result(), futures::CancelledError);
    } else {
      ++finished;
      EXPECT_GE(f.result(), 1);
    }
  }
  EXPECT_GE(finished, 1u);    // what was sent finishes
  EXPECT_GE(cancelled, 20u);  // at most 2 ranks x 2 in flight (+ those done meanwhile) ran
  EXPECT_EQ(cancelled + finished, fs.size());
  ex.shutdown();  // idempotent, waits for nothing more
}

TEST(MpiPoolExecutor, ShutdownWaitRunsEverythingQueued) {
  std::vector<futures::Future<int>> fs;
  {
    futures::MpiPoolExecutor ex;
    for (int i = 0; i < 40; ++i) fs.push_back(ex.submit(square, i));
  }  // the destructor is shutdown(true)
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(fs[static_cast<std::size_t>(i)].done());
    EXPECT_EQ(fs[static_cast<std::size_t>(i)].result(), i * i);
  }
}

TEST(MpiPoolExecutor, CancelAPendingFuture) {
  futures::MpiPoolExecutor ex(1, {.max_inflight_per_worker = 1});
  auto busy = ex.submit(slow_rank, 200);
  auto queued = ex.submit(square, 3);
  EXPECT_TRUE(queued.cancel());
  EXPECT_TRUE(queued.cancelled());
  EXPECT_EQ(busy.result(20s), 1);
  EXPECT_THROW((void)queued.result(), futures::CancelledError);
  EXPECT_EQ(ex.submit(square, 4).result(20s), 16);
}

TEST(MpiPoolExecutor, OneExecutorAtATimeOverACommunicator) {
  futures::MpiPoolExecutor ex;
  EXPECT_THROW(futures::MpiPoolExecutor second, concur::RuntimeError);
  auto f = ex.submit(slow_rank, 100);
  ex.shutdown(false);
  // A second one waits for the first to finish what it had sent.
  futures::MpiPoolExecutor next;
  EXPECT_TRUE(f.done());
  EXPECT_EQ(next.submit(add, 20, 22).result(10s), 42);
  EXPECT_THROW(futures::MpiPoolExecutor(0), concur::ValueError);
}

TEST(MpiPoolExecutor, LargePayloadsBothWays) {
  futures::MpiPoolExecutor ex;
  std::vector<std::byte> blob(8u << 20);
  for (std::size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<std::byte>(i * 31);
  // Several at once: large messages take MPI's rendezvous path in both directions.
  std::vector<futures::Future<std::vector<std::byte>>> fs;
  for (int i = 0; i < 4; ++i) fs.push_back(ex.submit(echo_blob, blob));
  for (auto& f : fs) EXPECT_TRUE(f.result(60s) == blob);
  EXPECT_EQ(ex.submit(total_size, blob).result(60s), blob.size());
}

TEST(MpiPoolExecutor, DoneCallbacksAndManyTasks) {
  futures::MpiPoolExecutor ex;
  std::atomic<int> called{0};
  std::vector<futures::Future<int>> fs;
  for (int i = 0; i < 2000; ++i) {
    fs.push_back(ex.submit(add, i, 1));
    fs.back().add_done_callback([&](futures::Future<int>&) { called.fetch_add(1); });
  }
  long sum = 0;
  for (auto& f : fs) sum += f.result(60s);
  EXPECT_EQ(sum, 2000L * 2001 / 2);
  ex.shutdown();
  EXPECT_EQ(called.load(), 2000);
}

// Callbacks run on rank 0's communication thread: shutdown(true) from one must not try to
// join that thread (it returns; the executor winds down once the callback is done).
TEST(MpiPoolExecutor, ShutdownFromADoneCallback) {
  futures::MpiPoolExecutor ex;
  std::atomic<bool> ran{false};
  auto f = ex.submit(add, 1, 2);
  f.add_done_callback([&](futures::Future<int>&) {
    ex.shutdown(true);
    ran = true;
  });
  EXPECT_EQ(f.result(10s), 3);
  ex.shutdown(true);
  EXPECT_TRUE(ran.load());
  EXPECT_THROW((void)ex.submit(add, 1, 2), concur::RuntimeError);
}

TEST(MpiPoolExecutor, TimeoutsSaturateAndNaNIsAValueError) {
  futures::MpiPoolExecutor ex;
  auto slow = ex.submit(slow_rank, 300);
  EXPECT_THROW((void)slow.result(0s), concur::TimeoutError);
  EXPECT_THROW((void)slow.result(std::chrono::duration<double>(std::nan(""))), concur::ValueError);
  EXPECT_GE(slow.result(std::chrono::hours::max()), 1);
  auto fs = std::vector<futures::Future<int>>{ex.submit(square, 2)};
  EXPECT_EQ(futures::wait(fs, std::chrono::hours::max()).done.size(), 1u);
}

TEST(MpiPoolExecutor, BusyPollingOptionWorks) {
  futures::MpiPoolExecutor ex({.idle_spin = 0ns, .max_backoff = 0ns});
  EXPECT_EQ(ex.submit(add, 5, 6).result(10s), 11);
  EXPECT_THROW(futures::MpiPoolExecutor bad({.max_inflight_per_worker = 0}), concur::ValueError);
}

// The back-off's sleeping phase: after idle_spin without a message, rank 0's communication
// thread sleeps between probes (doubling up to max_backoff). Tasks submitted after pauses
// much longer than the spin still complete with their values, and so do tasks that stay out
// while the thread backs off (the slow ones).
TEST(MpiPoolExecutor, BackoffSleepingPathStillCompletesTasks) {
  futures::MpiPoolExecutor ex({.idle_spin = 0ns, .max_backoff = 4ms});
  for (int round = 0; round < 5; ++round) {
    std::this_thread::sleep_for(20ms);  // past the spin: rank 0 is in its sleeping phase
    auto a = ex.submit(add, round, 100);
    auto slow = ex.submit(slow_rank, 15);  // out for several back-off sleeps
    EXPECT_EQ(a.result(10s), round + 100);
    const int r = slow.result(10s);
    EXPECT_TRUE(r == 1 || r == 2) << r;
  }
}

// Futures nobody waits on (a done-callback only) are completed by the communication thread,
// also when their tasks were sent by the submitting thread itself; with and without waiters
// that poll.
TEST(MpiPoolExecutor, FuturesWithOnlyACallbackComplete) {
  for (const auto poll : {std::chrono::nanoseconds(0), std::chrono::nanoseconds(1ms)}) {
    futures::MpiPoolExecutor ex({.wait_poll = poll});
    std::atomic<int> called{0};
    std::atomic<long> sum{0};
    std::vector<futures::Future<int>> fs;
    for (int round = 0; round < 20; ++round) {
      std::this_thread::sleep_for(2ms);  // the communication thread goes idle between them
      fs.push_back(ex.submit(add, round, 1));
      fs.back().add_done_callback([&](futures::Future<int>& f) {
        sum.fetch_add(f.result());
        called.fetch_add(1);
      });
    }
    for (int i = 0; i < 10000 && called.load() < 20; ++i) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(called.load(), 20);
    EXPECT_EQ(sum.load(), 20L * 21 / 2);
    for (auto& f : fs) EXPECT_TRUE(f.done());
  }
}

// Several threads each waiting on their own lone tasks: they take turns at polling (and
// complete each other's futures), every result is right.
TEST(MpiPoolExecutor, ConcurrentWaitersEachGetTheirResults) {
  futures::MpiPoolExecutor ex;
  std::atomic<int> wrong{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i)
        if (ex.submit(add, t * 1000, i).result(60s) != t * 1000 + i) wrong.fetch_add(1);
    });
  for (auto& th : ts) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

int main(int argc, char** argv) {
  return futures::mpi::main(argc, argv, [](int ac, char** av) {
    testing::InitGoogleTest(&ac, av);
    return RUN_ALL_TESTS();
  });
}
