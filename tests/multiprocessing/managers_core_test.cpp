// The manager protocol without a server process: a ServerCore serving socketpairs from
// threads, proxies over a ClientCore whose connections are those socketpairs.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "concur/multiprocessing/managers.hpp"

namespace mp = concur::multiprocessing;
namespace md = concur::detail;
using namespace std::chrono_literals;

namespace {

// A server in this process: every connect() makes a socketpair whose far end a new thread
// serves.
struct LocalServer {
  md::ServerCore core;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::shared_ptr<md::ClientCore> client = std::make_shared<md::ClientCore>([this] {
    auto [a, b] = mp::Pipe(true);
    std::lock_guard<std::mutex> g(mu);
    threads.emplace_back(
        [this, c = std::move(b)]() mutable { core.serve_connection(std::move(c), ""); });
    return std::move(a);
  });
  ~LocalServer() {
    client->drop_this_thread();
    client.reset();
    for (auto& t : threads) t.join();
  }
  template <class P, class Init>
  P make(const Init& init) {
    (void)md::factory_registered<P>;
    md::Bytes b;
    md::codec::encode(init, b);
    const auto id = client->call<std::uint32_t>(md::kControl, md::kCreate, md::kind_of<P>(), b);
    md::LookupReply r;
    r.id = id;
    return P(client, r);
  }
};

struct Counter {
  int n = 0;
  void inc(int by) { n += by; }
  int get() const { return n; }
  std::string name(const std::string& prefix) const { return prefix + std::to_string(n); }
};

}  // namespace

