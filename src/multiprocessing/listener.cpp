// Listener / Client and the authentication handshake (Python's multiprocessing.connection).
//
// The handshake is one state machine (Handshake) fed with whole messages. Client() and the
// detail:: halves drive it by blocking on one connection until a deadline; Listener::accept
// drives many at once from one poll() over the listening socket and every handshake in
// progress, so a stalled or hostile peer only costs its own slot until its deadline.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "concur/detail/fd.hpp"
#include "concur/detail/thread_annotations.hpp"
#include "concur/multiprocessing/connection.hpp"

namespace concur::multiprocessing {

namespace {

namespace cd = concur::detail;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------
// The handshake (CPython 3.12's deliver_challenge / answer_challenge)

constexpr std::string_view kChallenge = "#CHALLENGE#";
constexpr std::string_view kWelcome = "#WELCOME#";
constexpr std::string_view kFailure = "#FAILURE#";
constexpr std::string_view kDigestName = "sha256";  // what our challenges ask for
constexpr std::size_t kMessageLength = 40;          // random bytes in a challenge
constexpr std::size_t kLegacyChallenge = 20;        // Python <= 3.11: 20 bytes, HMAC-MD5
constexpr std::size_t kLegacyResponse = 16;         // a raw HMAC-MD5
constexpr std::size_t kMaxHandshakeMessage = 256;   // Python's recv_bytes(256)

std::string_view as_sv(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

void fill_random(void* p, std::size_t n) {
  auto* out = static_cast<unsigned char*>(p);
  while (n > 0) {
    const ssize_t got = ::getrandom(out, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw OSError(errno, "getrandom");
    }
    out += got;
    n -= static_cast<std::size_t>(got);
  }
}

// The digests Python 3.12 allows in a "{name}" prefix; nullptr for any other name.
const EVP_MD* digest_by_name(std::string_view name) {
  if (name == "md5") return EVP_md5();
  if (name == "sha256") return EVP_sha256();
  if (name == "sha384") return EVP_sha384();
  if (name == "sha3_256") return EVP_sha3_256();
  if (name == "sha3_384") return EVP_sha3_384();
  return nullptr;
}
constexpr std::size_t kMaxDigestName = 8;  // "sha3_256"

std::string hmac(const EVP_MD* md, std::string_view key, std::string_view message) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  static const unsigned char kEmpty = 0;
  const void* k = key.empty() ? static_cast<const void*>(&kEmpty) : key.data();
  if (::HMAC(md, k, static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(), out,
             &len) == nullptr)
    throw AuthenticationError("HMAC failed");
  return {reinterpret_cast<const char*>(out), len};
}

// Python's _get_digest_name_and_payload: "" (legacy HMAC-MD5, no prefix) for a 16- or
// 20-byte message, else the name in its "{name}" prefix and what follows.
std::pair<std::string_view, std::string_view> digest_and_payload(std::string_view m) {
  if (m.size() == kLegacyChallenge || m.size() == kLegacyResponse) return {"", m};
  if (!m.empty() && m[0] == '{') {
    const auto curly = m.substr(0, kMaxDigestName + 2).find('}', 1);
    if (curly != std::string_view::npos) {
      const auto name = m.substr(1, curly - 1);
      if (digest_by_name(name)) return {name, m.substr(curly + 1)};
    }
  }
  throw AuthenticationError(
      "unsupported message length, missing digest prefix, or unsupported digest");
}

// Python's _create_response: the HMAC of the whole challenge (prefix included) with the
// digest it names, "{name}"-prefixed; a legacy challenge gets a raw HMAC-MD5.
std::string create_response(std::string_view key, std::string_view challenge) {
  const auto [name, payload] = digest_and_payload(challenge);
  (void)payload;
  if (name.empty()) return hmac(EVP_md5(), key, challenge);
  std::string out = "{";
  out.append(name).append("}").append(hmac(digest_by_name(name), key, challenge));
  return out;
}

// Python's _verify_challenge: the peer may answer with any allowed digest (or a raw
// HMAC-MD5); the MAC covers our whole challenge, its "{sha256}" prefix included, so it
// cannot be downgraded without knowing the key.
void verify_response(std::string_view key, std::string_view challenge, std::string_view response) {
  const auto [name, mac] = digest_and_payload(response);
  const std::string expected =
      hmac(name.empty() ? EVP_md5() : digest_by_name(name), key, challenge);
  if (expected.size() != mac.size() || CRYPTO_memcmp(expected.data(), mac.data(), mac.size()) != 0)
    throw AuthenticationError("digest received was wrong");
}

enum class Step : std::uint8_t { deliver, answer };

class Handshake {
 public:
  Handshake(std::string_view key, Step first, std::optional<Step> second)
      : key_(key), steps_{first, second.value_or(first)}, count_(second ? 2 : 1) {}

