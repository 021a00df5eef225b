// MpiPoolExecutor and MpiCommExecutor (concur/futures/mpi.hpp): the registry of remote
// functions, the worker ranks' serve loop and rank 0's communication thread.
//
// Wire format (over a duplicate of the user's communicator, so no other traffic shares it):
//   task   (tag kTagTask,   root -> worker): id:u64 chunk:u8 name_len:u32 name args-message
//   result (tag kTagResult, worker -> root): id:u64 ok:u8 message (ok: the result's codec
//          message; not ok: the codec message of the exception's ExceptionInfo)
//   stop   (tag kTagStop,   root -> worker): empty; the worker leaves its serve loop
//   gone   (tag kTagGone,   worker -> root): empty; the worker's process is exiting
// On rank 0 one thread at a time calls MPI, under the engine's progress lock: the
// communication thread, a submitting thread or a waiting thread (Engine::drive), so MPI's
// SERIALIZED level suffices; a worker calls MPI only from the thread that serves.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "concur/detail/exception_transport.hpp"
#include "concur/futures/mpi.hpp"

namespace concur::futures {
namespace mpi::detail {

namespace {

constexpr int kTagTask = 1;
constexpr int kTagResult = 2;
constexpr int kTagStop = 3;
constexpr int kTagGone = 4;
constexpr std::size_t kTaskHeader = 8 + 1 + 4;
constexpr std::size_t kResultHeader = 8 + 1;

using Clock = std::chrono::steady_clock;

// ---- the registry ----
struct Registry {
  std::mutex mu;
  std::deque<Entry> entries;  // stable addresses
  std::unordered_map<FnAddress, const Entry*> by_address;
  std::unordered_map<std::string, const Entry*> by_name;  // nullptr: two functions
};
Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: used by atexit-time code
  return *r;
}

void put_u64(std::vector<std::byte>& out, std::uint64_t v) {
  const std::size_t at = out.size();
  out.resize(at + 8);
  std::memcpy(out.data() + at, &v, 8);
}
void put_u32(std::vector<std::byte>& out, std::uint32_t v) {
  const std::size_t at = out.size();
  out.resize(at + 4);
  std::memcpy(out.data() + at, &v, 4);
}

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw RuntimeError(std::string(what) + ": " + std::string(msg, static_cast<std::size_t>(len)));
}

// Receives the probed message into buf.
void receive(MPI_Comm comm, const MPI_Status& st, std::vector<std::byte>& buf) {
  int n = 0;
  MPI_Get_count(&st, MPI_BYTE, &n);
  buf.resize(static_cast<std::size_t>(n));
  check_mpi(MPI_Recv(buf.data(), n, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, comm, MPI_STATUS_IGNORE),
            "MPI_Recv");
}

// Waits in the MpiOptions way: spin for idle_spin after the last activity, then sleep,
// doubling from 1 us up to max_backoff.
class Backoff {
 public:
  explicit Backoff(const MpiOptions& o) : spin_(o.idle_spin), max_(o.max_backoff) { reset(); }
  void reset() {
    last_ = Clock::now();
    sleep_ = std::chrono::microseconds(1);
  }
  bool busy_poll() const { return max_.count() <= 0; }
  // How long to sleep now (zero: probe again at once).
  std::chrono::nanoseconds next() {
    if (busy_poll() || Clock::now() - last_ < spin_) return std::chrono::nanoseconds(0);
    const auto s = sleep_;
    sleep_ = std::min(sleep_ * 2, max_);
    return s;
  }

 private:
  std::chrono::nanoseconds spin_, max_, sleep_{};
  Clock::time_point last_;
};

// The engine whose communication thread this is (done-callbacks run there).
thread_local const void* tls_engine = nullptr;

// The worker serving right now (for the exit handler).
struct Serving {
  MPI_Comm comm;
  int root;
};
std::atomic<Serving*> g_serving{nullptr};

void on_exit_while_serving() {
  Serving* s = g_serving.exchange(nullptr);
  if (!s) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  // Tell rank 0 first (it fails this rank's tasks and stops sending to it), then leave the
  // job cleanly: a process that exits without MPI_Finalize makes mpirun abort the job.
  MPI_Send(nullptr, 0, MPI_BYTE, s->root, kTagGone, s->comm);
  MPI_Finalize();
}

}  // namespace

