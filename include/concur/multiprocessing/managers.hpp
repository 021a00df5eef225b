// concur/multiprocessing/managers.hpp — Python's multiprocessing.managers: BaseManager, the
// SyncManager (concur's Manager) and the proxies through which processes use the objects a
// server process owns.
//
// A manager's server owns objects; a proxy is a copyable typed handle (object id + method
// ids) that sends each call to the server and waits for its reply:
//   request := object:u32 method:u32 args        (args: a codec message of std::tuple<A...>)
//   reply   := status:u8 body                    (0: the result's codec message, empty for
//                                                 void; 1: detail::ExceptionInfo)
// Dispatch is typed: the server looks the object up by id and the method by index in the
// table it built itself when the object was registered; nothing received is executed as
// code and no address or function pointer ever crosses the socket. Arguments are decoded
// with the codec's type tags, so arguments of other types than the method's parameters
// are a TypeError (sent back), never reinterpreted bytes.
//
// Server: every connection is served by its own thread, so a call that blocks in the server
// (a Queue get, a Lock acquire, an Event wait) blocks only its caller. Calls on one
// container object (Value, list, dict, Namespace, a user class) run one at a time (a mutex
// per object: they are not thread-safe); calls on the synchronization objects and queues
// run concurrently (they are). Every connection is authenticated first (HMAC-SHA256 in both
// directions, detail/ in connection.hpp); a connection that fails it, sends a frame shorter
// than a request header, a torn or oversized frame, or stalls in the handshake is dropped,
// and the others keep being served; so is one that starts a request frame and does not
// finish it within ManagerOptions::frame_timeout (an idle client, between requests, is kept
// for ever). Errors raised by a method travel back as the same type
// (detail/exception_transport.hpp) or RemoteError.
//
// start(): the server is a forked child (mp::Process, daemon): safe from a busy
// multi-threaded parent (the fork protocol of detail/fork.hpp). It dies with its parent —
// it watches the parent's pidfd, and PR_SET_PDEATHSIG(SIGTERM) is armed (then re-checked
// against getppid()) when the manager is started from the main thread — and in every case
// it removes its socket file before leaving. The default address is a private abstract Unix
// socket (no file at all).
//
// Client side: each thread of each process has its own connection to a server (Python's
// per-thread connections: an RLock or Condition acquired by a thread is owned by that
// thread's server thread), opened at the thread's first call and kept; a process forked
// after a proxy was made opens new connections there (fork epoch), never sharing the
// parent's. A server that dies or shuts down makes every call throw promptly: EOFError for
// a call in flight, OSError (ECONNREFUSED / ENOENT / EPIPE) for the next ones.
//
// Lifetime: a manager-made object lives while some process holds a proxy of it (Python's
// incref/decref, per process: see BaseProxy); BaseManager::number_of_objects() counts them.
// Nested mutation through a proxy is lost, as in Python: at(i) returns a copy.
//
// Thread-safety: proxies may be copied and used from any thread and any forked process.
// BaseManager's members must not race with each other (start/shutdown from two threads).
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "concur/detail/codec.hpp"
#include "concur/detail/deadline.hpp"
#include "concur/detail/exception_transport.hpp"
#include "concur/detail/fork.hpp"
#include "concur/detail/py_repr.hpp"
#include "concur/detail/thread_annotations.hpp"
#include "concur/errors.hpp"
#include "concur/multiprocessing/connection.hpp"
#include "concur/queue.hpp"
#include "concur/threading/barrier.hpp"
#include "concur/threading/condition.hpp"
#include "concur/threading/event.hpp"
#include "concur/threading/lock.hpp"
#include "concur/threading/semaphore.hpp"

namespace concur::multiprocessing {

// address: "" = a private (abstract) Unix socket; "/path" = a Unix socket file (mode 0600,
// removed at shutdown); "host:port" = TCP ("127.0.0.1:0" picks a free port).
// authkey: "" = a random key, inherited by forked children (Python's process authkey).
// frame_timeout: how long a client may take to finish sending a request once its first byte
// has reached the server; past it that client is dropped. A client that sends nothing
// between requests is idle and is kept for ever (as Python's server keeps it). 30 s lets a
// 1 GiB frame through at 35 MB/s and frees a stalled client's thread and descriptor.
struct ManagerOptions {
  std::string address{};
  std::string authkey{};
  std::chrono::duration<double> frame_timeout = std::chrono::seconds(30);
};

// Python's current_process().authkey: the key a Manager uses when its options give none,
// and the key a process presents for a proxy it received (through a Pipe, a Queue...) of a
// manager it does not otherwise know. 32 random bytes made once per program, before its
// first fork, so every forked child has its parent's key; set_process_authkey changes it
// for this process (and the children forked after). Thread-safe.
std::string process_authkey();
void set_process_authkey(std::string key);

}  // namespace concur::multiprocessing

namespace concur::detail {
using Bytes = std::vector<std::byte>;

inline constexpr std::size_t kRequestHeader = 8;
inline constexpr std::uint8_t kReplyOk = 0;
inline constexpr std::uint8_t kReplyError = 1;
// Object 0 is the server itself; its methods, by id.
inline constexpr std::uint32_t kControl = 0;
enum ControlMethod : std::uint32_t {
  kLookup = 0,
  kCreate = 1,
  kShutdown = 2,
  kPing = 3,
  kIncref = 4,           // (id): one more reference held by this connection
  kDecref = 5,           // (id): one less; the object goes with its last reference
  kNumberOfObjects = 6,  // () -> u64: manager-made objects alive
};

// One method of a served object: decodes its arguments (a codec message of the parameter
// tuple) and appends its result's codec message to `out` (nothing for void).
using Method = std::function<void(std::span<const std::byte> args, Bytes& out)>;

// Makes a Method from a callable taking exactly A... (decayed, as lvalues) and returning R.
template <class R, class... A, class F>
Method make_method(F f) {
  return [f = std::move(f)](std::span<const std::byte> args, Bytes& out) mutable {
    auto t = codec::decode<std::tuple<std::decay_t<A>...>>(args);
    if constexpr (std::is_void_v<R>) {
      std::apply(f, t);
    } else {
      const std::decay_t<R> r = std::apply(f, t);
      codec::encode(r, out);
    }
  };
}

// An object as the server sees it: its methods by id and their names, the proxy kind that
// speaks to it, and whether calls must be serialized. Built once, at registration.
struct ServedObject {
  std::string kind;                // the proxy type's name: get<P>() checks it
  std::vector<std::string> names;  // method names, by method id
  std::vector<Method> methods;
  std::shared_ptr<void> owner;  // keeps a manager-made object alive (null: the user's)
  bool serialize = false;       // one call at a time (objects that are not thread-safe)
  Mutex call_mu;                // taken around each call when serialize

