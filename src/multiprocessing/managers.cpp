// The manager's protocol: the server's registry and dispatch, the client's per-thread
// connections. The server process and its listener: manager_server.cpp.
#include "concur/multiprocessing/managers.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <set>
#include <unordered_map>

#include "concur/detail/fork.hpp"

namespace concur::detail {

namespace {

// The kinds of object a manager's server can make (register_factory, at static-init time).
struct Factories {
  Mutex mu;
  std::map<std::string, Factory, std::less<>> by_kind CONCUR_GUARDED_BY(mu);
};
Factories& factories() {
  static Factories f;
  return f;
}

std::atomic<std::uint64_t> next_client_id{1};

// This thread's connections, by client core id. Replaced (the inherited ones closed) the
// first time a thread uses it in a forked child (the parent keeps its own: it compares the
// pid, not the fork epoch, which moves in the parent too).
struct ThreadConnections {
  pid_t pid = concur::detail::this_process_pid();
  std::unordered_map<std::uint64_t, multiprocessing::Connection> by_core;
  std::unordered_map<std::uint64_t, multiprocessing::Connection>& get() {
    const pid_t now = concur::detail::this_process_pid();
    if (now != pid) {
      by_core.clear();  // the parent's connections: closed here, untouched there
      pid = now;
    }
    return by_core;
  }
};
ThreadConnections& thread_connections() {
  thread_local ThreadConnections tc;
  return tc;
}

// Every ClientCore of this process (for the fork handler) and the cores by address (for
// proxies received through the codec), and the process authkey. One mutex, held around
// fork (rank kProcess: nothing of lower rank is taken under it).
struct Registry {
  Mutex mu;
  std::set<ClientCore*> all CONCUR_GUARDED_BY(mu);
  std::map<std::string, std::weak_ptr<ClientCore>, std::less<>> by_address CONCUR_GUARDED_BY(mu);
  std::string authkey CONCUR_GUARDED_BY(mu);
};
Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: cores may outlive static teardown
  return *r;
}
void make_authkey_locked(Registry& r) CONCUR_REQUIRES(r.mu) {
  if (r.authkey.empty()) r.authkey = concur::detail::random_authkey();
}
// Registry::mu is held across fork (taken in the prepare handler, released in the parent's
// and the child's), which the analysis cannot pair: these three are outside it.
void registry_prepare() noexcept CONCUR_NO_THREAD_SAFETY_ANALYSIS {
  Registry& r = registry();
  r.mu.fork_lock();
  try {
    make_authkey_locked(r);  // made before the first fork: children share it
  } catch (...) {
  }
}
void registry_parent() noexcept CONCUR_NO_THREAD_SAFETY_ANALYSIS {
  registry().mu.fork_unlock();
}
void registry_child() noexcept CONCUR_NO_THREAD_SAFETY_ANALYSIS {
  Registry& r = registry();
  // The parent's reference connections: this process must not keep them open (the server
  // drops the parent's references when the parent's close), nor use them. The descriptor
  // becomes /dev/null; the Connection object closes it when it is replaced.
  for (ClientCore* c : r.all) {
    const int fd = c->ref_fd_.load();
    if (fd < 0) continue;
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      ::dup3(null, fd, O_CLOEXEC);
      ::close(null);
    }
  }
  r.mu.fork_unlock();
}
const bool fork_handler_registered = [] {
  concur::detail::register_fork_handler(
      concur::detail::ForkRank::kProcess,
      {.prepare = registry_prepare, .parent = registry_parent, .child = registry_child});
  return true;
}();


}  // namespace

}  // namespace concur::detail

namespace concur::multiprocessing {
std::string process_authkey() {
  auto& r = concur::detail::registry();
  concur::detail::MutexLock g(r.mu);
  concur::detail::make_authkey_locked(r);
  return r.authkey;
}
void set_process_authkey(std::string key) {
  if (key.empty()) throw ValueError("the process authkey must not be empty");
  auto& r = concur::detail::registry();
  concur::detail::MutexLock g(r.mu);
  r.authkey = std::move(key);
}
}  // namespace concur::multiprocessing