bool register_function(const char* name, FnAddress address, Invoker call, Invoker chunk) noexcept {
  try {
    Registry& r = registry();
    std::lock_guard lk(r.mu);
    auto a = r.by_address.find(address);
    auto n = r.by_name.find(name);
    if (a != r.by_address.end()) {
      // Registered again (another translation unit): an alias unless the name is taken.
      if (n == r.by_name.end())
        r.by_name.emplace(name, a->second);
      else if (n->second != a->second)
        n->second = nullptr;
      return true;
    }
    r.entries.push_back(Entry{name, address, call, chunk});
    const Entry* e = &r.entries.back();
    r.by_address.emplace(address, e);
    if (n == r.by_name.end())
      r.by_name.emplace(name, e);
    else
      n->second = nullptr;  // two functions, one name: neither can be found by it
    return true;
  } catch (...) {
    std::fprintf(stderr, "concur: CONCUR_REMOTE(%s): out of memory\n", name);
    return false;
  }
}

const Entry* find_by_address(FnAddress address) noexcept {
  Registry& r = registry();
  std::lock_guard lk(r.mu);
  auto a = r.by_address.find(address);
  return a == r.by_address.end() ? nullptr : a->second;
}

const Entry& find_by_name(std::string_view name) {
  Registry& r = registry();
  std::lock_guard lk(r.mu);
  auto n = r.by_name.find(std::string(name));
  if (n == r.by_name.end())
    throw ValueError("MpiPoolExecutor: no function named '" + std::string(name) +
                     "' is registered with CONCUR_REMOTE on this rank");
  if (!n->second)
    throw ValueError("MpiPoolExecutor: the name '" + std::string(name) +
                     "' is registered with CONCUR_REMOTE for two different functions");
  return *n->second;
}

// ---- the communicator and the ranks serving on it ----
class Session {
 public:
  Session(MPI_Comm comm, int root) : comm_(comm), root_(root) {
    MPI_Comm_size(comm_, &size_);
    MPI_Comm_rank(comm_, &rank_);
    alive_.assign(static_cast<std::size_t>(size_), 1);
  }
  MPI_Comm comm() const { return comm_; }
  int root() const { return root_; }
  int rank() const { return rank_; }
  int size() const { return size_; }

  std::vector<int> live_workers() {
    std::lock_guard lk(mu_);
    std::vector<int> out;
    for (int r = 0; r < size_; ++r)
      if (r != root_ && alive_[static_cast<std::size_t>(r)]) out.push_back(r);
    return out;
  }
  void mark_gone(int r) {
    std::lock_guard lk(mu_);
    if (r >= 0 && r < size_) alive_[static_cast<std::size_t>(r)] = 0;
  }

  // The executor that uses this communicator now (one at a time).
  void attach(const std::shared_ptr<Engine>& e);
  // Root: waits for the executor, then releases every live worker.
  void close();
  // Worker: serves tasks until the root's stop.
  void serve(const MpiOptions& options);

 private:
  MPI_Comm comm_;
  int root_;
  int size_ = 0;
  int rank_ = 0;
  std::mutex mu_;
  std::vector<char> alive_;
  std::shared_ptr<Engine> active_;
  bool closed_ = false;
};

// ---- rank 0's side of one executor ----
// Progress: every MPI call on rank 0 is made under pm_, by the communication thread, by a
// submitting thread that finds pm_ free (it sends its task itself), or by a thread waiting
// on one of the executor's futures (WaitDriver: it polls for replies itself for up to
// wait_poll, while the communication thread stands aside). A lone submit(f).result() then
// crosses no thread hand-off on rank 0.
class Engine : public concur::detail::WaitDriver {
 public:
  Engine(std::shared_ptr<Session> session, std::vector<int> workers, MpiOptions options)
      : session_(std::move(session)), options_(options) {
    if (options_.max_inflight_per_worker < 1)
      throw ValueError("max_inflight_per_worker must be >= 1");
    for (int r : workers) slots_.push_back(Slot{r, 0, true});
    live_ = slots_.size();
    thread_ = std::thread([this] { run(); });
  }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine() { shutdown(true, false); }

  int workers() const noexcept { return static_cast<int>(slots_.size()); }