  // Sends what the first step sends. Returns true if already done (never: each step waits).
  void start(Connection& c) { begin(c); }

  // One message from the peer; true when the handshake is complete. AuthenticationError
  // when it fails (after telling the peer, where the protocol does).
  bool feed(Connection& c, std::span<const std::byte> bytes) {
    const std::string_view msg = as_sv(bytes);
    switch (await_) {
      case Await::response:
        try {
          verify_response(key_, std::string_view(challenge_.data(), challenge_len_), msg);
        } catch (const AuthenticationError&) {
          try {
            c.send_bytes(as_bytes(kFailure));
          } catch (const Error&) {  // the peer may be gone already
          }
          throw;
        }
        c.send_bytes(as_bytes(kWelcome));
        return next(c);
      case Await::challenge: {
        if (!msg.starts_with(kChallenge))
          throw AuthenticationError("Protocol error, expected challenge");
        const std::string_view challenge = msg.substr(kChallenge.size());
        if (challenge.size() < kLegacyChallenge)
          throw AuthenticationError("challenge too short: " + std::to_string(challenge.size()) +
                                    " bytes");
        c.send_bytes(as_bytes(create_response(key_, challenge)));
        await_ = Await::welcome;
        return false;
      }
      case Await::welcome:
        if (msg != kWelcome) throw AuthenticationError("digest sent was rejected");
        return next(c);
      case Await::done:
        break;
    }
    return true;
  }

 private:
  enum class Await : std::uint8_t { response, challenge, welcome, done };

  void begin(Connection& c) {
    if (steps_[index_] == Step::answer) {
      await_ = Await::challenge;
      return;
    }
    // "{sha256}" + 40 random bytes; the MAC is over all of it.
    std::string m = "{";
    m.append(kDigestName).append("}");
    const std::size_t prefix = m.size();
    m.resize(prefix + kMessageLength);
    fill_random(m.data() + prefix, kMessageLength);
    std::memcpy(challenge_.data(), m.data(), m.size());
    challenge_len_ = m.size();
    std::string out(kChallenge);
    out += m;
    c.send_bytes(as_bytes(out));
    await_ = Await::response;
  }
  bool next(Connection& c) {
    if (++index_ == count_) {
      await_ = Await::done;
      return true;
    }
    begin(c);
    return false;
  }