  // Appends method `name` (its id is the count before): R f(A&...).
  template <class R, class... A, class F>
  void def(std::string name, F f) {
    names.push_back(std::move(name));
    methods.push_back(make_method<R, A...>(std::move(f)));
  }
};

template <class T>
std::string kind_of() {
  return std::string(codec::type_name<T>());
}

// The ServedObject for `object` spoken to by proxy P (P::fill builds the method table).
template <class P, class H>
std::shared_ptr<ServedObject> make_served(H& object, std::shared_ptr<void> owner) {
  auto o = std::make_shared<ServedObject>();
  o->kind = kind_of<P>();
  o->owner = std::move(owner);
  P::fill(*o, object);
  return o;
}

// Manager-made objects: the server makes them by kind from a table filled at static
// initialization (the same program on both sides; a client of another program can only make
// the kinds the server's program instantiated: ValueError otherwise).
using Factory = std::shared_ptr<ServedObject> (*)(std::span<const std::byte> init);
bool register_factory(std::string kind, Factory make);
template <class P>
std::shared_ptr<ServedObject> factory(std::span<const std::byte> init) {
  auto holder = P::construct(init);
  return make_served<P>(*holder, holder);
}
template <class P>
inline const bool factory_registered = register_factory(kind_of<P>(), &factory<P>);

// Timeouts cross the socket as nanoseconds, checked here (NaN: ValueError) and saturated
// (hours::max() -> INT64_MAX: the server's wait is forever). Negative stays negative: the
// server's object says what that means (ValueError for queues and locks, as in Python).
template <class Rep, class Period>
std::int64_t timeout_ns(std::chrono::duration<Rep, Period> d) {
  return concur::detail::ceil_ns(d);
}
inline std::chrono::nanoseconds ns(std::int64_t v) {
  return std::chrono::nanoseconds(v);
}

struct ProxyRef;

// The client side of one manager, shared by every proxy made from it (in every thread and
// every forked child). `connect` makes a new authenticated connection.
//
// References: each process holds its references to manager-made objects on one connection
// of its own (the "reference connection", made at its first create/incref, guarded by a
// mutex), so the server drops them all when that connection closes — when the process
// exits or is killed. A forked child gets a reference connection of its own (the inherited
// descriptor is replaced by /dev/null in the child at fork, so the parent's connection
// still closes when the parent dies).
class ClientCore : public std::enable_shared_from_this<ClientCore> {
 public:
  explicit ClientCore(std::function<multiprocessing::Connection()> connect,
                      std::string address = {});
  ~ClientCore();
  ClientCore(const ClientCore&) = delete;
  ClientCore& operator=(const ClientCore&) = delete;
  // A core for `address`, registered so that proxies received for that address in this
  // process share it (and its connections).
  static std::shared_ptr<ClientCore> make(std::function<multiprocessing::Connection()> connect,
                                          std::string address);
  // The core this process has for `address`, or a new one that presents process_authkey().
  static std::shared_ptr<ClientCore> for_address(const std::string& address);

  // Sends `request` on this thread's connection (made on first use, and again in a forked
  // child) and returns the whole reply after checking it: a remote error is rethrown as
  // its type. A broken connection is dropped (the next call reconnects) and its error
  // (EOFError / OSError) propagates.
  Bytes roundtrip(std::span<const std::byte> request);
  // Closes this thread's connection, if any.
  void drop_this_thread() noexcept;

  template <class R, class... A>
  R call(std::uint32_t object, std::uint32_t method, const A&... args) {
    Bytes req = request(object, method, args...);
    Bytes reply = roundtrip(req);
    if constexpr (!std::is_void_v<R>) {
      return codec::decode<R>(std::span<const std::byte>(reply).subspan(1));
    }
  }
  // The same on this process's reference connection.
  template <class R, class... A>
  R ref_call(std::uint32_t object, std::uint32_t method, const A&... args) {
    Bytes req = request(object, method, args...);
    Bytes reply = ref_roundtrip(req, nullptr);
    if constexpr (!std::is_void_v<R>) {
      return codec::decode<R>(std::span<const std::byte>(reply).subspan(1));
    }
  }

  // A new manager-made object; this process holds its one reference.
  std::shared_ptr<ProxyRef> create(const std::string& kind, const Bytes& init);
  // Takes this process's reference to r's object if it has none yet (a proxy inherited by
  // fork, or received). Errors of the round trip propagate (ValueError: the object is gone).
  void adopt(ProxyRef& r);
  // Gives up this process's reference of r (if it holds it). Never throws.
  void release(ProxyRef& r) noexcept;
  // After shutdown(): references are no longer given back (the server is gone).
  void mark_shut() noexcept;
  const std::string& address() const noexcept { return address_; }

 private:
  template <class... A>
  static Bytes request(std::uint32_t object, std::uint32_t method, const A&... args) {
    Bytes req(kRequestHeader);
    std::memcpy(req.data(), &object, 4);
    std::memcpy(req.data() + 4, &method, 4);
    codec::encode(std::tuple<std::decay_t<A>...>(args...), req);
    return req;
  }
  // Under ref_mu_: the reference connection of this process (made if needed); *gen, if
  // given, receives its generation.
  Bytes ref_roundtrip(std::span<const std::byte> request, std::uint64_t* gen);
  multiprocessing::Connection& ref_connection() CONCUR_REQUIRES(ref_mu_);
  multiprocessing::Connection& connection();
  std::function<multiprocessing::Connection()> connect_;
  std::uint64_t id_;
  std::string address_;
  Mutex ref_mu_;
  multiprocessing::Connection ref_conn_ CONCUR_GUARDED_BY(ref_mu_);
  pid_t ref_pid_ CONCUR_GUARDED_BY(ref_mu_) = 0;  // the process ref_conn_ belongs to
  std::uint64_t ref_gen_ CONCUR_GUARDED_BY(ref_mu_) = 0;  // bumped at each new connection
  bool shut_ CONCUR_GUARDED_BY(ref_mu_) = false;