  void push(Call c) {
    std::unique_lock lk(mu_);
    if (broken_ || shutdown_) {
      const bool broken = broken_;
      lk.unlock();
      c.state->release();
      if (broken) throw BrokenExecutor("MpiPoolExecutor: no rank is left to run tasks");
      throw RuntimeError("cannot schedule new futures after shutdown");
    }
    queue_.push_back(std::move(c));
    if (tls_engine == this) return;  // a callback under pm_: the loop it runs in dispatches
    lk.unlock();
    // Send it from here if nobody is making progress now: one hand-off less. (Only the
    // send: receiving is left to the communication thread or a waiter, so a stream of
    // submits does not also probe once per submit.)
    (void)try_step(/*receive=*/false);
    // The communication thread must hear of it when it sleeps with nothing out (a future
    // nobody waits on, a done-callback only, is completed by it alone), or in its back-off
    // with the task still queued.
    lk.lock();
    if (sleeping_ == Sleep::idle || (sleeping_ == Sleep::backoff && !queue_.empty()))
      cv_.notify_one();
  }

  void drive(concur::detail::StateBase& s,
             const concur::detail::Clock::time_point* deadline) noexcept override {
    if (tls_engine == this) return;  // a done-callback of this executor: it holds pm_
    if (options_.wait_poll.count() <= 0) return;
    using concur::detail::Clock;
    drivers_.fetch_add(1, std::memory_order_acq_rel);
    // 1 ms by default: long enough that a reply delayed by the scheduler (two vCPUs, three
    // ranks) is still polled here; with 200 us one lone task in ten took 330-370 us (the
    // waiter gave up, slept, and was woken through the communication thread).
    const auto until = Clock::now() + options_.wait_poll;
    while (!s.done()) {
      if (!try_step(/*receive=*/true)) concur::detail::cpu_relax();
      if (s.done()) break;
      const auto now = Clock::now();
      if (now >= until || (deadline && now >= *deadline)) break;
    }
    // No wake-up on the way out: the communication thread, standing aside, looks again
    // within 1 ms. Waking it after every completed wait made it compete with the next
    // waiter (and with busy-polling ranks) for the CPU: with busy-polling ranks, N submits
    // then their results fell from 192k to 4.5-15k tasks/s.
    drivers_.fetch_sub(1, std::memory_order_acq_rel);
  }

  void shutdown(bool wait, bool cancel_futures) {
    // (pm_ may be held by this thread: a done-callback; nothing below takes it.)
    std::deque<Call> cancelled;
    {
      std::lock_guard lk(mu_);
      shutdown_ = true;
      if (cancel_futures) cancelled.swap(queue_);
      cv_.notify_one();
    }
    for (auto& c : cancelled) {
      (void)c.state->cancel();
      c.state->release();
    }
    if (wait) join();
  }

  void join() {
    if (tls_engine == this) return;  // from a done-callback on the communication thread
    std::lock_guard lk(join_mu_);
    if (thread_.joinable()) thread_.join();
  }
  bool shut_down() {
    std::lock_guard lk(mu_);
    return shutdown_;
  }

 private:
  struct Slot {
    int rank;
    int inflight;
    bool alive;
  };
  struct InFlight {
    Call call;
    std::size_t slot;
    std::vector<std::byte> msg;  // the send buffer, alive until the send completes
    MPI_Request req = MPI_REQUEST_NULL;
  };

  static void fail(Call& c, std::exception_ptr e) noexcept {
    try {
      c.state->set_exception(std::move(e));
    } catch (...) {
      // Completed through the public producer API meanwhile.
    }
    c.state->release();
    c.state = nullptr;
  }