  std::string_view key_;
  std::array<Step, 2> steps_;
  std::size_t count_;
  std::size_t index_ = 0;
  Await await_ = Await::done;
  std::array<char, 2 + kMaxDigestName + kMessageLength> challenge_{};
  std::size_t challenge_len_ = 0;
};

// Runs `call` and turns every failure but AuthenticationError into one (the decision in
// connection.hpp: a server loop catches one type for every way a handshake can fail).
template <class F>
auto as_auth_failure(F&& call) {
  try {
    return call();
  } catch (const AuthenticationError&) {
    throw;
  } catch (const EOFError&) {
    throw AuthenticationError("peer closed the connection during authentication");
  } catch (const Error& e) {
    throw AuthenticationError(std::string("authentication failed: ") + e.what());
  }
}

// One message of the handshake, waiting at most until `deadline`.
std::vector<std::byte> recv_handshake_message(Connection& c, Clock::time_point deadline) {
  auto msg = c.recv_bytes_until(deadline, kMaxHandshakeMessage);
  if (!msg) throw AuthenticationError("authentication timed out");
  return std::move(*msg);
}

void run_handshake(Connection& c, std::string_view key, Step first, std::optional<Step> second,
                   cd::Deadline deadline) {
  as_auth_failure([&] {
    Handshake hs(key, first, second);
    hs.start(c);
    while (!hs.feed(c, recv_handshake_message(c, deadline.time_point()))) {
    }
  });
}

// ---------------------------------------------------------------------------------------
// Addresses

enum class Kind : std::uint8_t { unix_path, unix_abstract, tcp };

struct Address {
  Kind kind;
  std::string path;        // unix_path: the path; unix_abstract: the name (without the marker)
  char marker = '@';       // unix_abstract: how the user wrote it ('@' or '\0')
  std::string host, port;  // tcp
};

Address parse_address(const std::string& a) {
  if (a.empty()) throw ValueError("empty address");
  if (a[0] == '\0' || a[0] == '@') {
    Address r{Kind::unix_abstract, a.substr(1), a[0], {}, {}};
    if (r.path.size() + 1 > sizeof(sockaddr_un::sun_path))
      throw ValueError("abstract socket name too long: " + std::to_string(r.path.size()) +
                       " bytes");
    return r;
  }
  if (a.find('/') != std::string::npos || a.find(':') == std::string::npos) {
    if (a.size() >= sizeof(sockaddr_un::sun_path)) throw ValueError("AF_UNIX path too long");
    if (a.find('\0') != std::string::npos) throw ValueError("embedded null character in path");
    return {Kind::unix_path, a, '@', {}, {}};
  }
  Address r{Kind::tcp, {}, '@', {}, {}};
  std::size_t colon;
  if (a[0] == '[') {
    const auto close = a.find(']');
    if (close == std::string::npos || close + 1 >= a.size() || a[close + 1] != ':')
      throw ValueError("bad IPv6 address (expected \"[host]:port\"): " + a);
    r.host = a.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = a.rfind(':');
    r.host = a.substr(0, colon);
  }
  r.port = a.substr(colon + 1);
  if (r.port.empty() || r.port.size() > 5 ||
      !std::all_of(r.port.begin(), r.port.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) ||
      std::stoul(r.port) > 65535)
    throw ValueError("bad port in address: " + a);
  return r;
}

socklen_t unix_sockaddr(const Address& a, sockaddr_un& sun) {
  std::memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  if (a.kind == Kind::unix_path) {
    std::memcpy(sun.sun_path, a.path.data(), a.path.size());
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + a.path.size() + 1);
  }
  std::memcpy(sun.sun_path + 1, a.path.data(), a.path.size());
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + a.path.size());
}

struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
  int family() const { return ss.ss_family; }
};

// The TCP addresses of a.host:a.port, in the resolver's order. An IP literal (and "" =
// 0.0.0.0, Python's '') is parsed directly: no resolver, so a child forked from a busy
// multi-threaded parent never enters getaddrinfo's locks for one.
std::vector<SockAddr> resolve(const Address& a) {
  const auto port = static_cast<std::uint16_t>(std::stoul(a.port));
  SockAddr one;
  auto& in = reinterpret_cast<sockaddr_in&>(one.ss);
  auto& in6 = reinterpret_cast<sockaddr_in6&>(one.ss);
  const std::string host = a.host.empty() ? "0.0.0.0" : a.host;
  if (::inet_pton(AF_INET, host.c_str(), &in.sin_addr) == 1) {
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    one.len = sizeof in;
    return {one};
  }
  if (::inet_pton(AF_INET6, host.c_str(), &in6.sin6_addr) == 1) {
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    one.len = sizeof in6;
    return {one};
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), a.port.c_str(), &hints, &list);
  if (rc != 0)
    throw OSError("[Errno " + std::to_string(rc) + "] " + ::gai_strerror(rc) + ": '" + host + "'");
  std::vector<SockAddr> out;
  for (addrinfo* p = list; p; p = p->ai_next) {
    if (p->ai_addrlen > sizeof(sockaddr_storage)) continue;
    SockAddr sa;
    std::memcpy(&sa.ss, p->ai_addr, p->ai_addrlen);
    sa.len = p->ai_addrlen;
    out.push_back(sa);
  }
  ::freeaddrinfo(list);
  return out;
}

// "ip:port" / "[ip6]:port" / "" (an unnamed Unix peer) / the Unix name.
std::string format_sockaddr(const sockaddr_storage& ss, socklen_t len) {
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
    ::inet_ntop(AF_INET, &in.sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(in.sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
    ::inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof host);
    std::string out = "[";  // (appends: GCC 12 -Wrestrict misfires on "[" + std::string)
    out.append(host).append("]:").append(std::to_string(ntohs(in6.sin6_port)));
    return out;
  }
  if (ss.ss_family == AF_UNIX) {
    const auto& sun = reinterpret_cast<const sockaddr_un&>(ss);
    const auto n = static_cast<std::size_t>(len) > offsetof(sockaddr_un, sun_path)
                       ? static_cast<std::size_t>(len) - offsetof(sockaddr_un, sun_path)
                       : 0;
    if (n == 0) return "";
    if (sun.sun_path[0] == '\0') {
      std::string out = "@";
      out.append(sun.sun_path + 1, n - 1);
      return out;
    }
    return std::string(sun.sun_path, strnlen(sun.sun_path, n));
  }
  return "";
}