 public:
  // For the fork handler: the reference connection's descriptor (-1: none).
  std::atomic<int> ref_fd_{-1};
};

// A proxy's hold on one object: shared by the copies of a proxy in one process. Its last
// copy in the process that holds the reference gives it back (one round trip).
struct ProxyRef {
  std::shared_ptr<ClientCore> core;
  std::uint32_t id = 0;
  bool counted = false;            // manager-made (registered objects live for ever)
  std::atomic<pid_t> holder{0};    // the process whose reference connection holds it
  std::uint64_t gen = 0;           // which reference connection of that process
  ProxyRef(std::shared_ptr<ClientCore> c, std::uint32_t i, bool cnt)
      : core(std::move(c)), id(i), counted(cnt) {}
  ProxyRef(const ProxyRef&) = delete;
  ProxyRef& operator=(const ProxyRef&) = delete;
  ~ProxyRef() {
    if (counted) core->release(*this);
  }
  // The caller's process holds a reference (taking one if it is a forked child or a
  // receiver that has none yet).
  void ensure_held() {
    if (counted && holder.load(std::memory_order_acquire) != concur::detail::this_process_pid())
      core->adopt(*this);
  }
};
// What connects to the manager at `address` and authenticates with `key` (a client's
// handshake is bounded: 10 s).
std::function<multiprocessing::Connection()> manager_connector(std::string address,
                                                               std::string key);
// A proxy received through the codec: its core in this process, its reference taken.
std::shared_ptr<ProxyRef> rebuild_proxy(const std::string& address, std::uint32_t id, bool counted);

// What the server answers to a lookup of a registered name.
struct LookupReply {
  std::uint32_t id = 0;
  std::string kind;
  std::vector<std::string> names;
  template <class Ar>
  void serialize(Ar& ar) {
    ar(id, kind, names);
  }
};

// The server: the registry of objects and the dispatch of requests, serving the connections
// it is given (from the manager's Listener, or a socketpair in tests). Thread-safe.
class ServerCore {
 public:
  ServerCore();
  ~ServerCore();
  ServerCore(const ServerCore&) = delete;
  ServerCore& operator=(const ServerCore&) = delete;
  // Registers an object under `name` ("" = anonymous); returns its id. ValueError if the
  // name is taken.
  std::uint32_t add(std::string name, std::shared_ptr<ServedObject> obj);
  // Serves one connection until it closes, sends garbage, or asks for shutdown (then
  // on_shutdown runs, after the reply went out). If `authkey` is not empty the HMAC
  // handshake runs first, bounded by handshake_timeout. Never throws.
  void serve_connection(multiprocessing::Connection conn, const std::string& authkey) noexcept;
  // The references one connection holds (dropped when it closes).
  struct Session {
    std::unordered_map<std::uint32_t, std::uint64_t> refs;
  };
  // Answers one request of at least kRequestHeader bytes: appends the reply.
  void dispatch(std::span<const std::byte> request, Bytes& reply, bool& shutdown,
                Session& session);
  // Manager-made objects alive (Python's _number_of_objects()).
  std::size_t number_of_objects() const;
  std::function<void()> on_shutdown;
  std::chrono::milliseconds handshake_timeout{5000};
  // How long a request frame may take once its first byte is here (ManagerOptions).
  std::chrono::duration<double> frame_timeout{30.0};

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// The HMAC handshake of each side (connection.hpp's challenge functions, in Python's order:
// the server delivers first). AuthenticationError for a wrong key.
void server_handshake(multiprocessing::Connection& c, const std::string& key, concur::detail::Deadline dl);
void client_handshake(multiprocessing::Connection& c, const std::string& key, concur::detail::Deadline dl);

// Python-style index into a sequence of n: negative counts from the end; IndexError(what).
std::size_t py_index(std::int64_t i, std::size_t n, const char* what);
// str(KeyError(key)) for the key types that have a Python repr; "key not found" otherwise.
template <class K>
std::string key_repr(const K& k) {
  if constexpr (std::is_same_v<K, std::string>) {
    return concur::detail::py_repr(k);
  } else if constexpr (std::is_integral_v<K>) {
    return std::to_string(k);
  } else {
    return "key not found";
  }
}
}  // namespace concur::detail

namespace concur::multiprocessing {

// methods("inc", &Counter::inc, "get", &Counter::get): a user class's methods for
// BaseManager::register_object; each name is followed by a member function pointer.
template <class... X>
struct MethodList {
  std::tuple<X...> items;
};
template <class... X>
MethodList<std::decay_t<X>...> methods(X&&... x) {
  static_assert(sizeof...(X) % 2 == 0, "methods(\"name\", &C::m, \"name\", &C::m, ...)");
  return {std::tuple<std::decay_t<X>...>(std::forward<X>(x)...)};
}

// ---- proxies ----

// What every proxy holds: its reference to one object of a manager (shared by its copies in
// a process). Copyable: copies share the reference and the manager connection of each
// thread. A default-constructed proxy is unbound (every call throws ValueError).
//
// Lifetime (Python's incref/decref): a manager-made object lives while some process holds a
// proxy of it. Each process holds at most one reference per object, however many copies it
// has; the last copy in that process gives it back. A forked child takes its own reference
// at its first call through an inherited proxy; a process that receives a proxy (through a
// Pipe or Queue: proxies are sendable) takes one when it decodes it. Until then the
// sender's or parent's reference keeps the object, so keep a proxy until the other side
// has used it (as in Python). A process that dies gives its references back with its
// connection. Objects registered by name are never freed.
//
// Sending a proxy sends the manager's address and the object's id — never a key: the
// receiver connects with the key of the manager it already has for that address (its own
// or inherited), else with its process_authkey(), as Python's RebuildProxy does with
// current_process().authkey. A wrong key is AuthenticationError from recv().
class BaseProxy {
 public:
  BaseProxy() = default;
  explicit BaseProxy(std::shared_ptr<detail::ProxyRef> ref) : ref_(std::move(ref)) {}
  BaseProxy(std::shared_ptr<detail::ClientCore> core, const detail::LookupReply& r)
      : ref_(std::make_shared<detail::ProxyRef>(std::move(core), r.id, false)) {}
  std::uint32_t id() const noexcept { return ref_ ? ref_->id : 0; }
  bool bound() const noexcept { return ref_ != nullptr; }

  // The codec's form (address, id, whether counted). ValueError for an unbound proxy or one
  // of a manager without an address.
  template <class Ar>
  void save(Ar& ar) const {
    if (!ref_) throw ValueError("an unbound proxy cannot be sent");
    if (ref_->core->address().empty())
      throw ValueError("a proxy of a manager without an address cannot be sent");
    ar(ref_->core->address(), ref_->id, ref_->counted);
  }
  template <class Ar>
  void load(Ar& ar) {
    std::string address;
    std::uint32_t id = 0;
    bool counted = false;
    ar(address, id, counted);
    ref_ = detail::rebuild_proxy(address, id, counted);
  }

 protected:
  template <class R, class... A>
  R invoke(std::uint32_t method, const A&... args) const {
    if (!ref_) throw ValueError("proxy is not bound to a manager");
    ref_->ensure_held();
    return ref_->core->template call<R>(ref_->id, method, args...);
  }
  std::shared_ptr<detail::ProxyRef> ref_;
};

// Python's ValueProxy: value() / get(), set(v). Nested mutation is lost (value() is a copy).
template <class T>
class ValueProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  T value() const { return invoke<T>(0); }
  T get() const { return value(); }
  void set(const T& v) const { invoke<void>(1, v); }