  // Sends queued tasks to ranks with a free slot. True if any was taken.
  bool dispatch() {
    const int depth = options_.max_inflight_per_worker;
    bool any = false;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      Slot& s = slots_[i];
      while (s.alive && s.inflight < depth) {
        Call c;
        {
          // Counted as outstanding in the same hold of mu_ as the pop: the communication
          // thread's idle check (queue empty, nothing outstanding; under mu_) must never see
          // a task between the two, or it sleeps untimed while a reply is on its way.
          std::lock_guard lk(mu_);
          if (queue_.empty()) return any;
          c = std::move(queue_.front());
          queue_.pop_front();
          outstanding_.fetch_add(1, std::memory_order_relaxed);
        }
        any = true;
        bool go = false;
        try {
          go = c.state->set_running_or_notify_cancel();
        } catch (...) {
          // Completed through the public producer API before it was sent.
        }
        if (!go) {
          outstanding_.fetch_sub(1, std::memory_order_relaxed);
          c.state->release();
          continue;
        }
        const std::uint64_t id = next_id_++;
        InFlight f{std::move(c), i, {}, MPI_REQUEST_NULL};
        const std::string& name = f.call.fn->name;
        f.msg.reserve(kTaskHeader + name.size() + f.call.args.size());
        put_u64(f.msg, id);
        f.msg.push_back(std::byte{f.call.chunk ? std::uint8_t{1} : std::uint8_t{0}});
        put_u32(f.msg, static_cast<std::uint32_t>(name.size()));
        const auto* nb = reinterpret_cast<const std::byte*>(name.data());
        f.msg.insert(f.msg.end(), nb, nb + name.size());
        f.msg.insert(f.msg.end(), f.call.args.begin(), f.call.args.end());
        f.call.args = {};
        if (f.msg.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
          outstanding_.fetch_sub(1, std::memory_order_relaxed);
          fail(f.call,
               std::make_exception_ptr(ValueError("MpiPoolExecutor: task message over 2 GiB")));
          continue;
        }
        auto [it, ok] = inflight_.emplace(id, std::move(f));
        (void)ok;
        const int rc = MPI_Isend(it->second.msg.data(), static_cast<int>(it->second.msg.size()),
                                 MPI_BYTE, s.rank, kTagTask, session_->comm(), &it->second.req);
        if (rc != MPI_SUCCESS) {
          outstanding_.fetch_sub(1, std::memory_order_relaxed);
          fail(it->second.call,
               std::make_exception_ptr(BrokenExecutor("MpiPoolExecutor: MPI_Isend failed")));
          inflight_.erase(it);
          continue;
        }
        ++s.inflight;
      }
    }
    return any;
  }

  void on_result(int source, std::span<const std::byte> m) {
    if (m.size() < kResultHeader) return;  // not ours: nothing to complete
    std::uint64_t id;
    std::memcpy(&id, m.data(), 8);
    const bool ok = m[8] == std::byte{1};
    auto it = inflight_.find(id);
    if (it == inflight_.end() || slots_[it->second.slot].rank != source) return;
    InFlight f = std::move(it->second);
    inflight_.erase(it);
    MPI_Wait(&f.req, MPI_STATUS_IGNORE);  // the worker has received it
    --slots_[f.slot].inflight;
    outstanding_.fetch_sub(1, std::memory_order_relaxed);
    const auto body = m.subspan(kResultHeader);
    std::exception_ptr e;
    try {
      if (ok) {
        f.call.complete(f.call.state, body);
        f.call.state->release();
        return;
      }
      concur::detail::rethrow(codec::decode<concur::detail::ExceptionInfo>(body));
    } catch (...) {
      e = std::current_exception();
    }
    // Failed outside the handler: once the future is published this thread holds no
    // reference to the exception object (the handler's own is dropped at the end of the
    // catch), so its last owner, the thread that consumed it, is the one that destroys it.
    fail(f.call, std::move(e));
  }

  void on_gone(int source) {
    session_->mark_gone(source);
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].rank != source || !slots_[i].alive) continue;
      slots_[i].alive = false;
      --live_;
      for (auto it = inflight_.begin(); it != inflight_.end();) {
        if (it->second.slot != i) {
          ++it;
          continue;
        }
        int done = 0;
        MPI_Test(&it->second.req, &done, MPI_STATUS_IGNORE);
        if (!done) {
          MPI_Cancel(&it->second.req);
          MPI_Request_free(&it->second.req);
        }
        fail(it->second.call, std::make_exception_ptr(
                                  BrokenExecutor("MpiPoolExecutor: rank " + std::to_string(source) +
                                                 " exited while running this task")));
        it = inflight_.erase(it);
        outstanding_.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    if (live_ == 0) {
      std::deque<Call> queued;
      {
        std::lock_guard lk(mu_);
        broken_ = true;
        queued.swap(queue_);
      }
      for (auto& c : queued)
        fail(c, std::make_exception_ptr(
                    BrokenExecutor("MpiPoolExecutor: no rank is left to run tasks")));
    }
  }

  // Receives everything that has arrived. True if anything did.
  bool poll() {
    bool any = false;
    for (;;) {
      int flag = 0;
      MPI_Status st;
      MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, session_->comm(), &flag, &st);
      if (!flag) return any;
      any = true;
      receive(session_->comm(), st, buf_);
      if (st.MPI_TAG == kTagResult)
        on_result(st.MPI_SOURCE, buf_);
      else if (st.MPI_TAG == kTagGone)
        on_gone(st.MPI_SOURCE);
    }
  }

  // One round of progress if pm_ is free; false if another thread holds it. Meanwhile
  // this thread counts as the engine's (tls_engine): a done-callback run here that submits
  // only queues, one that waits does not drive again, a shutdown(wait) does not join.
  // `moved`: whether anything was sent or received.
  bool try_step(bool receive, bool* moved = nullptr) noexcept {
    if (!pm_.try_lock()) return false;
    const void* saved = tls_engine;
    tls_engine = this;
    const bool m = progress_step(receive);
    tls_engine = saved;
    pm_.unlock();
    if (moved) *moved = m;
    return true;
  }

  // One round of progress (pm_ held): sends what can be sent, receives what has arrived.
  // True if anything moved.
  bool progress_step(bool receive) noexcept {
    try {
      bool progress = dispatch();
      return (receive && poll()) || progress;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "concur: MpiPoolExecutor: %s\n", e.what());
      std::abort();  // MPI itself is broken: the job cannot go on
    }
  }

  void run() {
    tls_engine = this;
    Backoff backoff(options_);
    for (;;) {
      bool progress = false;
      const bool stepped =
          drivers_.load(std::memory_order_acquire) == 0 && try_step(/*receive=*/true, &progress);
      if (!stepped) {
        if (drivers_.load(std::memory_order_acquire) > 0) {
          // A waiting thread polls now: stand aside, looking again every 1 ms.
          std::unique_lock lk(mu_);
          cv_.wait_for(lk, std::chrono::milliseconds(1));
          backoff.reset();
        } else {
          concur::detail::cpu_relax();  // a submitter holds pm_ for a moment
        }
        continue;
      }
      std::unique_lock lk(mu_);
      if (outstanding_.load(std::memory_order_relaxed) == 0 && (queue_.empty() || broken_)) {
        if (shutdown_ || broken_) return;
        // Nothing out and nothing to send: sleep until a submit or a shutdown.
        sleeping_ = Sleep::idle;
        cv_.wait(lk, [&] {
          return !queue_.empty() || shutdown_ || outstanding_.load(std::memory_order_relaxed) > 0;
        });
        sleeping_ = Sleep::no;
        backoff.reset();
        continue;
      }
      if (progress) {
        backoff.reset();
        continue;
      }
      const auto pause = backoff.next();
      if (pause.count() == 0) continue;
      sleeping_ = Sleep::backoff;
      cv_.wait_for(lk, pause);
      sleeping_ = Sleep::no;
    }
  }

  std::shared_ptr<Session> session_;
  MpiOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Call> queue_;  // guarded by mu_
  bool shutdown_ = false;   // guarded by mu_
  bool broken_ = false;     // guarded by mu_
  // Where the communication thread sleeps (guarded by mu_), for push(): idle (nothing
  // out: a submit must wake it) or backoff (a queued task should not wait for the pause).
  // Standing aside for a waiter that polls counts as neither: it looks again within 1 ms.
  enum class Sleep { no, idle, backoff };
  Sleep sleeping_ = Sleep::no;
  std::mutex pm_;                            // progress: held by whoever calls MPI on rank 0
  std::atomic<int> drivers_{0};              // threads polling in drive()
  std::atomic<std::size_t> outstanding_{0};  // tasks popped (under mu_), not yet answered
  // Guarded by pm_.
  std::vector<Slot> slots_;
  std::size_t live_ = 0;
  std::map<std::uint64_t, InFlight> inflight_;
  std::uint64_t next_id_ = 1;
  std::vector<std::byte> buf_;
  std::mutex join_mu_;
  std::thread thread_;
};