TEST(ManagerCore, ValueListDict) {
  LocalServer s;
  auto v = s.make<mp::ValueProxy<int>>(7);
  EXPECT_EQ(v.value(), 7);
  v.set(9);
  EXPECT_EQ(v.get(), 9);

  auto l = s.make<mp::ListProxy<std::string>>(std::vector<std::string>{"a"});
  l.append("b");
  l.extend({"c", "d"});
  l.insert(0, "z");
  EXPECT_EQ(l.size(), 5u);
  EXPECT_EQ(l.at(-1), "d");
  EXPECT_EQ(l.pop(), "d");
  EXPECT_EQ(l.pop(0), "z");
  l.set(1, "B");
  EXPECT_EQ(l.to_vector(), (std::vector<std::string>{"a", "B", "c"}));
  EXPECT_EQ(l.index("c"), 2u);
  EXPECT_EQ(l.count("a"), 1u);
  l.remove("a");
  EXPECT_THROW(l.remove("nope"), concur::ValueError);
  EXPECT_THROW(l.at(5), concur::IndexError);
  EXPECT_THROW(l.set(-9, "x"), concur::IndexError);
  l.clear();
  try {
    (void)l.pop();
    FAIL();
  } catch (const concur::IndexError& e) {
    EXPECT_STREQ(e.what(), "pop from empty list");
  }

  auto d = s.make<mp::DictProxy<std::string, int>>(std::map<std::string, int>{{"x", 1}});
  d.set("y", 2);
  d.update({{"z", 3}, {"x", 10}});
  EXPECT_EQ(d.at("x"), 10);
  EXPECT_EQ(d.get("q"), std::nullopt);
  EXPECT_TRUE(d.contains("z"));
  EXPECT_EQ(d.size(), 3u);
  EXPECT_EQ(d.keys(), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(d.values(), (std::vector<int>{10, 2, 3}));
  EXPECT_EQ(d.pop("y"), 2);
  EXPECT_EQ(d.setdefault("x", 5), 10);
  try {
    (void)d.at("nope");
    FAIL();
  } catch (const concur::KeyError& e) {
    EXPECT_STREQ(e.what(), "'nope'");
  }
  EXPECT_THROW(d.erase("nope"), concur::KeyError);
  d.erase("x");
  EXPECT_EQ(d.to_map(), (std::map<std::string, int>{{"z", 3}}));
}

TEST(ManagerCore, SyncObjectsAndQueue) {
  LocalServer s;
  auto q = s.make<mp::QueueProxy<int>>(std::uint64_t{2});
  q.put(1);
  q.put_nowait(2);
  EXPECT_TRUE(q.full());
  EXPECT_THROW(q.put_nowait(3), concur::queue::Full);
  EXPECT_THROW(q.put(3, 10ms), concur::queue::Full);
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(q.get(1s), 2);
  EXPECT_THROW((void)q.get_nowait(), concur::queue::Empty);
  EXPECT_THROW((void)q.get(-1s), concur::ValueError);
  EXPECT_THROW((void)q.get(std::chrono::duration<double>(std::nan(""))), concur::ValueError);
  EXPECT_EQ(q.try_get(), std::nullopt);

  // A get blocked in the server blocks only its caller: another thread's put goes through.
  std::thread t([&] { q.put(42); });
  EXPECT_EQ(q.get(std::chrono::hours::max()), 42);
  t.join();
  q.task_done();
  q.task_done();
  q.task_done();
  EXPECT_TRUE(q.join(0s));
  EXPECT_THROW(q.task_done(), concur::ValueError);

  auto lk = s.make<mp::LockProxy>(std::uint8_t{0});
  {
    std::lock_guard<mp::LockProxy> g(lk);
    EXPECT_TRUE(lk.locked());
    EXPECT_FALSE(lk.acquire(false));
    EXPECT_FALSE(lk.acquire(1ms));
  }
  EXPECT_THROW(lk.release(), concur::RuntimeError);

  auto rl = s.make<mp::RLockProxy>(std::uint8_t{0});
  EXPECT_TRUE(rl.acquire());
  EXPECT_TRUE(rl.acquire());
  std::thread other([&] {
    EXPECT_FALSE(rl.acquire(false));  // another client thread: not the owner
    EXPECT_THROW(rl.release(), concur::RuntimeError);
  });
  other.join();
  rl.release();
  rl.release();
  EXPECT_THROW(rl.release(), concur::RuntimeError);

  auto bs = s.make<mp::BoundedSemaphoreProxy>(1);
  EXPECT_TRUE(bs.acquire());
  EXPECT_EQ(bs.value(), 0);
  bs.release();
  EXPECT_THROW(bs.release(), concur::ValueError);

  auto ev = s.make<mp::EventProxy>(std::uint8_t{0});
  EXPECT_FALSE(ev.wait(1ms));
  std::thread setter([&] { ev.set(); });
  EXPECT_TRUE(ev.wait());
  setter.join();
  EXPECT_TRUE(ev.is_set());

  auto cv = s.make<mp::ConditionProxy>(std::uint8_t{0});
  auto flag = s.make<mp::ValueProxy<bool>>(false);
  std::thread notifier([&] {
    std::lock_guard<mp::ConditionProxy> g(cv);
    flag.set(true);
    cv.notify_all();
  });
  {
    std::lock_guard<mp::ConditionProxy> g(cv);
    EXPECT_TRUE(cv.wait_for([&] { return flag.value(); }, 10s));
  }
  notifier.join();
  EXPECT_THROW(cv.wait(), concur::RuntimeError);  // not acquired

  auto b = s.make<mp::BarrierProxy>(std::uint64_t{2});
  EXPECT_EQ(b.parties(), 2);
  std::thread w([&] { (void)b.wait(); });
  (void)b.wait();
  w.join();
  b.abort();
  EXPECT_THROW((void)b.wait(), concur::threading::BrokenBarrierError);

  auto ns = s.make<mp::NamespaceProxy>(std::uint8_t{0});
  ns.set("x", 3);
  ns.set<std::string>("name", "n");
  EXPECT_EQ(ns.get<int>("x"), 3);
  EXPECT_EQ(ns.get<std::string>("name"), "n");
  EXPECT_THROW((void)ns.get<double>("x"), concur::TypeError);
  EXPECT_THROW((void)ns.get<int>("missing"), concur::AttributeError);
  EXPECT_EQ(ns.fields(), (std::vector<std::string>{"name", "x"}));
}

TEST(ManagerCore, UserClassAndHostileRequests) {
  LocalServer s;
  Counter c;
  auto o = std::make_shared<md::ServedObject>();
  o->kind = md::kind_of<mp::Proxy<Counter>>();
  o->serialize = true;
  md::fill_user(
      *o, c, mp::methods("inc", &Counter::inc, "get", &Counter::get, "name", &Counter::name).items,
      std::make_index_sequence<3>{});
  md::LookupReply r;
  r.id = s.core.add("counter", o);
  r.names = o->names;
  mp::Proxy<Counter> p(s.client, r);
  p.call<void>("inc", 5);
  EXPECT_EQ(p.call<int>("get"), 5);
  EXPECT_EQ(p.call<std::string>("name", std::string("n=")), "n=5");
  EXPECT_THROW(p.call<void>("inc", 5L), concur::TypeError);  // long is not int
  EXPECT_THROW(p.call<int>("nope"), concur::AttributeError);
  EXPECT_THROW(s.core.add("counter", o), concur::ValueError);

  // Unknown objects and methods are errors sent back, the connection stays.
  EXPECT_THROW(s.client->call<void>(999, 0), concur::ValueError);
  EXPECT_THROW(s.client->call<void>(r.id, 99), concur::AttributeError);
  EXPECT_THROW(s.client->call<void>(md::kControl, 77), concur::ValueError);
  EXPECT_EQ(p.call<int>("get"), 5);

  // A frame shorter than a header drops that connection only.
  auto [a, b] = mp::Pipe(true);
  std::thread t(
      [&, conn = std::move(b)]() mutable { s.core.serve_connection(std::move(conn), ""); });
  a.send_bytes(std::vector<std::byte>(3));
  EXPECT_THROW((void)a.recv_bytes(), concur::EOFError);
  t.join();
  EXPECT_EQ(p.call<int>("get"), 5);
}

// Issue 12's reference counting, at the protocol level: a connection's references are its
// own (a decref it does not hold is ValueError), they go when it closes, and the object goes
// with its last reference.
TEST(ManagerCore, ReferencesBelongToTheirConnectionAndGoWithIt) {
  LocalServer s;
  auto v = s.make<mp::ValueProxy<int>>(3);  // the creator's reference: s.client's connection
  const std::uint32_t id = v.id();
  EXPECT_EQ(s.core.number_of_objects(), 1u);
  EXPECT_THROW(s.client->call<void>(md::kControl, md::kIncref, std::uint32_t{9999}),
               concur::ValueError);

  auto [a, b] = mp::Pipe(true);
  std::thread t([&, conn = std::move(b)]() mutable { s.core.serve_connection(std::move(conn), ""); });
  auto raw = [&a](std::uint32_t method, std::uint32_t arg) {
    md::Bytes req(md::kRequestHeader);
    const std::uint32_t object = md::kControl;
    std::memcpy(req.data(), &object, 4);
    std::memcpy(req.data() + 4, &method, 4);
    md::codec::encode(std::tuple<std::uint32_t>(arg), req);
    a.send_bytes(req);
    return a.recv_bytes().at(0);
  };
  EXPECT_EQ(raw(md::kIncref, id), std::byte{md::kReplyOk});
  EXPECT_EQ(raw(md::kIncref, id), std::byte{md::kReplyOk});
  EXPECT_EQ(raw(md::kDecref, id), std::byte{md::kReplyOk});
  EXPECT_EQ(s.core.number_of_objects(), 1u);
  a.close();  // its remaining reference goes with it
  t.join();
  EXPECT_EQ(v.value(), 3);
  // The creator's reference given back: the object goes; a second decref holds nothing.
  s.client->call<void>(md::kControl, md::kDecref, id);
  EXPECT_EQ(s.core.number_of_objects(), 0u);
  EXPECT_THROW(s.client->call<void>(md::kControl, md::kDecref, id), concur::ValueError);
  EXPECT_THROW((void)v.value(), concur::ValueError);  // unknown object id: gone
}