namespace concur::detail {

bool register_factory(std::string kind, Factory make) {
  Factories& f = factories();
  MutexLock g(f.mu);
  f.by_kind.emplace(std::move(kind), make);
  return true;
}

std::size_t py_index(std::int64_t i, std::size_t n, const char* what) {
  const auto sn = static_cast<std::int64_t>(n);
  const std::int64_t at = i < 0 ? i + sn : i;
  if (at < 0 || at >= sn) throw IndexError(what);
  return static_cast<std::size_t>(at);
}

// ---- client ----

ClientCore::ClientCore(std::function<multiprocessing::Connection()> connect, std::string address)
    : connect_(std::move(connect)), id_(next_client_id.fetch_add(1)), address_(std::move(address)) {
  (void)fork_handler_registered;
  Registry& r = registry();
  MutexLock g(r.mu);
  r.all.insert(this);
}

ClientCore::~ClientCore() {
  drop_this_thread();
  Registry& r = registry();
  MutexLock g(r.mu);
  r.all.erase(this);
  ref_fd_.store(-1);
}

std::shared_ptr<ClientCore> ClientCore::make(std::function<multiprocessing::Connection()> connect,
                                             std::string address) {
  auto c = std::make_shared<ClientCore>(std::move(connect), address);
  if (!address.empty()) {
    Registry& r = registry();
    MutexLock g(r.mu);
    r.by_address.insert_or_assign(std::move(address), c);
  }
  return c;
}

std::shared_ptr<ClientCore> ClientCore::for_address(const std::string& address) {
  Registry& r = registry();
  std::string key;
  {
    MutexLock g(r.mu);
    auto it = r.by_address.find(address);
    if (it != r.by_address.end()) {
      if (auto c = it->second.lock()) return c;
    }
    make_authkey_locked(r);
    key = r.authkey;
  }
  return make(manager_connector(address, std::move(key)), address);
}

void ClientCore::drop_this_thread() noexcept {
  thread_connections().get().erase(id_);
}

multiprocessing::Connection& ClientCore::connection() {
  auto& m = thread_connections().get();
  auto it = m.find(id_);
  if (it != m.end() && !it->second.closed()) return it->second;
  multiprocessing::Connection c = connect_();
  return m.insert_or_assign(id_, std::move(c)).first->second;
}

namespace {
// One request and its reply on c; a remote error is rethrown; a broken connection closed.
Bytes exchange_on(multiprocessing::Connection& c, std::span<const std::byte> request) {
  Bytes reply;
  try {
    c.send_bytes(request);
    reply = c.recv_bytes();
  } catch (...) {
    c.close();
    throw;
  }
  if (reply.empty()) throw codec::DecodeError("empty reply from the manager");
  if (reply[0] == std::byte{kReplyError}) {
    concur::detail::rethrow(
        codec::decode<concur::detail::ExceptionInfo>(std::span<const std::byte>(reply).subspan(1)));
  }
  if (reply[0] != std::byte{kReplyOk}) throw codec::DecodeError("bad reply from the manager");
  return reply;
}
}  // namespace

Bytes ClientCore::roundtrip(std::span<const std::byte> request) {
  multiprocessing::Connection& c = connection();
  try {
    return exchange_on(c, request);
  } catch (...) {
    if (c.closed()) drop_this_thread();
    throw;
  }
}

multiprocessing::Connection& ClientCore::ref_connection() {
  const pid_t me = concur::detail::this_process_pid();
  if (ref_pid_ == me && !ref_conn_.closed()) return ref_conn_;
  if (shut_ && ref_pid_ == me) throw ValueError("the manager has been shut down");
  // A new connection: references held on the old one (the parent's, or one that broke,
  // which the server has dropped) are not ours any more.
  ref_fd_.store(-1);
  ref_conn_.close();
  ref_conn_ = connect_();
  ref_pid_ = me;
  shut_ = false;
  ++ref_gen_;
  ref_fd_.store(ref_conn_.fileno());
  return ref_conn_;
}

Bytes ClientCore::ref_roundtrip(std::span<const std::byte> request, std::uint64_t* gen) {
  MutexLock g(ref_mu_);
  multiprocessing::Connection& c = ref_connection();
  if (gen != nullptr) *gen = ref_gen_;
  Bytes reply = exchange_on(c, request);
  return reply;
}

std::shared_ptr<ProxyRef> ClientCore::create(const std::string& kind, const Bytes& init) {
  MutexLock g(ref_mu_);
  multiprocessing::Connection& c = ref_connection();
  Bytes reply = exchange_on(c, request(kControl, kCreate, kind, init));
  const auto id = codec::decode<std::uint32_t>(std::span<const std::byte>(reply).subspan(1));
  auto r = std::make_shared<ProxyRef>(shared_from_this(), id, true);
  r->gen = ref_gen_;
  r->holder.store(concur::detail::this_process_pid(), std::memory_order_release);
  return r;
}

void ClientCore::adopt(ProxyRef& r) {
  MutexLock g(ref_mu_);
  const pid_t me = concur::detail::this_process_pid();
  if (r.holder.load(std::memory_order_relaxed) == me) return;  // another copy's thread did it
  multiprocessing::Connection& c = ref_connection();
  (void)exchange_on(c, request(kControl, kIncref, r.id));
  r.gen = ref_gen_;
  r.holder.store(me, std::memory_order_release);
}

void ClientCore::release(ProxyRef& r) noexcept {
  try {
    MutexLock g(ref_mu_);
    const pid_t me = concur::detail::this_process_pid();
    if (r.holder.load(std::memory_order_relaxed) != me || ref_pid_ != me || r.gen != ref_gen_ ||
        shut_ || ref_conn_.closed())
      return;  // not ours to give back, or the server has it no more
    // Bounded: a destructor must not hang on a server that stopped answering. Past the
    // bound the reference connection is closed, which gives back all of them at once.
    constexpr auto kReleaseBound = std::chrono::seconds(10);
    ref_conn_.send_bytes(request(kControl, kDecref, r.id));
    if (!ref_conn_.recv_bytes_until(std::chrono::steady_clock::now() + kReleaseBound)) {
      ref_fd_.store(-1);
      ref_conn_.close();
    }
  } catch (...) {
    // the server is gone: nothing to give back
  }
}

void ClientCore::mark_shut() noexcept {
  MutexLock g(ref_mu_);
  shut_ = true;
  ref_pid_ = concur::detail::this_process_pid();
}

std::shared_ptr<ProxyRef> rebuild_proxy(const std::string& address, std::uint32_t id, bool counted) {
  auto r = std::make_shared<ProxyRef>(ClientCore::for_address(address), id, counted);
  r->ensure_held();
  return r;
}

// ---- server ----

struct ServerCore::State {
  struct Entry {
    std::shared_ptr<ServedObject> obj;
    std::uint64_t refs = 0;
    bool counted = false;  // manager-made: goes with its last reference
  };
  mutable Mutex mu;
  // id 0 (the control object) is never here
  std::unordered_map<std::uint32_t, Entry> objects CONCUR_GUARDED_BY(mu);
  std::uint32_t next_id CONCUR_GUARDED_BY(mu) = 1;
  std::size_t counted CONCUR_GUARDED_BY(mu) = 0;
  std::map<std::string, std::uint32_t, std::less<>> names CONCUR_GUARDED_BY(mu);