  struct Box {
    T value{};
  };
  static std::shared_ptr<Box> construct(std::span<const std::byte> init) {
    auto b = std::make_shared<Box>();
    b->value = detail::codec::decode<T>(init);
    return b;
  }
  static void fill(detail::ServedObject& o, Box& b) {
    o.serialize = true;
    o.def<T>("get", [&b] { return b.value; });
    o.def<void, T>("set", [&b](T& v) { b.value = std::move(v); });
  }
};

// Python's ListProxy of a std::vector<T>. Indices are Python's (negative from the end);
// bulk operations (extend, to_vector) are one round trip.
template <class T>
class ListProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  void append(const T& v) const { invoke<void>(0, v); }
  void extend(const std::vector<T>& v) const { invoke<void>(1, v); }
  void insert(std::int64_t i, const T& v) const { invoke<void>(2, i, v); }
  // Removes and returns item i (default the last). IndexError("pop from empty list") /
  // ("pop index out of range").
  T pop(std::int64_t i = -1) const { return invoke<T>(3, i); }
  // A copy of item i. IndexError("list index out of range").
  T at(std::int64_t i) const { return invoke<T>(4, i); }
  T operator[](std::int64_t i) const { return at(i); }
  // IndexError("list assignment index out of range").
  void set(std::int64_t i, const T& v) const { invoke<void>(5, i, v); }
  std::size_t size() const { return static_cast<std::size_t>(invoke<std::uint64_t>(6)); }
  std::vector<T> to_vector() const { return invoke<std::vector<T>>(7); }
  void clear() const { invoke<void>(8); }
  // Removes the first item equal to v: ValueError("list.remove(x): x not in list").
  void remove(const T& v) const { invoke<void>(9, v); }
  // ValueError("x is not in list") if absent.
  std::size_t index(const T& v) const {
    return static_cast<std::size_t>(invoke<std::uint64_t>(10, v));
  }
  std::size_t count(const T& v) const {
    return static_cast<std::size_t>(invoke<std::uint64_t>(11, v));
  }

  struct Box {
    std::vector<T> items;
  };
  static std::shared_ptr<Box> construct(std::span<const std::byte> init) {
    auto b = std::make_shared<Box>();
    b->items = detail::codec::decode<std::vector<T>>(init);
    return b;
  }
  static void fill(detail::ServedObject& o, Box& b) {
    using detail::py_index;
    auto& v = b.items;
    o.serialize = true;
    o.def<void, T>("append", [&v](T& x) { v.push_back(std::move(x)); });
    o.def<void, std::vector<T>>("extend", [&v](std::vector<T>& x) {
      v.insert(v.end(), std::make_move_iterator(x.begin()), std::make_move_iterator(x.end()));
    });
    o.def<void, std::int64_t, T>("insert", [&v](std::int64_t& i, T& x) {
      const auto n = static_cast<std::int64_t>(v.size());
      std::int64_t at = i < 0 ? i + n : i;
      at = at < 0 ? 0 : at > n ? n : at;
      v.insert(v.begin() + at, std::move(x));
    });
    o.def<T, std::int64_t>("pop", [&v](std::int64_t& i) {
      if (v.empty()) throw IndexError("pop from empty list");
      const std::size_t at = py_index(i, v.size(), "pop index out of range");
      T x = std::move(v[at]);
      v.erase(v.begin() + static_cast<std::ptrdiff_t>(at));
      return x;
    });
    o.def<T, std::int64_t>("at", [&v](std::int64_t& i) {
      return v[py_index(i, v.size(), "list index out of range")];
    });
    o.def<void, std::int64_t, T>("set", [&v](std::int64_t& i, T& x) {
      v[py_index(i, v.size(), "list assignment index out of range")] = std::move(x);
    });
    o.def<std::uint64_t>("size", [&v] { return static_cast<std::uint64_t>(v.size()); });
    o.def<std::vector<T>>("to_vector", [&v] { return v; });
    o.def<void>("clear", [&v] { v.clear(); });
    if constexpr (std::equality_comparable<T>) {
      o.def<void, T>("remove", [&v](T& x) {
        for (auto it = v.begin(); it != v.end(); ++it) {
          if (*it == x) {
            v.erase(it);
            return;
          }
        }
        throw ValueError("list.remove(x): x not in list");
      });
      o.def<std::uint64_t, T>("index", [&v](T& x) {
        for (std::size_t i = 0; i < v.size(); ++i)
          if (v[i] == x) return static_cast<std::uint64_t>(i);
        throw ValueError("x is not in list");
      });
      o.def<std::uint64_t, T>("count", [&v](T& x) {
        std::uint64_t c = 0;
        for (const T& y : v) c += (y == x) ? 1 : 0;
        return c;
      });
    } else {
      for (const char* m : {"remove", "index", "count"})
        o.def<void>(m, [] { throw TypeError("list items are not equality-comparable"); });
    }
  }
};

// Python's ArrayProxy (manager.Array(typecode, sequence)): a fixed-length sequence. at/set
// take Python indices (IndexError: "array index out of range" from at, "array assignment
// index out of range" from set); assign replaces every item
// (ValueError if the length differs); to_vector is one round trip.
template <class T>
class ArrayProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  T at(std::int64_t i) const { return invoke<T>(0, i); }
  T operator[](std::int64_t i) const { return at(i); }
  void set(std::int64_t i, const T& v) const { invoke<void>(1, i, v); }
  std::size_t size() const { return static_cast<std::size_t>(invoke<std::uint64_t>(2)); }
  std::vector<T> to_vector() const { return invoke<std::vector<T>>(3); }
  void assign(const std::vector<T>& v) const { invoke<void>(4, v); }

  struct Box {
    std::vector<T> items;
  };
  static std::shared_ptr<Box> construct(std::span<const std::byte> init) {
    auto b = std::make_shared<Box>();
    b->items = detail::codec::decode<std::vector<T>>(init);
    return b;
  }
  static void fill(detail::ServedObject& o, Box& b) {
    using detail::py_index;
    auto& v = b.items;
    o.serialize = true;
    o.def<T, std::int64_t>("__getitem__", [&v](std::int64_t& i) {
      return v[py_index(i, v.size(), "array index out of range")];
    });
    o.def<void, std::int64_t, T>("__setitem__", [&v](std::int64_t& i, T& x) {
      v[py_index(i, v.size(), "array assignment index out of range")] = std::move(x);
    });
    o.def<std::uint64_t>("__len__", [&v] { return static_cast<std::uint64_t>(v.size()); });
    o.def<std::vector<T>>("tolist", [&v] { return v; });
    o.def<void, std::vector<T>>("assign", [&v](std::vector<T>& x) {
      if (x.size() != v.size()) throw ValueError("can only assign an array of the same length");
      v = std::move(x);
    });
  }
};