void set_nodelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // advice: failure is harmless
}

cd::UniqueFd make_socket(int family, int extra) {
  cd::UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | extra, 0));
  if (!fd) throw OSError(errno, "socket");
  return cd::above_stdio(std::move(fd));
}

// connect() that survives EINTR (the connection goes on in the background: wait for it).
int connect_fd(int fd, const sockaddr* sa, socklen_t len) {
  if (::connect(fd, sa, len) == 0) return 0;
  if (errno != EINTR && errno != EINPROGRESS) return errno;
  for (;;) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, -1) < 0 && errno == EINTR) continue;
    int err = 0;
    socklen_t elen = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) return errno;
    return err;
  }
}

cd::Deadline handshake_deadline(std::chrono::duration<double> timeout) {
  if (std::isnan(timeout.count())) throw ValueError(cd::kNaNTimeout);
  return cd::Deadline::after(timeout);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Listener

struct Listener::Impl {
  Address addr;
  std::string bound;  // address()
  std::optional<std::string> authkey;
  std::chrono::duration<double> handshake_timeout{};
  cd::UniqueFd fd;    // the listening socket (non-blocking)
  cd::UniqueFd wake;  // eventfd: close() from another thread wakes accept()
  pid_t creator = 0;  // the process that removes the socket file
  dev_t dev = 0;      // the socket file's identity, so close() never removes another file
  ino_t ino = 0;

  // `fd` is set before the Listener is shared and reset by teardown (accept_mu); `wake` is
  // reset by teardown under both locks and read under either (outside what GUARDED_BY says).
  cd::Mutex accept_mu;  // serializes accept() and close()'s teardown
  cd::Mutex wake_mu;    // close()'s write to `wake` against teardown closing it
  std::atomic<bool> closing{false};
  std::atomic<bool> is_closed{false};
  mutable cd::Mutex last_mu;
  std::optional<std::string> last CONCUR_GUARDED_BY(last_mu);

  struct Pending {
    Connection conn;
    Handshake hs;
    cd::Deadline deadline;
    std::string peer;
  };
  std::deque<Pending> pending CONCUR_GUARDED_BY(accept_mu);  // oldest first

  void teardown() CONCUR_REQUIRES(accept_mu) {
    pending.clear();
    if (fd && addr.kind == Kind::unix_path && ::getpid() == creator) {
      struct stat st {};
      if (::lstat(addr.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == dev &&
          st.st_ino == ino)
        ::unlink(addr.path.c_str());
    }
    fd.reset();
    {
      cd::MutexLock wg(wake_mu);
      wake.reset();
    }
    is_closed = true;
  }
};

Listener::Listener(std::string address, ListenerOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.addr = parse_address(address);
  m.authkey = std::move(options.authkey);
  const double t = options.handshake_timeout.count();
  if (std::isnan(t)) throw ValueError(cd::kNaNTimeout);
  if (!(t > 0)) throw ValueError("handshake_timeout must be positive");
  m.handshake_timeout = options.handshake_timeout;
  const int backlog = std::max(options.backlog, 0);

  if (m.addr.kind == Kind::tcp) {
    int err = EADDRNOTAVAIL;
    for (const SockAddr& sa : resolve(m.addr)) {
      cd::UniqueFd s = make_socket(sa.family(), SOCK_NONBLOCK);
      const int one = 1;
      ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(s.get(), sa.get(), sa.len) != 0) {
        err = errno;
        continue;
      }
      m.fd = std::move(s);
      break;
    }
    if (!m.fd) throw OSError(err, address);
  } else {
    cd::UniqueFd s = make_socket(AF_UNIX, SOCK_NONBLOCK);
    sockaddr_un sun{};
    socklen_t len = unix_sockaddr(m.addr, sun);
    if (m.addr.kind == Kind::unix_abstract && m.addr.path.empty())
      len = sizeof(sa_family_t);  // "@": autobind, the kernel picks a free name
    if (::bind(s.get(), reinterpret_cast<const sockaddr*>(&sun), len) != 0)
      throw OSError(errno, address);
    if (m.addr.kind == Kind::unix_path) {
      // Before listen(): nobody can connect yet, so there is no window with a wider mode.
      struct stat st {};
      if (::chmod(m.addr.path.c_str(), 0600) != 0 || ::stat(m.addr.path.c_str(), &st) != 0) {
        const int err = errno;
        ::unlink(m.addr.path.c_str());
        throw OSError(err, address);
      }
      m.dev = st.st_dev;
      m.ino = st.st_ino;
      m.creator = ::getpid();
    }
    m.fd = std::move(s);
  }
  if (::listen(m.fd.get(), backlog) != 0) {
    const int err = errno;
    m.teardown();
    throw OSError(err, "listen");
  }
  m.wake = cd::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!m.wake) {
    const int err = errno;
    m.teardown();
    throw OSError(err, "eventfd");
  }
  m.wake = cd::above_stdio(std::move(m.wake));

  sockaddr_storage ss{};
  socklen_t sl = sizeof ss;
  ::getsockname(m.fd.get(), reinterpret_cast<sockaddr*>(&ss), &sl);
  if (m.addr.kind == Kind::tcp) {
    m.bound = format_sockaddr(ss, sl);
  } else if (m.addr.kind == Kind::unix_abstract) {
    const std::string name = format_sockaddr(ss, sl);  // "@name"
    m.bound = m.addr.marker + name.substr(1);
  } else {
    m.bound = m.addr.path;
  }
}

