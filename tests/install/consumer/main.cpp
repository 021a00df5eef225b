// A program outside the project, built against the installed package only: it uses the
// public names of DESIGN.md and prints "consumer ok" when every check held.
#include <chrono>
#include <concur/concur.hpp>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

// concur::threading and concur::logging through DESIGN.md's names (issue #2).
static bool check_threading() {
  namespace th = concur::threading;
  using namespace std::chrono_literals;
  th::Lock lock;
  th::RLock rlock;
  th::Condition cond;
  th::Semaphore sem(2);
  th::BoundedSemaphore bsem(1);
  th::Event ev;
  th::Barrier barrier(2);
  th::Local<int> local;
  int counter = 0;
  std::string seen_name;
  th::Thread t(
      {.name = "consumer-worker", .daemon = false},
      [&](int n) {
        seen_name = th::current_thread().name();
        local.get() = n;
        for (int i = 0; i < n; ++i) {
          std::scoped_lock g(lock);
          ++counter;
        }
        barrier.wait();
        ev.set();
      },
      1000);
  t.start();
  for (int i = 0; i < 1000; ++i) {
    std::scoped_lock g(lock);
    ++counter;
  }
  barrier.wait();
  bool ok = ev.wait(10s);
  t.join();
  ok = ok && !t.is_alive() && counter == 2000 && seen_name == "consumer-worker" &&
       !local.has_value() && th::main_thread().name() == "MainThread" &&
       th::current_thread().name() == "MainThread" && th::active_count() >= 1;
  {
    std::unique_lock g(rlock);
    std::scoped_lock again(rlock);
  }
  {
    std::unique_lock g(cond);
    ok = ok && !cond.wait(1ms);
  }
  ok = ok && sem.acquire(false) && sem.acquire(false) && !sem.acquire(false);
  try {
    bsem.release();
    ok = false;
  } catch (const concur::ValueError&) {
  }
  th::Event fired;
  th::Timer timer(1ms, [&] { fired.set(); });
  timer.start();
  timer.join();
  ok = ok && fired.is_set();
  concur::logging::basic_config(
      {.level = concur::logging::Level::ERROR, .format = "({thread}) {message}", .stream = 2});
  concur::logging::debug("not shown {}", 1);
  std::printf("threading %s\n", ok ? "ok" : "FAILED");
  return ok;
}

// concur::queue and concur::futures through DESIGN.md's names (issue #3).
static bool queue_and_futures_ok() {
  using namespace std::chrono_literals;
  concur::queue::Queue<int> q(2);
  q.put(1);
  q.put_nowait(2);
  if (!q.full() || q.try_put(3)) return false;
  if (q.get() != 1 || q.get(10ms) != 2 || q.try_get()) return false;
  q.task_done();
  q.task_done();
  q.join();
  concur::queue::PriorityQueue<int> pq;
  pq.put(3);
  pq.put(1);
  if (pq.get() != 1) return false;
  concur::futures::ThreadPoolExecutor ex(2, {.thread_name_prefix = "consumer"});
  std::vector<concur::futures::Future<int>> fs;
  for (int i = 0; i < 4; ++i) fs.push_back(ex.submit([](int x) { return x * x; }, i));
  auto r = concur::futures::wait(fs, std::nullopt, concur::futures::ReturnWhen::ALL_COMPLETED);
  int sum = 0;
  for (auto& f : concur::futures::as_completed(fs, 5s)) sum += f.result();
  for (int v : ex.map([](int x) { return x; }, std::vector<int>{1, 2}, {.timeout = 5s})) sum += v;
  ex.shutdown(true, false);
  return r.done.size() == 4 && sum == 14 + 3;
}

// multiprocessing::Process through DESIGN.md's names (issue #4).
static bool check_multiprocessing() {
  namespace mp = concur::multiprocessing;
  mp::Process p(
      {.name = "consumer_child", .daemon = false}, [](int n) { mp::exit(n); }, 5);
  p.start();
  p.join();
  const bool ok = p.exitcode() == 5 && !p.is_alive() && p.pid().has_value() &&
                  mp::current_process().name() == "MainProcess" && !mp::parent_process() &&
                  mp::active_children().empty() && mp::cpu_count() >= 1 &&
                  mp::to_string(p).find("stopped exitcode=5") != std::string::npos;
  std::printf("multiprocessing %s\n", ok ? "ok" : "FAILED");
  return ok;
}