void Session::attach(const std::shared_ptr<Engine>& e) {
  std::shared_ptr<Engine> previous;
  {
    std::lock_guard lk(mu_);
    if (closed_) throw RuntimeError("MpiPoolExecutor: the MPI job is ending");
    previous = active_;
  }
  if (previous) {
    if (!previous->shut_down())
      throw RuntimeError(
          "MpiPoolExecutor: another executor is using this communicator; shut it down first");
    previous->join();
  }
  std::lock_guard lk(mu_);
  active_ = e;
}

void Session::close() {
  std::shared_ptr<Engine> e;
  {
    std::lock_guard lk(mu_);
    closed_ = true;
    e = std::move(active_);
  }
  if (e) e->shutdown(true, false);  // an executor leaked by user code
  // Goodbyes that arrived while no executor was listening.
  std::vector<std::byte> buf;
  for (;;) {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_, &flag, &st);
    if (!flag) break;
    receive(comm_, st, buf);
    if (st.MPI_TAG == kTagGone) mark_gone(st.MPI_SOURCE);
  }
  for (int r : live_workers()) MPI_Send(nullptr, 0, MPI_BYTE, r, kTagStop, comm_);
}

void Session::serve(const MpiOptions& options) {
  static std::once_flag exit_hook;
  std::call_once(exit_hook, [] { std::atexit(on_exit_while_serving); });
  Serving me{comm_, root_};
  g_serving.store(&me);
  Backoff backoff(options);
  std::vector<std::byte> in, out;
  for (;;) {
    MPI_Status st;
    if (backoff.busy_poll()) {
      MPI_Probe(root_, MPI_ANY_TAG, comm_, &st);
    } else {
      for (;;) {
        int flag = 0;
        MPI_Iprobe(root_, MPI_ANY_TAG, comm_, &flag, &st);
        if (flag) break;
        const auto pause = backoff.next();
        if (pause.count() > 0) std::this_thread::sleep_for(pause);
      }
    }
    receive(comm_, st, in);
    backoff.reset();
    if (st.MPI_TAG == kTagStop) break;
    if (st.MPI_TAG != kTagTask || in.size() < kTaskHeader) continue;  // nothing to answer
    std::uint64_t id;
    std::memcpy(&id, in.data(), 8);
    const bool chunk = in[8] == std::byte{1};
    std::uint32_t name_len;
    std::memcpy(&name_len, in.data() + 9, 4);
    out.clear();
    put_u64(out, id);
    out.push_back(std::byte{1});
    try {
      if (name_len > in.size() - kTaskHeader)
        throw codec::DecodeError("MpiPoolExecutor: truncated task message");
      const std::string_view name(reinterpret_cast<const char*>(in.data()) + kTaskHeader, name_len);
      const Entry& e = find_by_name(name);
      const auto args = std::span<const std::byte>(in).subspan(kTaskHeader + name_len);
      (chunk ? e.chunk : e.call)(args, out);
    } catch (...) {
      out.resize(kResultHeader);
      out[8] = std::byte{0};
      try {
        codec::encode(concur::detail::describe(std::current_exception()), out);
      } catch (...) {
        out.resize(kResultHeader);
        codec::encode(concur::detail::ExceptionInfo{"std::bad_alloc", "std::bad_alloc", {}}, out);
      }
    }
    MPI_Send(out.data(), static_cast<int>(out.size()), MPI_BYTE, root_, kTagResult, comm_);
  }
  g_serving.store(nullptr);
}