// Python's DictProxy, over a std::map<K, V> (keys in order). Bulk operations (update,
// to_map, keys, values) are one round trip.
template <class K, class V>
class DictProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  void set(const K& k, const V& v) const { invoke<void>(0, k, v); }
  // A copy of d[k]: KeyError(repr(k)) if absent.
  V at(const K& k) const { return invoke<V>(1, k); }
  V operator[](const K& k) const { return at(k); }
  std::optional<V> get(const K& k) const { return invoke<std::optional<V>>(2, k); }
  bool contains(const K& k) const { return invoke<bool>(3, k); }
  // del d[k]: KeyError if absent.
  void erase(const K& k) const { invoke<void>(4, k); }
  std::size_t size() const { return static_cast<std::size_t>(invoke<std::uint64_t>(5)); }
  std::vector<K> keys() const { return invoke<std::vector<K>>(6); }
  std::map<K, V> to_map() const { return invoke<std::map<K, V>>(7); }
  void update(const std::map<K, V>& m) const { invoke<void>(8, m); }
  void clear() const { invoke<void>(9); }
  // Removes and returns d[k]: KeyError if absent.
  V pop(const K& k) const { return invoke<V>(10, k); }
  std::vector<V> values() const { return invoke<std::vector<V>>(11); }
  // d.setdefault(k, v): the value now under k.
  V setdefault(const K& k, const V& v) const { return invoke<V>(12, k, v); }

  struct Box {
    std::map<K, V> items;
  };
  static std::shared_ptr<Box> construct(std::span<const std::byte> init) {
    auto b = std::make_shared<Box>();
    b->items = detail::codec::decode<std::map<K, V>>(init);
    return b;
  }
  static void fill(detail::ServedObject& o, Box& b) {
    auto& m = b.items;
    auto find = [&m](const K& k) {
      auto it = m.find(k);
      if (it == m.end()) throw KeyError(detail::key_repr(k));
      return it;
    };
    o.serialize = true;
    o.def<void, K, V>("__setitem__",
                      [&m](K& k, V& v) { m.insert_or_assign(std::move(k), std::move(v)); });
    o.def<V, K>("__getitem__", [find](K& k) { return find(k)->second; });
    o.def<std::optional<V>, K>("get", [&m](K& k) {
      auto it = m.find(k);
      return it == m.end() ? std::optional<V>() : std::optional<V>(it->second);
    });
    o.def<bool, K>("__contains__", [&m](K& k) { return m.count(k) != 0; });
    o.def<void, K>("__delitem__", [&m, find](K& k) { m.erase(find(k)); });
    o.def<std::uint64_t>("__len__", [&m] { return static_cast<std::uint64_t>(m.size()); });
    o.def<std::vector<K>>("keys", [&m] {
      std::vector<K> r;
      r.reserve(m.size());
      for (const auto& kv : m) r.push_back(kv.first);
      return r;
    });
    o.def<std::map<K, V>>("copy", [&m] { return m; });
    o.def<void, std::map<K, V>>("update", [&m](std::map<K, V>& u) {
      for (auto& kv : u) m.insert_or_assign(kv.first, std::move(kv.second));
    });
    o.def<void>("clear", [&m] { m.clear(); });
    o.def<V, K>("pop", [&m, find](K& k) {
      auto it = find(k);
      V v = std::move(it->second);
      m.erase(it);
      return v;
    });
    o.def<std::vector<V>>("values", [&m] {
      std::vector<V> r;
      r.reserve(m.size());
      for (const auto& kv : m) r.push_back(kv.second);
      return r;
    });
    o.def<V, K, V>("setdefault", [&m](K& k, V& v) {
      return m.try_emplace(std::move(k), std::move(v)).first->second;
    });
  }
};

// A proxy to a concur::queue::Queue<T> (or LifoQueue/PriorityQueue registered by the user):
// queue::Queue's methods, blocking only the caller. Timeouts: any duration (negative:
// ValueError from the server's queue; hours::max(): forever; NaN: ValueError here).
template <class T>
class QueueProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  void put(const T& v) const { invoke<void>(0, v); }
  template <class Rep, class Period>
  void put(const T& v, std::chrono::duration<Rep, Period> timeout) const {
    invoke<void>(1, v, detail::timeout_ns(timeout));
  }
  void put_nowait(const T& v) const { invoke<void>(2, v); }
  T get() const { return invoke<T>(3); }
  // queue::Empty on timeout.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) const {
    return invoke<T>(4, detail::timeout_ns(timeout));
  }
  T get_nowait() const { return invoke<T>(5); }
  [[nodiscard]] std::optional<T> try_get() const { return invoke<std::optional<T>>(6); }
  template <class Rep, class Period>
  [[nodiscard]] std::optional<T> try_get(std::chrono::duration<Rep, Period> timeout) const {
    return invoke<std::optional<T>>(7, detail::timeout_ns(timeout));
  }
  std::size_t qsize() const { return static_cast<std::size_t>(invoke<std::uint64_t>(8)); }
  bool empty() const { return invoke<bool>(9); }
  bool full() const { return invoke<bool>(10); }
  void task_done() const { invoke<void>(11); }
  void join() const { invoke<void>(12); }
  template <class Rep, class Period>
  [[nodiscard]] bool join(std::chrono::duration<Rep, Period> timeout) const {
    return invoke<bool>(13, detail::timeout_ns(timeout));
  }
  std::size_t maxsize() const { return static_cast<std::size_t>(invoke<std::uint64_t>(14)); }
  // Python 3.13's Queue.shutdown(immediate).
  void shutdown(bool immediate = false) const { invoke<void>(15, immediate); }

  static std::shared_ptr<queue::Queue<T>> construct(std::span<const std::byte> init) {
    return std::make_shared<queue::Queue<T>>(
        static_cast<std::size_t>(detail::codec::decode<std::uint64_t>(init)));
  }
  template <class Q>
  static void fill(detail::ServedObject& o, Q& q) {
    using detail::ns;
    o.def<void, T>("put", [&q](T& v) { q.put(std::move(v)); });
    o.def<void, T, std::int64_t>("put_timeout",
                                 [&q](T& v, std::int64_t& t) { q.put(std::move(v), ns(t)); });
    o.def<void, T>("put_nowait", [&q](T& v) { q.put_nowait(std::move(v)); });
    o.def<T>("get", [&q] { return q.get(); });
    o.def<T, std::int64_t>("get_timeout", [&q](std::int64_t& t) { return q.get(ns(t)); });
    o.def<T>("get_nowait", [&q] { return q.get_nowait(); });
    o.def<std::optional<T>>("try_get", [&q] { return q.try_get(); });
    o.def<std::optional<T>, std::int64_t>("try_get_timeout",
                                          [&q](std::int64_t& t) { return q.try_get(ns(t)); });
    o.def<std::uint64_t>("qsize", [&q] { return static_cast<std::uint64_t>(q.qsize()); });
    o.def<bool>("empty", [&q] { return q.empty(); });
    o.def<bool>("full", [&q] { return q.full(); });
    o.def<void>("task_done", [&q] { q.task_done(); });
    o.def<void>("join", [&q] { q.join(); });
    o.def<bool, std::int64_t>("join_timeout", [&q](std::int64_t& t) { return q.join(ns(t)); });
    o.def<std::uint64_t>("maxsize", [&q] { return static_cast<std::uint64_t>(q.maxsize()); });
    o.def<void, bool>("shutdown", [&q](bool& immediate) { q.shutdown(immediate); });
  }
};

}  // namespace concur::multiprocessing