Listener::Listener(Listener&&) noexcept = default;
Listener& Listener::operator=(Listener&& o) noexcept {
  if (this != &o) {
    close();
    impl_ = std::move(o.impl_);
  }
  return *this;
}

Listener::~Listener() {
  close();
}

void Listener::close() {
  if (!impl_ || impl_->is_closed) return;
  impl_->closing = true;
  {
    // Wake an accept() blocked in poll; teardown closes the eventfd under the same mutex.
    cd::MutexLock wg(impl_->wake_mu);
    const std::uint64_t one = 1;
    if (impl_->wake) {
      const ssize_t r = ::write(impl_->wake.get(), &one, sizeof one);
      (void)r;  // a full counter (never: one write per close) changes nothing
    }
  }
  cd::MutexLock g(impl_->accept_mu);
  if (!impl_->is_closed) impl_->teardown();
}

bool Listener::closed() const noexcept {
  return !impl_ || impl_->is_closed;
}

std::string Listener::address() const {
  return impl_ ? impl_->bound : std::string();
}

int Listener::fileno() const {
  if (closed()) throw OSError("listener is closed");
  return impl_->fd.get();
}

std::optional<std::string> Listener::last_accepted() const {
  if (!impl_) return std::nullopt;
  cd::MutexLock g(impl_->last_mu);
  return impl_->last;
}