  std::shared_ptr<ServedObject> find(std::uint32_t id) {
    MutexLock g(mu);
    auto it = objects.find(id);
    return it == objects.end() ? nullptr : it->second.obj;
  }
  std::uint32_t add(std::shared_ptr<ServedObject> obj, bool counted_object)
      CONCUR_REQUIRES(mu) {
    if (next_id == 0) throw ValueError("the manager has run out of object ids");
    const std::uint32_t id = next_id++;
    objects.emplace(id, Entry{std::move(obj), 0, counted_object});
    if (counted_object) ++counted;
    return id;
  }
  // Under mu: one reference less on `it`; returns the object to destroy (outside mu) if it
  // was the last.
  std::shared_ptr<ServedObject> unref(std::unordered_map<std::uint32_t, Entry>::iterator it,
                                      std::uint64_t n) CONCUR_REQUIRES(mu) {
    it->second.refs -= n;
    if (it->second.refs != 0) return nullptr;
    std::shared_ptr<ServedObject> gone = std::move(it->second.obj);
    objects.erase(it);
    --counted;
    return gone;
  }
  void incref(Session& s, std::uint32_t id) {
    MutexLock g(mu);
    auto it = objects.find(id);
    if (it == objects.end()) throw ValueError("unknown object id " + std::to_string(id));
    if (!it->second.counted) return;  // registered: lives for ever
    ++it->second.refs;
    ++s.refs[id];
  }
  void decref(Session& s, std::uint32_t id) {
    std::shared_ptr<ServedObject> gone;
    {
      MutexLock g(mu);
      auto it = objects.find(id);
      if (it == objects.end()) throw ValueError("unknown object id " + std::to_string(id));
      if (!it->second.counted) return;
      auto mine = s.refs.find(id);
      if (mine == s.refs.end())
        throw ValueError("this connection holds no reference to object " + std::to_string(id));
      if (--mine->second == 0) s.refs.erase(mine);
      gone = unref(it, 1);
    }
  }
  // The connection closed: its references go.
  void drop(Session& s) noexcept {
    std::vector<std::shared_ptr<ServedObject>> gone;
    {
      MutexLock g(mu);
      for (const auto& [id, n] : s.refs) {
        auto it = objects.find(id);
        if (it == objects.end()) continue;
        if (auto o = unref(it, n)) gone.push_back(std::move(o));
      }
    }
    s.refs.clear();
  }
};

ServerCore::ServerCore() : s_(std::make_unique<State>()) {}
ServerCore::~ServerCore() = default;

std::uint32_t ServerCore::add(std::string name, std::shared_ptr<ServedObject> obj) {
  MutexLock g(s_->mu);
  if (!name.empty() && s_->names.count(name) != 0)
    throw ValueError("an object is already registered as '" + name + "'");
  const auto id = s_->add(std::move(obj), false);
  if (!name.empty()) s_->names.emplace(std::move(name), id);
  return id;
}

std::size_t ServerCore::number_of_objects() const {
  MutexLock g(s_->mu);
  return s_->counted;
}

void ServerCore::dispatch(std::span<const std::byte> request, Bytes& reply, bool& shutdown,
                          Session& session) {
  std::uint32_t object = 0;
  std::uint32_t method = 0;
  std::memcpy(&object, request.data(), 4);
  std::memcpy(&method, request.data() + 4, 4);
  const auto args = request.subspan(kRequestHeader);
  const std::size_t start = reply.size();
  reply.push_back(std::byte{kReplyOk});
  try {
    if (object == kControl) {
      switch (method) {
        case kLookup: {
          const auto [name] = codec::decode<std::tuple<std::string>>(args);
          LookupReply r;
          {
            MutexLock g(s_->mu);
            auto it = s_->names.find(name);
            if (it == s_->names.end()) throw KeyError(concur::detail::py_repr(name));
            r.id = it->second;
            const ServedObject& o = *s_->objects.at(r.id).obj;
            r.kind = o.kind;
            r.names = o.names;
          }
          codec::encode(r, reply);
          break;
        }
        case kCreate: {
          const auto [kind, init] = codec::decode<std::tuple<std::string, Bytes>>(args);
          Factory make = nullptr;
          {
            Factories& f = factories();
            MutexLock g(f.mu);
            auto it = f.by_kind.find(kind);
            if (it != f.by_kind.end()) make = it->second;
          }
          if (make == nullptr)
            throw ValueError("the manager's program cannot make objects of kind " + kind);
          std::shared_ptr<ServedObject> made = make(init);
          std::uint32_t id = 0;
          {
            MutexLock g(s_->mu);
            id = s_->add(std::move(made), true);
          }
          s_->incref(session, id);  // the creator's reference
          codec::encode(id, reply);
          break;
        }
        case kIncref: {
          const auto [id] = codec::decode<std::tuple<std::uint32_t>>(args);
          s_->incref(session, id);
          break;
        }
        case kDecref: {
          const auto [id] = codec::decode<std::tuple<std::uint32_t>>(args);
          s_->decref(session, id);
          break;
        }
        case kNumberOfObjects:
          (void)codec::decode<std::tuple<>>(args);
          codec::encode(static_cast<std::uint64_t>(number_of_objects()), reply);
          break;
        case kShutdown:
          (void)codec::decode<std::tuple<>>(args);
          shutdown = true;
          break;
        case kPing:
          (void)codec::decode<std::tuple<>>(args);
          break;
        default:
          throw ValueError("unknown manager method id " + std::to_string(method));
      }
      return;
    }
    std::shared_ptr<ServedObject> o = s_->find(object);
    if (!o) throw ValueError("unknown object id " + std::to_string(object));
    if (method >= o->methods.size())
      throw AttributeError("unknown method id " + std::to_string(method) + " of " + o->kind);
    if (o->serialize) {
      MutexLock g(o->call_mu);
      o->methods[method](args, reply);
    } else {
      o->methods[method](args, reply);
    }
  } catch (...) {
    reply.resize(start);
    reply.push_back(std::byte{kReplyError});
    codec::encode(concur::detail::describe(std::current_exception()), reply);
  }
}

void ServerCore::serve_connection(multiprocessing::Connection conn, const std::string& authkey) noexcept {
  try {
    if (!authkey.empty()) {
      const auto dl = concur::detail::Deadline::after(handshake_timeout);
      server_handshake(conn, authkey, dl);
    }
    Bytes reply;
    Session session;
    struct DropRefs {
      State& s;
      Session& session;
      ~DropRefs() { s.drop(session); }
    } drop_refs{*s_, session};
    for (;;) {
      // Between requests a client may stay idle for ever (Python keeps idle connections);
      // once the first byte of a request is here, the whole frame must follow within
      // frame_timeout, or this client is dropped (a stalled or slow frame must not hold a
      // server thread and its descriptor for ever).
      std::optional<Bytes> got = conn.recv_bytes_started_within(
          std::chrono::ceil<std::chrono::nanoseconds>(frame_timeout));
      if (!got) return;  // stalled in the middle of a frame
      const Bytes& req = *got;
      if (req.size() < kRequestHeader) return;  // garbage: drop this client
      reply.clear();
      bool shutdown = false;
      dispatch(req, reply, shutdown, session);
      conn.send_bytes(reply);
      if (shutdown) {
        if (on_shutdown) on_shutdown();
        return;
      }
    }
  } catch (...) {
    // EOF, a torn or oversized frame, a failed handshake: this connection ends here.
  }
}

}  // namespace concur::detail

namespace concur::multiprocessing {

void NamespaceProxy::fill(detail::ServedObject& o, Box& b) {
  auto& f = b.fields;
  auto missing = [](const std::string& name) {
    return AttributeError("'Namespace' object has no attribute " + concur::detail::py_repr(name));
  };
  o.serialize = true;
  o.def<void, std::string, detail::Bytes>("__setattr__", [&f](std::string& k, detail::Bytes& v) {
    f.insert_or_assign(k, std::move(v));
  });
  o.def<detail::Bytes, std::string>("__getattribute__", [&f, missing](std::string& k) {
    auto it = f.find(k);
    if (it == f.end()) throw missing(k);
    return it->second;
  });
  o.def<void, std::string>("__delattr__", [&f, missing](std::string& k) {
    if (f.erase(k) == 0) throw missing(k);
  });
  o.def<bool, std::string>("__contains__", [&f](std::string& k) { return f.count(k) != 0; });
  o.def<std::vector<std::string>>("fields", [&f] {
    std::vector<std::string> r;
    for (const auto& kv : f) r.push_back(kv.first);
    return r;
  });
}

}  // namespace concur::multiprocessing