namespace {
std::mutex g_world_mu;
std::shared_ptr<Session> g_world;  // mpi::main's session, on rank 0 while user_main runs

MPI_Comm duplicate(MPI_Comm comm) {
  MPI_Comm dup;
  check_mpi(MPI_Comm_dup(comm, &dup), "MPI_Comm_dup");
  return dup;
}
}  // namespace

}  // namespace mpi::detail

// ---- MpiPoolExecutor ----

MpiPoolExecutor::MpiPoolExecutor(std::optional<int> max_workers, MpiOptions options)
    : MpiPoolExecutor(
          [] {
            std::lock_guard lk(mpi::detail::g_world_mu);
            if (!mpi::detail::g_world)
              throw RuntimeError(
                  "MpiPoolExecutor: no MPI job here; construct it inside "
                  "concur::futures::mpi::main's user_main (rank 0), or use MpiCommExecutor");
            return mpi::detail::g_world;
          }(),
          max_workers, options) {}

MpiPoolExecutor::MpiPoolExecutor(std::shared_ptr<mpi::detail::Session> session,
                                 std::optional<int> max_workers, MpiOptions options) {
  if (max_workers && *max_workers <= 0) throw ValueError("max_workers must be greater than 0");
  std::vector<int> workers = session->live_workers();
  if (workers.empty())
    throw ValueError(
        "MpiPoolExecutor: no rank to run tasks (the job needs at least 2 ranks: rank 0 submits, "
        "the others run them)");
  if (max_workers && static_cast<std::size_t>(*max_workers) < workers.size())
    workers.resize(static_cast<std::size_t>(*max_workers));
  auto* s = session.get();
  engine_ = std::make_shared<mpi::detail::Engine>(std::move(session), std::move(workers), options);
  try {
    s->attach(engine_);
  } catch (...) {
    engine_->shutdown(true, false);
    throw;
  }
}