namespace concur::detail {
// Python's AcquirerProxy: acquire/release and the Lockable names, for a server-side L.
template <class Derived, class L>
class AcquirerProxy : public multiprocessing::BaseProxy {
 public:
  using multiprocessing::BaseProxy::BaseProxy;
  bool acquire(bool blocking = true) const { return invoke<bool>(0, blocking); }
  template <class Rep, class Period>
  [[nodiscard]] bool acquire(std::chrono::duration<Rep, Period> timeout) const {
    return invoke<bool>(1, timeout_ns(timeout));
  }
  void lock() const { (void)acquire(true); }
  [[nodiscard]] bool try_lock() const { return acquire(false); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> d) const {
    return acquire(d);
  }
  void unlock() const { static_cast<const Derived*>(this)->release(); }

  static std::shared_ptr<L> construct(std::span<const std::byte>) { return std::make_shared<L>(); }
  static void fill_acquire(ServedObject& o, L& l) {
    o.def<bool, bool>("acquire", [&l](bool& b) { return l.acquire(b); });
    o.def<bool, std::int64_t>("acquire_timeout",
                              [&l](std::int64_t& t) { return l.acquire(ns(t)); });
  }
};
}  // namespace concur::detail

namespace concur::multiprocessing {

// Proxies of threading's locks held by the server (Lockable: std::lock_guard works).
// A Lock may be released by any client (as threading.Lock); an RLock only by the thread
// that acquired it (its server thread is that client thread's).
class LockProxy : public detail::AcquirerProxy<LockProxy, threading::Lock> {
 public:
  using AcquirerProxy::AcquirerProxy;
  void release() const { invoke<void>(2); }
  bool locked() const { return invoke<bool>(3); }
  static void fill(detail::ServedObject& o, threading::Lock& l) {
    fill_acquire(o, l);
    o.def<void>("release", [&l] { l.release(); });
    o.def<bool>("locked", [&l] { return l.locked(); });
  }
};
class RLockProxy : public detail::AcquirerProxy<RLockProxy, threading::RLock> {
 public:
  using AcquirerProxy::AcquirerProxy;
  void release() const { invoke<void>(2); }
  static void fill(detail::ServedObject& o, threading::RLock& l) {
    fill_acquire(o, l);
    o.def<void>("release", [&l] { l.release(); });
  }
};
template <class S>
class BasicSemaphoreProxy : public detail::AcquirerProxy<BasicSemaphoreProxy<S>, S> {
  using Base = detail::AcquirerProxy<BasicSemaphoreProxy<S>, S>;

 public:
  using Base::Base;
  // ValueError("Semaphore released too many times") past a BoundedSemaphore's bound.
  void release(int n = 1) const { this->template invoke<void>(2, n); }
  int value() const { return this->template invoke<int>(3); }
  static std::shared_ptr<S> construct(std::span<const std::byte> init) {
    return std::make_shared<S>(detail::codec::decode<int>(init));
  }
  static void fill(detail::ServedObject& o, S& s) {
    Base::fill_acquire(o, s);
    o.def<void, int>("release", [&s](int& n) { s.release(n); });
    o.def<int>("get_value", [&s] { return s.value(); });
  }
};
using SemaphoreProxy = BasicSemaphoreProxy<threading::Semaphore>;
using BoundedSemaphoreProxy = BasicSemaphoreProxy<threading::BoundedSemaphore>;

// Python's EventProxy.
class EventProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  bool is_set() const { return invoke<bool>(0); }
  void set() const { invoke<void>(1); }
  void clear() const { invoke<void>(2); }
  bool wait() const { return invoke<bool>(3); }
  template <class Rep, class Period>
  [[nodiscard]] bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return invoke<bool>(4, detail::timeout_ns(timeout));
  }
  static std::shared_ptr<threading::Event> construct(std::span<const std::byte>) {
    return std::make_shared<threading::Event>();
  }
  static void fill(detail::ServedObject& o, threading::Event& e) {
    o.def<bool>("is_set", [&e] { return e.is_set(); });
    o.def<void>("set", [&e] { e.set(); });
    o.def<void>("clear", [&e] { e.clear(); });
    o.def<bool>("wait", [&e] { return e.wait(); });
    o.def<bool, std::int64_t>("wait_timeout",
                              [&e](std::int64_t& t) { return e.wait(detail::ns(t)); });
  }
};

// Python's ConditionProxy (its own RLock in the server). wait_for runs the predicate here,
// in the caller, between waits — as Python's proxy does.
class ConditionProxy : public detail::AcquirerProxy<ConditionProxy, threading::Condition> {
 public:
  using AcquirerProxy::AcquirerProxy;
  void release() const { invoke<void>(2); }
  void wait() const { invoke<void>(3); }
  template <class Rep, class Period>
  [[nodiscard]] bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return invoke<bool>(4, detail::timeout_ns(timeout));
  }
  void notify(int n = 1) const { invoke<void>(5, n); }
  void notify_all() const { invoke<void>(6); }
  template <class Pred>
  bool wait_for(Pred pred) const {
    bool r = pred();
    while (!r) {
      wait();
      r = pred();
    }
    return r;
  }
  template <class Pred, class Rep, class Period>
  bool wait_for(Pred pred, std::chrono::duration<Rep, Period> timeout) const {
    const auto dl = concur::detail::Deadline::after(timeout);
    bool r = pred();
    while (!r) {
      if (dl.expired()) break;
      (void)wait(dl.is_forever() ? std::chrono::nanoseconds::max() : dl.remaining());
      r = pred();
    }
    return r;
  }
  static void fill(detail::ServedObject& o, threading::Condition& c) {
    fill_acquire(o, c);
    o.def<void>("release", [&c] { c.release(); });
    o.def<void>("wait", [&c] { c.wait(); });
    o.def<bool, std::int64_t>("wait_timeout",
                              [&c](std::int64_t& t) { return c.wait(detail::ns(t)); });
    o.def<void, int>("notify", [&c](int& n) { c.notify(n); });
    o.def<void>("notify_all", [&c] { c.notify_all(); });
  }
};