// Shared memory and cross-process synchronization through DESIGN.md's names (issue #5).
static bool check_shared_memory() {
  namespace mp = concur::multiprocessing;
  using namespace std::chrono_literals;
  mp::Value<int> v(0);
  mp::RawValue<long> raw(0);
  mp::Array<double> a{1.0, 2.0};
  mp::RawArray<char> ra(8);
  mp::Lock lock;
  mp::RLock rlock;
  mp::Semaphore sem(2);
  mp::BoundedSemaphore bsem(1);
  mp::Condition cond(lock);
  mp::Event ev;
  mp::Barrier barrier(2);
  mp::Process p(
      [](mp::Value<int> val, mp::Event e, mp::Barrier b) {
        for (int i = 0; i < 1000; ++i) {
          std::lock_guard g(val.get_lock());
          val.set(val.value() + 1);
        }
        e.set();
        b.wait();
      },
      v, ev, barrier);
  p.start();
  for (int i = 0; i < 1000; ++i) v.fetch_add(1);
  bool ok = ev.wait(10s);
  barrier.wait();
  p.join();
  ok = ok && v.value() == 2000 && a[1] == 2.0 && a.size() == 2 && sem.get_value() == 2;
  try {
    bsem.release();
    ok = false;
  } catch (const concur::ValueError&) {
  }
  {
    std::scoped_lock g(rlock, cond);
    ok = ok && !lock.owner_died() && !cond.wait(1ms);
  }
  mp::SharedMemory shm(std::nullopt, true, 16);
  mp::SharedMemory attached(shm.name());
  attached.buf()[0] = std::byte{7};
  ok = ok && shm.buf()[0] == std::byte{7} && attached.size() == 16;
  shm.unlink();
  try {
    mp::SharedMemory gone(shm.name());
    ok = false;
  } catch (const concur::FileNotFoundError&) {
  }
  std::printf("shared memory %s\n", ok ? "ok" : "FAILED");
  return ok;
}

// Pipe / Connection / wait through DESIGN.md's names (issue #10).
static bool check_pipe() {
  namespace mp = concur::multiprocessing;
  using namespace std::chrono_literals;
  auto [parent_conn, child_conn] = mp::Pipe();
  mp::Process p([](mp::Connection& c) { c.send(c.recv<std::string>() + " World"); },
                std::ref(child_conn));
  p.start();
  child_conn.close();
  parent_conn.send(std::string("Hello"));
  mp::Connection* conns[] = {&parent_conn};
  bool ok = mp::wait(conns, 10s).size() == 1 && parent_conn.poll(0s) &&
            parent_conn.recv<std::string>() == "Hello World";
  p.join();
  try {
    (void)parent_conn.recv_bytes();
    ok = false;
  } catch (const concur::EOFError&) {
  }
  auto [r, w] = mp::Pipe(false);
  const std::byte bytes[] = {std::byte{1}, std::byte{2}, std::byte{3}};
  w.send_bytes(bytes);
  std::byte small[2];
  try {
    (void)r.recv_bytes_into(small);
    ok = false;
  } catch (const mp::BufferTooShort& e) {
    ok = ok && e.message().size() == 3;
  }
  ok = ok && !r.closed() && r.fileno() >= 0;
  r.close();
  std::printf("pipe %s\n", ok ? "ok" : "FAILED");
  return ok;
}

// Listener/Client with an authkey over TCP, and a refused wrong key (issue #12; links libcrypto).
static bool check_listener() {
  namespace mp = concur::multiprocessing;
  mp::Listener listener("127.0.0.1:0", {.backlog = 4, .authkey = "consumer-key"});
  mp::Process p(
      [](std::string address) {
        mp::Connection c = mp::Client(address, {.authkey = "consumer-key"});
        c.send(std::string("over tcp"));
        try {
          (void)mp::Client(address, {.authkey = "wrong"});
        } catch (const mp::AuthenticationError&) {
          c.send(std::string("refused"));
        }
      },
      listener.address());
  p.start();
  mp::Connection c = listener.accept();
  bool ok = c.recv<std::string>() == "over tcp";
  try {
    (void)listener.accept();
    ok = false;
  } catch (const mp::AuthenticationError&) {
  }
  ok = ok && c.recv<std::string>() == "refused";
  p.join();
  ok = ok && p.exitcode() == 0;
  std::printf("listener %s\n", ok ? "ok" : "FAILED");
  return ok;
}

// Cross-process Queue, JoinableQueue, SimpleQueue through DESIGN.md's names (issue #10).
static bool check_mp_queues() {
  namespace mp = concur::multiprocessing;
  using namespace std::chrono_literals;
  mp::Queue<std::string> q(4);
  mp::JoinableQueue<int> jq;
  mp::SimpleQueue<double> sq;
  mp::Process p(
      [](mp::Queue<std::string> qq, mp::JoinableQueue<int> j, mp::SimpleQueue<double> s) {
        qq.put("Hello world");
        const int v = j.get();
        j.task_done();
        s.put(v * 1.5);
      },
      q, jq, sq);
  p.start();
  bool ok = q.get(10s) == "Hello world";
  jq.put(2);
  jq.join();
  ok = ok && sq.get() == 3.0 && q.empty() && !q.full() && q.qsize() == 0 && !q.try_get();
  p.join();
  try {
    (void)q.get_nowait();
    ok = false;
  } catch (const concur::queue::Empty&) {
  }
  q.close();
  q.join_thread();
  try {
    q.put("x");
    ok = false;
  } catch (const concur::ValueError&) {
  }
  std::printf("multiprocessing queues %s\n", ok ? "ok" : "FAILED");
  return ok;
}