MpiPoolExecutor::~MpiPoolExecutor() {
  shutdown(true);
}

void MpiPoolExecutor::shutdown(bool wait, bool cancel_futures) {
  engine_->shutdown(wait, cancel_futures);
}

int MpiPoolExecutor::max_workers() const noexcept {
  return engine_->workers();
}

void MpiPoolExecutor::push(mpi::detail::Call c) {
  c.state->set_driver(engine_);  // a waiter polls for its reply itself (Engine::drive)
  engine_->push(std::move(c));
}

// ---- MpiCommExecutor ----

MpiCommExecutor::MpiCommExecutor(MPI_Comm comm, int root, MpiOptions options) {
  int init = 0;
  MPI_Initialized(&init);
  if (!init) throw RuntimeError("MpiCommExecutor: MPI is not initialized");
  int level = 0;
  MPI_Query_thread(&level);
  if (level < MPI_THREAD_SERIALIZED)
    throw RuntimeError(
        "MpiCommExecutor: MPI must be initialized with at least MPI_THREAD_SERIALIZED "
        "(MPI_Init_thread)");
  int size = 0;
  MPI_Comm_size(comm, &size);
  if (root < 0 || root >= size) throw ValueError("MpiCommExecutor: root is not a rank of comm");
  session_ = std::make_shared<mpi::detail::Session>(mpi::detail::duplicate(comm), root);
  if (session_->rank() == root) {
    if (size > 1) executor_.reset(new MpiPoolExecutor(session_, std::nullopt, options));
  } else {
    session_->serve(options);
  }
}

MpiCommExecutor::~MpiCommExecutor() {
  if (session_->rank() == session_->root()) {
    executor_.reset();
    session_->close();
  }
  MPI_Comm c = session_->comm();
  MPI_Comm_free(&c);
}

// ---- mpi::main ----

namespace mpi {

int rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int size() {
  int s = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

int main(int argc, char** argv, const std::function<int(int, char**)>& user_main,
         MpiOptions options) {
  int provided = 0;
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) return 1;
  if (provided < MPI_THREAD_SERIALIZED) {
    std::fprintf(stderr,
                 "concur::futures::mpi::main: this MPI provides thread level %d; "
                 "MPI_THREAD_SERIALIZED is needed\n",
                 provided);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  int rc = 0;
  {
    auto session = std::make_shared<detail::Session>(detail::duplicate(MPI_COMM_WORLD), 0);
    if (session->rank() == 0) {
      {
        std::lock_guard lk(detail::g_world_mu);
        detail::g_world = session;
      }
      try {
        rc = user_main(argc, argv);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "concur::futures::mpi::main: user_main threw %s: %s\n",
                     concur::detail::type_name(typeid(e)).c_str(), e.what());
        rc = 1;
      } catch (...) {
        std::fprintf(stderr, "concur::futures::mpi::main: user_main threw a non-exception\n");
        rc = 1;
      }
      {
        std::lock_guard lk(detail::g_world_mu);
        detail::g_world.reset();
      }
      session->close();
    } else {
      session->serve(options);
    }
    MPI_Comm c = session->comm();
    MPI_Comm_free(&c);
  }
  MPI_Finalize();
  return rc;
}

}  // namespace mpi
}  // namespace concur::futures