// Python's BarrierProxy. threading::BrokenBarrierError travels back as itself.
class BarrierProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  int wait() const { return invoke<int>(0); }
  template <class Rep, class Period>
  int wait(std::chrono::duration<Rep, Period> timeout) const {
    return invoke<int>(1, detail::timeout_ns(timeout));
  }
  void reset() const { invoke<void>(2); }
  void abort() const { invoke<void>(3); }
  bool broken() const { return invoke<bool>(4); }
  int parties() const { return invoke<int>(5); }
  int n_waiting() const { return invoke<int>(6); }
  static std::shared_ptr<threading::Barrier> construct(std::span<const std::byte> init) {
    const auto parties = detail::codec::decode<std::uint64_t>(init);
    if (parties == 0 || parties > static_cast<std::uint64_t>(INT32_MAX))
      throw ValueError("parties must be >= 1");
    return std::make_shared<threading::Barrier>(static_cast<int>(parties));
  }
  static void fill(detail::ServedObject& o, threading::Barrier& b) {
    o.def<int>("wait", [&b] { return b.wait(); });
    o.def<int, std::int64_t>("wait_timeout",
                             [&b](std::int64_t& t) { return b.wait(detail::ns(t)); });
    o.def<void>("reset", [&b] { b.reset(); });
    o.def<void>("abort", [&b] { b.abort(); });
    o.def<bool>("broken", [&b] { return b.broken(); });
    o.def<int>("parties", [&b] { return b.parties(); });
    o.def<int>("n_waiting", [&b] { return b.n_waiting(); });
  }
};

// Python's Namespace: named fields of any sendable type. get<T> of a field set as another
// type is TypeError; of a missing field AttributeError.
class NamespaceProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  template <class T>
  void set(const std::string& field, const T& v) const {
    detail::Bytes b;
    detail::codec::encode(v, b);
    invoke<void>(0, field, b);
  }
  template <class T>
  T get(const std::string& field) const {
    return detail::codec::decode<T>(invoke<detail::Bytes>(1, field));
  }
  // delattr: AttributeError if missing.
  void erase(const std::string& field) const { invoke<void>(2, field); }
  bool contains(const std::string& field) const { return invoke<bool>(3, field); }
  std::vector<std::string> fields() const { return invoke<std::vector<std::string>>(4); }

  struct Box {
    std::map<std::string, detail::Bytes> fields;
  };
  static std::shared_ptr<Box> construct(std::span<const std::byte>) {
    return std::make_shared<Box>();
  }
  static void fill(detail::ServedObject& o, Box& b);
};

// A proxy to a user object registered with methods(...): call<R>("name", args...) calls the
// method registered under that name. The arguments must have the method's parameter types
// (after decay; TypeError otherwise) and R its return type; AttributeError for a name that
// was not registered.
template <class C>
class Proxy : public BaseProxy {
 public:
  Proxy() = default;
  Proxy(std::shared_ptr<detail::ClientCore> core, const detail::LookupReply& r)
      : BaseProxy(std::move(core), r),
        names_(std::make_shared<const std::vector<std::string>>(r.names)) {}
  template <class Ar>
  void save(Ar& ar) const {
    BaseProxy::save(ar);
    ar(*names_);
  }
  template <class Ar>
  void load(Ar& ar) {
    BaseProxy::load(ar);
    std::vector<std::string> names;
    ar(names);
    names_ = std::make_shared<const std::vector<std::string>>(std::move(names));
  }
  template <class R, class... A>
  R call(std::string_view method, const A&... args) const {
    if (names_) {
      for (std::size_t i = 0; i < names_->size(); ++i)
        if ((*names_)[i] == method) return invoke<R>(static_cast<std::uint32_t>(i), args...);
    }
    throw AttributeError("'" + std::string(concur::detail::unqualified(detail::kind_of<C>())) +
                         "' proxy has no method '" + std::string(method) + "'");
  }
  const std::vector<std::string>& method_names() const {
    static const std::vector<std::string> none;
    return names_ ? *names_ : none;
  }

 private:
  std::shared_ptr<const std::vector<std::string>> names_;
};

}  // namespace concur::multiprocessing

namespace concur::detail {
// The proxy kind that serves a registered object of type T (the built-in servable types).
template <class T>
struct proxy_for;
template <class T>
struct proxy_for<queue::Queue<T>> {
  using type = multiprocessing::QueueProxy<T>;
};
template <class T>
struct proxy_for<queue::LifoQueue<T>> {
  using type = multiprocessing::QueueProxy<T>;
};
template <class T, class C>
struct proxy_for<queue::PriorityQueue<T, C>> {
  using type = multiprocessing::QueueProxy<T>;
};
template <>
struct proxy_for<threading::Lock> {
  using type = multiprocessing::LockProxy;
};
template <>
struct proxy_for<threading::RLock> {
  using type = multiprocessing::RLockProxy;
};
template <>
struct proxy_for<threading::Semaphore> {
  using type = multiprocessing::SemaphoreProxy;
};
template <>
struct proxy_for<threading::BoundedSemaphore> {
  using type = multiprocessing::BoundedSemaphoreProxy;
};
template <>
struct proxy_for<threading::Event> {
  using type = multiprocessing::EventProxy;
};
template <>
struct proxy_for<threading::Condition> {
  using type = multiprocessing::ConditionProxy;
};
template <>
struct proxy_for<threading::Barrier> {
  using type = multiprocessing::BarrierProxy;
};

// A member function pointer's class, result and parameters.
template <class M>
struct member_fn;
#define CONCUR_MEMBER_FN(QUAL)            \
  template <class C, class R, class... A> \
  struct member_fn<R (C::*)(A...) QUAL> { \
    using cls = C;                        \
    using ret = R;                        \
    using args = std::tuple<A...>;        \
  };
CONCUR_MEMBER_FN()
CONCUR_MEMBER_FN(const)
CONCUR_MEMBER_FN(noexcept)
CONCUR_MEMBER_FN(const noexcept)
#undef CONCUR_MEMBER_FN

// A decoded argument handed to a parameter of type A: an lvalue for a non-const reference,
// moved otherwise.
template <class A, class V>
decltype(auto) pass_arg(V& v) {
  if constexpr (std::is_lvalue_reference_v<A> && !std::is_const_v<std::remove_reference_t<A>>)
    return (v);
  else
    return std::move(v);
}
template <class R, class... A, class C, class M>
Method bind_member(C& obj, M m, std::tuple<A...>*) {
  return make_method<R, A...>(
      [&obj, m](std::decay_t<A>&... a) -> R { return (obj.*m)(pass_arg<A>(a)...); });
}
// The method table of a user object from methods("name", &C::m, ...).
template <class C, class Tuple, std::size_t... I>
void fill_user(ServedObject& o, C& obj, const Tuple& t, std::index_sequence<I...>) {
  (
      [&] {
        auto m = std::get<2 * I + 1>(t);
        using F = member_fn<decltype(m)>;
        static_assert(std::is_base_of_v<typename F::cls, C>,
                      "methods(...): a member function of the registered object's class");
        o.names.emplace_back(std::get<2 * I>(t));
        o.methods.push_back(
            bind_member<typename F::ret>(obj, m, static_cast<typename F::args*>(nullptr)));
      }(),
      ...);
}
}  // namespace concur::detail