// Managers through DESIGN.md's names (issue #12): a Manager's proxies used from a child,
// a user class registered with methods(...) on a BaseManager.
namespace {
struct Tally {
  int n = 0;
  void add(int by) { n += by; }
  int get() const { return n; }
};
}  // namespace
static bool check_managers() {
  namespace mp = concur::multiprocessing;
  using namespace std::chrono_literals;
  mp::Manager m;
  auto v = m.Value<int>(0);
  auto lock = m.Lock();
  auto d = m.dict<std::string, int>();
  auto q = m.Queue<std::string>();
  mp::Process p([v, lock, d, q]() mutable {
    std::scoped_lock g(lock);
    v.set(v.value() + 1);
    d.set("child", 1);
    q.put("from child");
  });
  p.start();
  bool ok = q.get(10s) == "from child";
  p.join();
  ok = ok && p.exitcode() == 0 && v.value() == 1 && d.at("child") == 1;
  try {
    (void)d.at("missing");
    ok = false;
  } catch (const concur::KeyError&) {
  }
  Tally t;
  mp::BaseManager bm({"127.0.0.1:0", "key"});
  bm.register_object("tally", t, mp::methods("add", &Tally::add, "get", &Tally::get));
  bm.start();
  auto tp = bm.get<mp::Proxy<Tally>>("tally");
  tp.call<void>("add", 5);
  ok = ok && tp.call<int>("get") == 5;
  bm.shutdown();
  std::printf("managers %s\n", ok ? "ok" : "FAILED");
  return ok;
}

// concur::subprocess through DESIGN.md's names (issue #6).
static bool check_subprocess() {
  namespace sp = concur::subprocess;
  sp::CompletedProcess cp = sp::run({"echo", "hi"}, {.capture_output = true, .check = true});
  sp::Popen p({"cat"}, {.in = sp::Redirect::Pipe, .out = sp::Redirect::Pipe});
  auto [out, err] = p.communicate(std::string("piped"));
  const bool ok = cp.out == "hi\n" && out == "piped" && p.returncode() == 0;
  std::printf("subprocess %s\n", ok ? "ok" : "FAILED");
  return ok;
}

// Process pools through DESIGN.md's names (issue #11).
static int pool_square(int x) {
  return x * x;
}
static bool check_process_pools() {
  namespace fut = concur::futures;
  namespace mp = concur::multiprocessing;
  bool ok = true;
  {
    fut::ProcessPoolExecutor ex(2, {.max_tasks_per_child = 100});
    auto f = ex.submit(pool_square, 7);
    int sum = 0;
    for (int r : ex.map(pool_square, std::vector<int>{1, 2, 3}, {.chunksize = 2})) sum += r;
    ok = ok && f.result() == 49 && sum == 14;
    ex.shutdown(true, false);
  }
  {
    mp::Pool pool(2, mp::PoolOptions{});
    int seen = 0;
    auto r = pool.apply_async(mp::Callbacks{.callback = [&](const int& v) { seen = v; },
                                            .error_callback = [](std::exception_ptr) {}},
                              pool_square, 5);
    ok = ok && r.get() == 25 && pool.map(pool_square, std::vector<int>{4}) == std::vector<int>{16};
    pool.close();
    pool.join();
    ok = ok && seen == 25 && r.successful();
  }
  std::printf("process pools %s\n", ok ? "ok" : "FAILED");
  return ok;
}

int main() {
  struct Check {
    const char* name;
    bool (*fn)();
  };
  const Check checks[] = {
      {"threading", check_threading},
      {"queue/futures", queue_and_futures_ok},
      {"multiprocessing", check_multiprocessing},
      {"shared memory", check_shared_memory},
      {"pipe", check_pipe},
      {"listener", check_listener},
      {"multiprocessing queues", check_mp_queues},
      {"subprocess", check_subprocess},
      {"managers", check_managers},
      {"process pools", check_process_pools},
  };
  int failed = 0;
  for (const Check& c : checks) {
    if (!c.fn()) {
      std::printf("%s check failed\n", c.name);
      ++failed;
    }
  }
  try {
    throw concur::queue::Empty();
  } catch (const concur::Error& e) {
    std::printf("caught %s\n", e.what());
  }
  if (failed) return 1;
  std::printf("consumer ok\n");
  return 0;
}
