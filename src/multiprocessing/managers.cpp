// The manager's protocol: the server's registry and dispatch, the client's per-thread
// connections. The server process and its listener: manager_server.cpp.
#include "concur/multiprocessing/managers.hpp"

#include <atomic>
#include <cstring>
#include <unordered_map>

#include "concur/detail/fork.hpp"

namespace concur::detail {

namespace {

std::mutex& factories_mu() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, Factory, std::less<>>& factories() {
  static std::map<std::string, Factory, std::less<>> m;
  return m;
}

std::atomic<std::uint64_t> next_client_id{1};

// This thread's connections, by client core id. Replaced (the inherited ones closed) the
// first time a thread uses it after a fork.
struct ThreadConnections {
  unsigned long epoch = concur::detail::fork_epoch();
  std::unordered_map<std::uint64_t, multiprocessing::Connection> by_core;
  std::unordered_map<std::uint64_t, multiprocessing::Connection>& get() {
    const unsigned long now = concur::detail::fork_epoch();
    if (now != epoch) {
      by_core.clear();  // the parent's connections: closed here, untouched there
      epoch = now;
    }
    return by_core;
  }
};
ThreadConnections& thread_connections() {
  thread_local ThreadConnections tc;
  return tc;
}

}  // namespace

bool register_factory(std::string kind, Factory make) {
  std::lock_guard<std::mutex> g(factories_mu());
  factories().emplace(std::move(kind), make);
  return true;
}

std::size_t py_index(std::int64_t i, std::size_t n, const char* what) {
  const auto sn = static_cast<std::int64_t>(n);
  const std::int64_t at = i < 0 ? i + sn : i;
  if (at < 0 || at >= sn) throw IndexError(what);
  return static_cast<std::size_t>(at);
}

// ---- client ----

ClientCore::ClientCore(std::function<multiprocessing::Connection()> connect)
    : connect_(std::move(connect)), id_(next_client_id.fetch_add(1)) {}

ClientCore::~ClientCore() {
  drop_this_thread();
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

Bytes ClientCore::roundtrip(std::span<const std::byte> request) {
  multiprocessing::Connection& c = connection();
  Bytes reply;
  try {
    c.send_bytes(request);
    reply = c.recv_bytes();
  } catch (...) {
    drop_this_thread();
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

// ---- server ----

struct ServerCore::State {
  std::mutex mu;
  std::vector<std::shared_ptr<ServedObject>> objects{nullptr};  // [0]: the control object
  std::map<std::string, std::uint32_t, std::less<>> names;

  std::shared_ptr<ServedObject> find(std::uint32_t id) {
    std::lock_guard<std::mutex> g(mu);
    return id < objects.size() ? objects[id] : nullptr;
  }
};

ServerCore::ServerCore() : s_(std::make_unique<State>()) {}
ServerCore::~ServerCore() = default;

std::uint32_t ServerCore::add(std::string name, std::shared_ptr<ServedObject> obj) {
  std::lock_guard<std::mutex> g(s_->mu);
  if (!name.empty() && s_->names.count(name) != 0)
    throw ValueError("an object is already registered as '" + name + "'");
  const auto id = static_cast<std::uint32_t>(s_->objects.size());
  s_->objects.push_back(std::move(obj));
  if (!name.empty()) s_->names.emplace(std::move(name), id);
  return id;
}

void ServerCore::dispatch(std::span<const std::byte> request, Bytes& reply, bool& shutdown) {
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
            std::lock_guard<std::mutex> g(s_->mu);
            auto it = s_->names.find(name);
            if (it == s_->names.end()) throw KeyError(concur::detail::py_repr(name));
            r.id = it->second;
            r.kind = s_->objects[r.id]->kind;
            r.names = s_->objects[r.id]->names;
          }
          codec::encode(r, reply);
          break;
        }
        case kCreate: {
          const auto [kind, init] = codec::decode<std::tuple<std::string, Bytes>>(args);
          Factory make = nullptr;
          {
            std::lock_guard<std::mutex> g(factories_mu());
            auto it = factories().find(kind);
            if (it != factories().end()) make = it->second;
          }
          if (make == nullptr)
            throw ValueError("the manager's program cannot make objects of kind " + kind);
          const std::uint32_t id = add({}, make(init));
          codec::encode(id, reply);
          break;
        }
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
      std::lock_guard<std::mutex> g(o->call_mu);
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
    for (;;) {
      const Bytes req = conn.recv_bytes();
      if (req.size() < kRequestHeader) return;  // garbage: drop this client
      reply.clear();
      bool shutdown = false;
      dispatch(req, reply, shutdown);
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