namespace concur::multiprocessing {

// Python's BaseManager: serves registered objects from a server process (start()) or from
// this process (serve_forever()), or is a client of a running server (connect()).
class BaseManager {
 public:
  // Nothing runs yet. The authkey ("" = a fresh random key) is what start()/serve_forever()
  // require of clients and what connect()/proxies present.
  explicit BaseManager(ManagerOptions options = {});
  BaseManager(const BaseManager&) = delete;
  BaseManager& operator=(const BaseManager&) = delete;
  // shutdown().
  virtual ~BaseManager();

  // Serves `object` under `name`: a concur queue (queue::Queue/LifoQueue/PriorityQueue) or
  // a threading lock/semaphore/event/condition/barrier; get<QueueProxy<T>>(name) etc. reach
  // it. Before start()/serve_forever() only (ProcessError after); ValueError for a name
  // registered twice. With start() the server is a fork: it serves its copy of the object,
  // as Python's server runs its own callable; with serve_forever() the object itself, which
  // must outlive the serving.
  template <class T>
  void register_object(std::string name, T& object) {
    using P = typename detail::proxy_for<T>::type;
    add_object(std::move(name), detail::make_served<P>(object, nullptr));
  }
  // A user object whose methods are listed: register_object("c", counter,
  // methods("inc", &Counter::inc, "get", &Counter::get)); get<Proxy<Counter>>("c").
  // Calls on it run one at a time.
  template <class C, class... X>
  void register_object(std::string name, C& object, const MethodList<X...>& list) {
    auto o = std::make_shared<detail::ServedObject>();
    o->kind = detail::kind_of<Proxy<C>>();
    o->serialize = true;
    detail::fill_user(*o, object, list.items, std::make_index_sequence<sizeof...(X) / 2>{});
    add_object(std::move(name), std::move(o));
  }

  // Starts the server in a forked child and waits until it listens. ProcessError if already
  // started/connected; OSError if the address cannot be bound (reported by the child).
  void start();
  // Serves from this thread until a client (or another thread) calls shutdown().
  void serve_forever();
  // Becomes a client of the server at the address (checks it answers: OSError if nobody
  // listens, AuthenticationError for a wrong key).
  void connect();
  // A proxy to the object registered under `name`: KeyError if there is none, TypeError if
  // it is not served by proxy type P.
  template <class P>
  P get(const std::string& name) {
    detail::LookupReply r = lookup(name);
    if (r.kind != detail::kind_of<P>())
      throw TypeError("'" + name + "' is served as " + r.kind + ", not " + detail::kind_of<P>());
    return P(client(), r);
  }
  // Python's _number_of_objects(): how many manager-made objects the server holds (each
  // lives while a process holds a proxy of it). ProcessError if not started/connected.
  std::size_t number_of_objects();
  // The bound address (the port filled in for "host:0"). Empty before start/serve/connect.
  std::string address() const;
  const std::string& authkey() const noexcept;
  // The server process, if start()ed here (for tests: its pid, kill it...).
  Process* process() const noexcept;
  // Stops the server (start()ed here: asks it to stop, joins it, kills it if it does not
  // go within 2 s; serve_forever() elsewhere in this process: returns it), then drops
  // this thread's connection. Idempotent; in a forked child of the starter it only drops
  // connections (the child does not own the server). Never throws.
  void shutdown() noexcept;

 protected:
  // A new manager-made object of proxy kind P (its factory registered at static init).
  template <class P, class Init>
  P create(const Init& init) {
    (void)detail::factory_registered<P>;
    detail::Bytes b;
    detail::codec::encode(init, b);
    return P(client()->create(detail::kind_of<P>(), b));
  }
  std::shared_ptr<detail::ClientCore> client() const;

 private:
  void add_object(std::string name, std::shared_ptr<detail::ServedObject> obj);
  detail::LookupReply lookup(const std::string& name);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Python's SyncManager, started on construction (Python's multiprocessing.Manager()).
class Manager : public BaseManager {
 public:
  explicit Manager(ManagerOptions options = {});
  template <class T>
  ValueProxy<T> Value(T init = {}) {
    return create<ValueProxy<T>>(init);
  }
  template <class T>
  ListProxy<T> list(std::vector<T> init = {}) {
    return create<ListProxy<T>>(init);
  }
  // Python's Array(typecode, sequence): a fixed-length array holding `init`.
  template <class T>
  ArrayProxy<T> Array(std::vector<T> init) {
    return create<ArrayProxy<T>>(init);
  }
  // An array of n value-initialized items (Python's Array('i', n)).
  template <class T>
  ArrayProxy<T> Array(std::size_t n) {
    return create<ArrayProxy<T>>(std::vector<T>(n));
  }
  template <class K, class V>
  DictProxy<K, V> dict(std::map<K, V> init = {}) {
    return create<DictProxy<K, V>>(init);
  }
  template <class T>
  QueueProxy<T> Queue(std::size_t maxsize = 0) {
    return create<QueueProxy<T>>(static_cast<std::uint64_t>(maxsize));
  }
  template <class T>
  QueueProxy<T> JoinableQueue(std::size_t maxsize = 0) {
    return Queue<T>(maxsize);
  }
  LockProxy Lock() { return create<LockProxy>(std::uint8_t{0}); }
  RLockProxy RLock() { return create<RLockProxy>(std::uint8_t{0}); }
  SemaphoreProxy Semaphore(int value = 1) { return create<SemaphoreProxy>(value); }
  BoundedSemaphoreProxy BoundedSemaphore(int value = 1) {
    return create<BoundedSemaphoreProxy>(value);
  }
  EventProxy Event() { return create<EventProxy>(std::uint8_t{0}); }
  ConditionProxy Condition() { return create<ConditionProxy>(std::uint8_t{0}); }
  BarrierProxy Barrier(std::size_t parties) {
    return create<BarrierProxy>(static_cast<std::uint64_t>(parties));
  }
  NamespaceProxy Namespace() { return create<NamespaceProxy>(std::uint8_t{0}); }
};

}  // namespace concur::multiprocessing