Connection Listener::accept() {
  if (!impl_) throw OSError("listener is closed");
  Impl& m = *impl_;
  cd::MutexLock g(m.accept_mu);
  std::vector<pollfd> fds;
  auto finish = [&m](Connection c, std::string peer) {
    cd::MutexLock lg(m.last_mu);
    m.last = std::move(peer);
    return c;
  };
  for (;;) {
    if (m.closing || m.is_closed) throw OSError("listener is closed");
    const auto now = Clock::now();
    // Drop the peers whose time is up, one per call (the others on the next).
    for (auto it = m.pending.begin(); it != m.pending.end(); ++it) {
      if (it->deadline.time_point() <= now) {
        m.pending.erase(it);
        throw AuthenticationError("authentication timed out");
      }
    }
    // Poll until the earliest deadline. (A pending peer never has a whole message left in
    // its buffer here: each is read until only a partial frame, if anything, remains.)
    Clock::time_point wake_at = Clock::time_point::max();
    for (const auto& p : m.pending) wake_at = std::min(wake_at, p.deadline.time_point());
    fds.clear();
    fds.push_back({m.wake.get(), POLLIN, 0});
    fds.push_back({m.fd.get(), POLLIN, 0});
    for (const auto& p : m.pending) fds.push_back({p.conn.fileno(), POLLIN, 0});
    const cd::Deadline d(wake_at);
    timespec ts{};
    const int rc = ::ppoll(fds.data(), fds.size(), d.relative_timespec(ts), nullptr);
    if (rc < 0) {
      if (errno == EINTR) continue;
      throw OSError(errno, "poll");
    }
    if (fds[0].revents) {
      if (m.closing) throw OSError("listener is closed");
      // A forked copy of this listener was closed (the eventfd is shared across fork()):
      // not us. Drain it and go on.
      std::uint64_t v;
      const ssize_t r = ::read(m.wake.get(), &v, sizeof v);
      (void)r;
      continue;
    }
    // Handshakes in progress first: they are older than anyone still in the backlog.
    for (std::size_t i = 0; i < m.pending.size(); ++i) {
      auto& p = m.pending[i];
      if (fds[2 + i].revents == 0) continue;
      bool done = false;
      try {
        done = as_auth_failure([&] {
          for (;;) {
            auto msg = p.conn.recv_bytes_until(Clock::time_point{}, kMaxHandshakeMessage);
            if (!msg) return false;
            if (p.hs.feed(p.conn, *msg)) return true;
          }
        });
      } catch (const AuthenticationError&) {
        m.pending.erase(m.pending.begin() + static_cast<std::ptrdiff_t>(i));
        throw;
      }
      if (done) {
        Connection c = std::move(p.conn);
        std::string peer = std::move(p.peer);
        m.pending.erase(m.pending.begin() + static_cast<std::ptrdiff_t>(i));
        return finish(std::move(c), std::move(peer));
      }
    }
    if (fds[1].revents == 0) continue;
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    cd::UniqueFd s(::accept4(m.fd.get(), reinterpret_cast<sockaddr*>(&ss), &sl, SOCK_CLOEXEC));
    if (!s) {
      const int err = errno;
      // The peer left before we took it, or someone else took it: keep waiting.
      if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED ||
          err == EPROTO)
        continue;
      throw OSError(err, "accept");
    }
    s = cd::above_stdio(std::move(s));
    if (m.addr.kind == Kind::tcp) set_nodelay(s.get());
    Connection c(s.get());
    s.release();
    std::string peer = format_sockaddr(ss, sl);
    if (!m.authkey) return finish(std::move(c), std::move(peer));
    if (m.pending.size() >= kMaxPendingHandshakes) m.pending.pop_front();
    auto& p = m.pending.emplace_back(
        Impl::Pending{std::move(c), Handshake(*m.authkey, Step::deliver, Step::answer),
                      handshake_deadline(m.handshake_timeout), std::move(peer)});
    try {
      as_auth_failure([&] { p.hs.start(p.conn); });
    } catch (const AuthenticationError&) {
      m.pending.pop_back();
      throw;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Client

Connection Client(std::string address, ClientOptions options) {
  const Address a = parse_address(address);
  if (std::isnan(options.handshake_timeout.count())) throw ValueError(cd::kNaNTimeout);
  cd::UniqueFd fd;
  if (a.kind == Kind::tcp) {
    int err = ECONNREFUSED;
    for (const SockAddr& sa : resolve(a)) {
      cd::UniqueFd s = make_socket(sa.family(), 0);
      err = connect_fd(s.get(), sa.get(), sa.len);
      if (err == 0) {
        fd = std::move(s);
        break;
      }
    }
    if (!fd) throw_os_error(err, address);
    set_nodelay(fd.get());
  } else {
    if (a.kind == Kind::unix_abstract && a.path.empty())
      throw ValueError("cannot connect to \"@\" (an autobind address): give its name");
    fd = make_socket(AF_UNIX, 0);
    sockaddr_un sun{};
    const socklen_t len = unix_sockaddr(a, sun);
    if (const int err = connect_fd(fd.get(), reinterpret_cast<const sockaddr*>(&sun), len))
      throw_os_error(err, address);
  }
  Connection c(fd.get());
  fd.release();
  if (options.authkey)
    run_handshake(c, *options.authkey, Step::answer, Step::deliver,
                  handshake_deadline(options.handshake_timeout));
  return c;
}

}  // namespace concur::multiprocessing

namespace concur::detail {

void deliver_challenge(multiprocessing::Connection& conn, std::string_view authkey,
                       Deadline deadline) {
  multiprocessing::run_handshake(conn, authkey, multiprocessing::Step::deliver, std::nullopt,
                                 deadline);
}

void answer_challenge(multiprocessing::Connection& conn, std::string_view authkey,
                      Deadline deadline) {
  multiprocessing::run_handshake(conn, authkey, multiprocessing::Step::answer, std::nullopt,
                                 deadline);
}

std::string random_authkey() {
  std::string key(32, '\0');
  multiprocessing::fill_random(key.data(), key.size());
  return key;
}

}  // namespace concur::detail
