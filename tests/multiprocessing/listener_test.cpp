// mp::Listener / mp::Client: Unix, abstract, TCP and IPv6 addresses, the HMAC handshake with
// right, wrong and missing keys, hostile peers (garbage, truncated frames, 1 GiB length
// fields, handshakes never finished) while honest clients are served, fd hygiene, closed
// stdio, and interoperation with CPython's multiprocessing.connection.
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <concur/detail/fd.hpp>
#include <concur/multiprocessing.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bytes_util.hpp"
#include "gtest/gtest.h"
#include "process_util.hpp"

namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;
using concur_test::B;
using concur_test::S;
using concur_test::what_of;

namespace {

std::string unique_path(const char* tag) {
  static std::atomic<int> n{0};
  return "/tmp/concur-listener-test-" + std::to_string(::getpid()) + "-" + tag + "-" +
         std::to_string(n++);
}

// A client in a thread: connects, sends "ping", expects "pong" back.
void ping_client(const std::string& address, std::optional<std::string> key,
                 std::string* error = nullptr) {
  try {
    mp::Connection c = mp::Client(address, {.authkey = std::move(key)});
    c.send_bytes(B("ping"));
    if (S(c.recv_bytes()) != "pong" && error) *error = "bad reply";
  } catch (const std::exception& e) {
    if (error) *error = e.what();
  }
}

// Serves one ping on l.
void serve_ping(mp::Listener& l) {
  mp::Connection c = l.accept();
  EXPECT_EQ(S(c.recv_bytes()), "ping");
  c.send_bytes(B("pong"));
}

void round_trip(mp::Listener& l, std::optional<std::string> key) {
  std::string err;
  std::thread t([&] { ping_client(l.address(), key, &err); });
  serve_ping(l);
  t.join();
  EXPECT_EQ(err, "");
}

bool ipv6_loopback_available() {
  const int s = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (s < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool ok = ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(s);
  return ok;
}

int nodelay(int fd) {
  int v = 0;
  socklen_t len = sizeof v;
  ::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len);
  return v;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Addresses

TEST(Listener, UnixPathMode0600AndRemovedOnClose) {
  const std::string path = unique_path("unix");
  {
    mp::Listener l(path);
    EXPECT_EQ(l.address(), path);
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    round_trip(l, std::nullopt);
    EXPECT_EQ(l.last_accepted(), std::optional<std::string>(""));
    l.close();
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_TRUE(l.closed());
    l.close();  // idempotent
    EXPECT_EQ(what_of<concur::OSError>([&] { (void)l.accept(); }), "listener is closed");
    EXPECT_EQ(what_of<concur::OSError>([&] { (void)l.fileno(); }), "listener is closed");
  }
  {
    mp::Listener l(path);  // the name is free again
    EXPECT_TRUE(std::filesystem::exists(path));
  }  // the destructor removes it too
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(Listener, UnixPathInUseIsAddressInUse) {
  const std::string path = unique_path("inuse");
  mp::Listener l(path);
  try {
    mp::Listener again(path);
    FAIL() << "bound twice";
  } catch (const concur::OSError& e) {
    EXPECT_EQ(e.code(), EADDRINUSE);
  }
  EXPECT_TRUE(std::filesystem::exists(path));  // the failed one did not remove ours
}

TEST(Listener, ClosingDoesNotRemoveAReplacedFile) {
  const std::string path = unique_path("replaced");
  mp::Listener l(path);
  ASSERT_EQ(::unlink(path.c_str()), 0);
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
  }
  l.close();
  EXPECT_TRUE(std::filesystem::exists(path));  // not our socket: left alone
  ::unlink(path.c_str());
}

TEST(Listener, ForkedChildDoesNotRemoveTheSocket) {
  const std::string path = unique_path("fork");
  mp::Listener l(path);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    l.close();  // the child's copy: closes its descriptors only
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(std::filesystem::exists(path));
  round_trip(l, std::nullopt);  // still served here
}

TEST(Listener, AbstractNames) {
  const std::string name = "@concur-test-" + std::to_string(::getpid());
  mp::Listener l(name);
  EXPECT_EQ(l.address(), name);
  round_trip(l, std::nullopt);
  // The "\0name" spelling reaches the same socket.
  std::string err;
  std::thread t([&] { ping_client(std::string(1, '\0') + name.substr(1), std::nullopt, &err); });
  serve_ping(l);
  t.join();
  EXPECT_EQ(err, "");

  mp::Listener autobound("@");
  const std::string a = autobound.address();
  ASSERT_GT(a.size(), 1u);
  EXPECT_EQ(a[0], '@');
  round_trip(autobound, std::nullopt);
}

TEST(Listener, TcpPortZeroReportsTheRealPortAndSetsNodelay) {
  mp::Listener l("127.0.0.1:0");
  const std::string a = l.address();
  ASSERT_EQ(a.rfind("127.0.0.1:", 0), 0u) << a;
  EXPECT_NE(a, "127.0.0.1:0");
  int client_nodelay = -1;
  std::thread t([&] {
    mp::Connection c = mp::Client(a);
    client_nodelay = nodelay(c.fileno());
    c.send_bytes(B("ping"));
    (void)c.recv_bytes();
  });
  mp::Connection c = l.accept();
  EXPECT_EQ(nodelay(c.fileno()), 1);
  EXPECT_EQ(S(c.recv_bytes()), "ping");
  c.send_bytes(B("pong"));
  t.join();
  EXPECT_EQ(client_nodelay, 1);
  ASSERT_TRUE(l.last_accepted().has_value());
  EXPECT_EQ(l.last_accepted()->rfind("127.0.0.1:", 0), 0u);
}

TEST(Listener, TcpWithAuthkey) {
  mp::Listener l("127.0.0.1:0", {.authkey = "secret"});
  round_trip(l, "secret");
}

TEST(Listener, HugeHandshakeTimeoutsMeanForever) {
  mp::Listener l("127.0.0.1:0", {.authkey = "k", .handshake_timeout = std::chrono::hours::max()});
  std::string err;
  std::thread t([&] {
    try {
      mp::Connection c = mp::Client(
          l.address(), {.authkey = "k", .handshake_timeout = std::chrono::nanoseconds::max()});
      c.send_bytes(B("ping"));
      (void)c.recv_bytes();
    } catch (const std::exception& e) {
      err = e.what();
    }
  });
  serve_ping(l);
  t.join();
  EXPECT_EQ(err, "");
}

TEST(Listener, HostNamesAndWildcards) {
  mp::Listener any(":0");
  const std::string a = any.address();
  ASSERT_EQ(a.rfind("0.0.0.0:", 0), 0u) << a;
  round_trip(any, std::nullopt);  // Client("0.0.0.0:port") reaches the local host
  mp::Listener named("localhost:0", {.authkey = "k"});
  const std::string port = named.address().substr(named.address().rfind(':') + 1);
  std::string err;
  std::thread t([&] { ping_client("localhost:" + port, "k", &err); });
  serve_ping(named);
  t.join();
  EXPECT_EQ(err, "");
}

TEST(Listener, Ipv6Loopback) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback";
  mp::Listener l("[::1]:0", {.authkey = "k6"});
  ASSERT_EQ(l.address().rfind("[::1]:", 0), 0u) << l.address();
  round_trip(l, "k6");
}

TEST(Listener, BadAddressesAreValueError) {
  EXPECT_THROW(mp::Listener(""), concur::ValueError);
  EXPECT_THROW(mp::Listener("127.0.0.1:"), concur::ValueError);
  EXPECT_THROW(mp::Listener("127.0.0.1:99999"), concur::ValueError);
  EXPECT_THROW(mp::Listener("127.0.0.1:12ab"), concur::ValueError);
  EXPECT_THROW(mp::Listener("[::1:0"), concur::ValueError);
  EXPECT_THROW(mp::Listener("/tmp/" + std::string(200, 'x')), concur::ValueError);
  EXPECT_THROW(mp::Client(""), concur::ValueError);
  EXPECT_THROW(mp::Client("@"), concur::ValueError);
  EXPECT_THROW(mp::Listener("127.0.0.1:0",
                            {.handshake_timeout = std::chrono::duration<double>(std::nan(""))}),
               concur::ValueError);
  EXPECT_THROW(mp::Listener("127.0.0.1:0", {.handshake_timeout = -1s}), concur::ValueError);
  EXPECT_THROW(mp::Listener("no-such-host.invalid:0"), concur::OSError);
  EXPECT_THROW(
      mp::Client("127.0.0.1:1", {.handshake_timeout = std::chrono::duration<double>(std::nan(""))}),
      concur::ValueError);
}

TEST(Client, ConnectErrorsCarryTheErrno) {
  EXPECT_THROW(mp::Client(unique_path("missing")), concur::FileNotFoundError);
  // A port nobody listens on: take a free one and close it.
  std::string a;
  {
    mp::Listener l("127.0.0.1:0");
    a = l.address();
  }
  try {
    mp::Client(a);
    FAIL() << "connected to a closed port";
  } catch (const concur::OSError& e) {
    EXPECT_EQ(e.code(), ECONNREFUSED);
  }
}

TEST(Listener, CloseFromAnotherThreadWakesAccept) {
  mp::Listener l("@concur-wake-" + std::to_string(::getpid()), {.authkey = "k"});
  std::atomic<bool> started{false};
  std::string what;
  std::thread t([&] {
    started = true;
    what = what_of<concur::OSError>([&] { (void)l.accept(); });
  });
  while (!started) std::this_thread::yield();
  std::this_thread::sleep_for(20ms);  // likely inside poll; correct either way
  l.close();
  t.join();
  EXPECT_EQ(what, "listener is closed");
  EXPECT_TRUE(l.closed());
}

// ---------------------------------------------------------------------------------------
// Authentication

TEST(Auth, WrongKeyFailsOnBothSidesAndCloses) {
  mp::Listener l("@concur-wrong-" + std::to_string(::getpid()), {.authkey = "right"});
  std::string client_err;
  std::thread t([&] {
    client_err = what_of<concur::multiprocessing::AuthenticationError>(
        [&] { (void)mp::Client(l.address(), {.authkey = "wrong"}); });
  });
  EXPECT_EQ(what_of<mp::AuthenticationError>([&] { (void)l.accept(); }),
            "digest received was wrong");
  t.join();
  EXPECT_EQ(client_err, "digest sent was rejected");
  // The listener goes on serving.
  round_trip(l, "right");
}

TEST(Auth, ClientWithoutKeyIsRefused) {
  mp::Listener l("@concur-nokey-" + std::to_string(::getpid()), {.authkey = "right"});
  std::string got;
  std::thread t([&] {
    mp::Connection c = mp::Client(l.address());  // no handshake on this side
    got = S(c.recv_bytes());                     // the listener's challenge
    c.send_bytes(B("not a digest"));
    try {
      got += "|" + S(c.recv_bytes());  // #FAILURE#
      (void)c.recv_bytes();
      got += "|open";
    } catch (const concur::EOFError&) {
      got += "|closed";
    }
  });
  EXPECT_THROW((void)l.accept(), mp::AuthenticationError);
  t.join();
  EXPECT_EQ(got.rfind("#CHALLENGE#{sha256}", 0), 0u) << got;
  EXPECT_EQ(got.substr(got.size() - 17), "|#FAILURE#|closed");
}

TEST(Auth, KeyOnlyOnTheClientTimesOut) {
  // A listener without a key never sends a challenge: a client with a key waits for it
  // up to its handshake_timeout.
  mp::Listener l("@concur-keyless-" + std::to_string(::getpid()));
  std::thread t([&] {
    mp::Connection c = l.accept();
    (void)c.poll(5s);  // until the client gives up and closes
  });
  EXPECT_EQ(what_of<mp::AuthenticationError>([&] {
              (void)mp::Client(l.address(), {.authkey = "k", .handshake_timeout = 100ms});
            }),
            "authentication timed out");
  t.join();
}

TEST(Auth, EmptyAndBinaryKeys) {
  {
    mp::Listener l("@concur-empty-" + std::to_string(::getpid()), {.authkey = ""});
    round_trip(l, "");
  }
  const std::string key = concur::detail::random_authkey();
  EXPECT_EQ(key.size(), 32u);
  EXPECT_NE(key, concur::detail::random_authkey());
  mp::Listener l("@concur-bin-" + std::to_string(::getpid()), {.authkey = key});
  round_trip(l, key);
}

TEST(Auth, DetailHalvesOverAPipe) {
  auto [a, b] = mp::Pipe();
  std::thread t([&, &b = b] {
    concur::detail::answer_challenge(b, "k", concur::detail::Deadline::after(5s));
    concur::detail::deliver_challenge(b, "k", concur::detail::Deadline::after(5s));
    b.send_bytes(B("after"));
  });
  concur::detail::deliver_challenge(a, "k", concur::detail::Deadline::after(5s));
  concur::detail::answer_challenge(a, "k", concur::detail::Deadline::after(5s));
  EXPECT_EQ(S(a.recv_bytes()), "after");
  t.join();
  // A peer that never answers: the deadline ends it.
  auto [c, d] = mp::Pipe();
  EXPECT_EQ(what_of<mp::AuthenticationError>([&, &c = c] {
              concur::detail::deliver_challenge(c, "k", concur::detail::Deadline::after(50ms));
            }),
            "authentication timed out");
  EXPECT_EQ(what_of<mp::AuthenticationError>([&, &c = c] {
              concur::detail::answer_challenge(c, "k", concur::detail::Deadline::after(0s));
            }),
            "authentication timed out");
  (void)d;
}

TEST(Auth, DataSentRightAfterTheHandshakeIsKept) {
  // The client's first messages may arrive with its WELCOME: none may be lost.
  mp::Listener l("@concur-follow-" + std::to_string(::getpid()), {.authkey = "k"});
  std::thread t([&] {
    mp::Connection c = mp::Client(l.address(), {.authkey = "k"});
    for (int i = 0; i < 100; ++i) c.send(i);
  });
  mp::Connection c = l.accept();
  for (int i = 0; i < 100; ++i) EXPECT_EQ(c.recv<int>(), i);
  t.join();
}

// ---------------------------------------------------------------------------------------
// Connection::recv_bytes_until

TEST(RecvBytesUntil, PartialFrameIsKeptAcrossTimeouts) {
  auto [a, b] = mp::Pipe();
  const int fd = b.fileno();
  const unsigned char header[] = {0, 0, 0, 5};
  ASSERT_EQ(::write(fd, header, 4), 4);
  ASSERT_EQ(::write(fd, "he", 2), 2);
  EXPECT_FALSE(a.recv_bytes_until(std::chrono::steady_clock::now() + 10ms).has_value());
  ASSERT_EQ(::write(fd, "llo", 3), 3);
  auto m = a.recv_bytes_until(std::chrono::steady_clock::now() + 5s);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(S(*m), "hello");
  b.send_bytes(B("next"));
  EXPECT_EQ(S(*a.recv_bytes_until(std::chrono::steady_clock::time_point::max())), "next");
  EXPECT_FALSE(a.recv_bytes_until({}).has_value());  // nothing there, deadline passed
  b.send_bytes(B("toolong"));
  EXPECT_EQ(what_of<concur::OSError>([&, &a = a] { (void)a.recv_bytes_until({}, 3); }),
            "bad message length");
}

TEST(RecvBytesUntil, BigMessageTimingOutMidwayStopsReceiving) {
  auto [a, b] = mp::Pipe();
  const int fd = b.fileno();
  const unsigned char header[] = {0, 2, 0, 0};  // 128 KiB: more than the receive buffer
  ASSERT_EQ(::write(fd, header, 4), 4);
  ASSERT_EQ(::write(fd, "xy", 2), 2);
  EXPECT_FALSE(a.recv_bytes_until(std::chrono::steady_clock::now() + 20ms).has_value());
  EXPECT_FALSE(a.readable());
  EXPECT_TRUE(a.writable());
}

// ---------------------------------------------------------------------------------------
// Descriptor hygiene

TEST(Listener, NoDescriptorLeaks) {
  const int before = ptest::count_fds();
  for (int i = 0; i < 20; ++i) {
    mp::Listener l(i % 2 ? "127.0.0.1:0" : unique_path("leak"), {.authkey = "k"});
    round_trip(l, "k");
    std::thread t([&] {
      (void)what_of<mp::AuthenticationError>(
          [&] { (void)mp::Client(l.address(), {.authkey = "bad"}); });
    });
    EXPECT_THROW((void)l.accept(), mp::AuthenticationError);
    t.join();
  }
  EXPECT_EQ(ptest::count_fds(), before);
}

// ---------------------------------------------------------------------------------------
// Hostile peers

namespace {

// A raw stream socket connected to `l` (no Connection, no handshake).
int raw_connect(const mp::Listener& l) {
  const std::string a = l.address();
  int fd;
  if (a[0] == '@') {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path + 1, a.data() + 1, a.size() - 1);
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + a.size());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sun), len) != 0) std::abort();
  } else {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    in.sin_port = htons(static_cast<std::uint16_t>(std::stoi(a.substr(a.rfind(':') + 1))));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&in), sizeof in) != 0) std::abort();
  }
  return fd;
}

void raw_send(int fd, std::string_view bytes) {
  (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
}

std::string be32(std::uint32_t n) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>(n >> (24 - 8 * i));
  return s;
}

// Whether the server closed fd (EOF after draining whatever it sent), waiting up to 10 s.
bool closed_by_server(int fd) {
  char buf[512];
  for (;;) {
    if (!concur::detail::wait_readable(fd, 10000)) return false;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

// The kinds of hostile peer: how each one misbehaves once connected.
enum class Hostile {
  silent,
  garbage,
  truncated,
  huge_length,
  long_form_huge,
  wrong_reply,
  early_close
};

// Behaves as `kind`; returns whether the server's failure is immediate (not a timeout).
bool misbehave(int fd, Hostile kind) {
  switch (kind) {
    case Hostile::silent:  // connects, says nothing
      return false;
    case Hostile::garbage:  // bytes that are no frame at all (a negative length)
      raw_send(fd, "\xff\xff\xff\x80garbage garbage garbage");
      return true;
    case Hostile::truncated:  // a frame header claiming 100 bytes, then 10
      raw_send(fd, be32(100) + "0123456789");
      return false;
    case Hostile::huge_length:  // a 1 GiB length field
      raw_send(fd, be32(1u << 30));
      return true;
    case Hostile::long_form_huge:  // the 12-byte form with a 2^62 length
      raw_send(fd, std::string("\xff\xff\xff\xff\x40\0\0\0\0\0\0\0", 12));
      return true;
    case Hostile::wrong_reply:  // a well-formed frame that is not the right digest
      raw_send(fd, be32(40) + "{sha256}" + std::string(32, 'x'));
      return true;
    case Hostile::early_close:
      ::shutdown(fd, SHUT_WR);
      return true;
  }
  return false;
}

}  // namespace

TEST(Hostile, PeersThatMisbehaveDoNotHoldUpHonestClients) {
  for (const char* address : {"@", "127.0.0.1:0"}) {
    SCOPED_TRACE(address);
    // A long handshake timeout: the stalled peers are still pending while the honest
    // clients are served (an outcome, not a race against the clock).
    // backlog: every hostile peer connects before anyone accepts.
    mp::Listener l(address, {.backlog = 64, .authkey = "key", .handshake_timeout = 60s});
    const Hostile kinds[] = {Hostile::silent,      Hostile::garbage,        Hostile::truncated,
                             Hostile::huge_length, Hostile::long_form_huge, Hostile::wrong_reply,
                             Hostile::early_close};
    std::vector<int> hostile;
    int immediate = 0;
    for (int round = 0; round < 3; ++round)
      for (Hostile k : kinds) {
        const int fd = raw_connect(l);
        hostile.push_back(fd);
        immediate += misbehave(fd, k) ? 1 : 0;
      }
    constexpr int kHonest = 8;
    std::vector<std::string> errors(kHonest);
    std::vector<std::thread> clients;
    for (int i = 0; i < kHonest; ++i)
      clients.emplace_back(
          [&, i] { ping_client(l.address(), "key", &errors[static_cast<std::size_t>(i)]); });
    int served = 0, refused = 0;
    while (served < kHonest) {
      try {
        serve_ping(l);
        ++served;
      } catch (const mp::AuthenticationError&) {
        ++refused;
      }
    }
    for (auto& t : clients) t.join();
    for (const auto& e : errors) EXPECT_EQ(e, "");
    // Every peer that failed outright was refused by now (the honest ones came after them
    // in the backlog, and a refusal is raised as soon as its bytes are read) ...
    EXPECT_EQ(refused, immediate);
    // ... and each of those was disconnected.
    std::size_t i = 0;
    for (int round = 0; round < 3; ++round)
      for (Hostile k : kinds) {
        const int fd = hostile[i++];
        if (k != Hostile::silent && k != Hostile::truncated) {
          EXPECT_TRUE(closed_by_server(fd)) << static_cast<int>(k);
        }
      }
    l.close();  // drops the stalled ones
    for (int fd : hostile) {
      EXPECT_TRUE(closed_by_server(fd));
      ::close(fd);
    }
  }
}

TEST(Hostile, StalledPeerIsDroppedAfterTheHandshakeTimeout) {
  mp::Listener l("@", {.authkey = "key", .handshake_timeout = 200ms});
  const int silent = raw_connect(l);
  const int truncated = raw_connect(l);
  misbehave(truncated, Hostile::truncated);
  EXPECT_EQ(what_of<mp::AuthenticationError>([&] { (void)l.accept(); }),
            "authentication timed out");
  EXPECT_EQ(what_of<mp::AuthenticationError>([&] { (void)l.accept(); }),
            "authentication timed out");
  EXPECT_TRUE(closed_by_server(silent));
  EXPECT_TRUE(closed_by_server(truncated));
  ::close(silent);
  ::close(truncated);
  round_trip(l, "key");
}

TEST(Hostile, AFloodBeyondThePendingLimitDropsTheOldest) {
  mp::Listener l("@", {.backlog = 512, .authkey = "key", .handshake_timeout = 60s});
  std::vector<int> silent;
  for (std::size_t i = 0; i < mp::Listener::kMaxPendingHandshakes + 20; ++i)
    silent.push_back(raw_connect(l));
  std::string err;
  std::thread t([&] { ping_client(l.address(), "key", &err); });
  serve_ping(l);  // reached after the flood: the 20 oldest were dropped to make room
  t.join();
  EXPECT_EQ(err, "");
  for (std::size_t i = 0; i < 20; ++i) EXPECT_TRUE(closed_by_server(silent[i]));
  l.close();
  for (int fd : silent) ::close(fd);
}

TEST(Hostile, PeersKilledAtRandomPointsOfTheHandshake) {
  // Forked clients doing a real handshake, SIGKILLed after a seeded random delay; the
  // listener keeps serving and an honest client gets through at the end.
  mp::Listener l("127.0.0.1:0", {.authkey = "key", .handshake_timeout = 2s});
  std::mt19937 rng(12345);
  std::vector<pid_t> kids;
  std::atomic<bool> stop{false};
  int served = 0, failed = 0;
  // The server thread runs first: the clients are forked from a busy multi-threaded parent.
  std::thread server([&] {
    while (!stop) {
      try {
        serve_ping(l);
        ++served;
      } catch (const mp::AuthenticationError&) {
        ++failed;
      } catch (const concur::OSError& e) {
        if (l.closed() || stop) return;
        ++failed;  // the peer died mid-ping (EPIPE/ECONNRESET)
      } catch (const concur::EOFError&) {
        ++failed;
      }
    }
  });
  for (int i = 0; i < 12; ++i) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      try {
        mp::Connection c = mp::Client(l.address(), {.authkey = "key"});
        c.send_bytes(B("ping"));
        (void)c.recv_bytes();
      } catch (...) {
      }
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    ::kill(pid, SIGKILL);
  }
  for (pid_t pid : kids) {
    int st = 0;
    ::waitpid(pid, &st, 0);
  }
  std::string err;
  ping_client(l.address(), "key", &err);
  EXPECT_EQ(err, "");
  stop = true;
  l.close();
  server.join();
  EXPECT_GE(served, 1);
  EXPECT_LE(served + failed, 13 + 1);
}

// ---------------------------------------------------------------------------------------
// Closed stdio

TEST(Listener, WithStdioClosedEveryDescriptorIsAboveTwo) {
  const int status = ptest::run_copy([] {
    ::close(0);
    ::close(1);
    ::close(2);
    int bad = 0;
    try {
      mp::Listener l("127.0.0.1:0", {.authkey = "k"});
      if (l.fileno() <= 2) bad |= 1;
      std::thread t([&] {
        mp::Connection c = mp::Client(l.address(), {.authkey = "k"});
        if (c.fileno() <= 2) bad |= 2;
        c.send_bytes(B("x"));
      });
      mp::Connection c = l.accept();
      if (c.fileno() <= 2) bad |= 4;
      if (S(c.recv_bytes()) != "x") bad |= 8;
      t.join();
      for (int fd = 0; fd <= 2; ++fd)
        if (::fcntl(fd, F_GETFD) != -1) bad |= 16;  // nothing of ours landed on 0-2
    } catch (...) {
      bad |= 32;
    }
    ::_exit(bad);
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// ---------------------------------------------------------------------------------------
// CPython's multiprocessing.connection on the other end

namespace {

bool have_python() {
  static const bool ok =
      ::system("python3 -c 'import multiprocessing.connection, hmac' >/dev/null 2>&1") == 0;
  return ok;
}

// python3 -c script args...; its stdout comes back through `out` (read_all / a line).
struct Python {
  pid_t pid = -1;
  ptest::Pipe out;
  Python(const char* script, std::vector<std::string> args) {
    std::fflush(nullptr);
    pid = ::fork();
    if (pid == 0) {
      ::dup2(out.w, 1);
      std::vector<char*> argv{const_cast<char*>("python3"), const_cast<char*>("-c"),
                              const_cast<char*>(script)};
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp("python3", argv.data());
      ::_exit(127);
    }
    out.close_w();
  }
  std::string line() {  // one line of its stdout, without the newline
    std::string s;
    char ch;
    while (::read(out.r, &ch, 1) == 1 && ch != '\n') s += ch;
    return s;
  }
  // The rest of its stdout, then its exit status.
  std::pair<std::string, int> finish() {
    std::string rest = out.read_all();
    int st = 0;
    ::waitpid(pid, &st, 0);
    return {rest, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st)};
  }
};

// Python's Client: argv[1] is "host:port" or a path; argv[2] the key.
const char* const kPyClient =
    "import sys\n"
    "from multiprocessing.connection import Client\n"
    "from multiprocessing import AuthenticationError\n"
    "a = sys.argv[1]\n"
    "if ':' in a:\n"
    "    h, p = a.rsplit(':', 1); a = (h, int(p))\n"
    "try:\n"
    "    c = Client(a, authkey=sys.argv[2].encode())\n"
    "except AuthenticationError as e:\n"
    "    print('AuthenticationError:', e); sys.exit(0)\n"
    "c.send_bytes(b'hello')\n"
    "print(c.recv_bytes().decode())\n";

// Python's Listener on 127.0.0.1: prints its port, serves one client (echoes upper-cased).
const char* const kPyListener =
    "import sys\n"
    "from multiprocessing.connection import Listener\n"
    "from multiprocessing import AuthenticationError\n"
    "l = Listener(('127.0.0.1', 0), authkey=sys.argv[1].encode())\n"
    "print(l.address[1], flush=True)\n"
    "try:\n"
    "    c = l.accept()\n"
    "except AuthenticationError as e:\n"
    "    print('AuthenticationError:', e); sys.exit(0)\n"
    "c.send_bytes(c.recv_bytes().upper())\n"
    "try:\n"
    "    c.recv_bytes()\n"
    "except EOFError:\n"
    "    pass\n";

// Python 3.12's client side written out with hmac (the python3 here may be older): answers
// our "{sha256}" challenge with a "{sha256}" HMAC, then challenges us with argv[3]'s digest.
const char* const kPy312Client =
    "import sys, socket, hmac, os\n"
    "from multiprocessing.connection import Connection\n"
    "h, p = sys.argv[1].rsplit(':', 1); key = sys.argv[2].encode(); dg = sys.argv[3]\n"
    "c = Connection(socket.create_connection((h, int(p))).detach())\n"
    "m = c.recv_bytes(256)\n"
    "assert m.startswith(b'#CHALLENGE#{sha256}') and len(m) == 11 + 8 + 40, m\n"
    "m = m[11:]\n"
    "c.send_bytes(b'{sha256}' + hmac.new(key, m, 'sha256').digest())\n"
    "assert c.recv_bytes(256) == b'#WELCOME#'\n"
    "ch = b'{' + dg.encode() + b'}' + os.urandom(40)\n"
    "c.send_bytes(b'#CHALLENGE#' + ch)\n"
    "r = c.recv_bytes(256)\n"
    "if r != b'{' + dg.encode() + b'}' + hmac.new(key, ch, dg).digest():\n"
    "    c.send_bytes(b'#FAILURE#'); print('bad response', r); sys.exit(1)\n"
    "c.send_bytes(b'#WELCOME#')\n"
    "c.send_bytes(b'hello')\n"
    "print(c.recv_bytes().decode())\n";

// Our side of one Python client: accept, read "hello", answer "world".
void serve_python(mp::Listener& l) {
  mp::Connection c = l.accept();
  EXPECT_EQ(S(c.recv_bytes()), "hello");
  c.send_bytes(B("world"));
}

}  // namespace

TEST(Python, CPythonClientAgainstOurListener) {
  if (!have_python()) GTEST_SKIP() << "no python3";
  for (std::string address : {std::string("127.0.0.1:0"), unique_path("py")}) {
    SCOPED_TRACE(address);
    mp::Listener l(address, {.authkey = "pykey"});
    Python right(kPyClient, {l.address(), "pykey"});
    serve_python(l);
    EXPECT_EQ(right.finish(), std::make_pair(std::string("world\n"), 0));

    Python wrong(kPyClient, {l.address(), "nope"});
    EXPECT_EQ(what_of<mp::AuthenticationError>([&] { (void)l.accept(); }),
              "digest received was wrong");
    EXPECT_EQ(wrong.finish(),
              std::make_pair(std::string("AuthenticationError: digest sent was rejected\n"), 0));
  }
}

TEST(Python, OurClientAgainstCPythonListener) {
  if (!have_python()) GTEST_SKIP() << "no python3";
  {
    Python py(kPyListener, {"pykey"});
    const std::string port = py.line();
    mp::Connection c = mp::Client("127.0.0.1:" + port, {.authkey = "pykey"});
    c.send_bytes(B("shout"));
    EXPECT_EQ(S(c.recv_bytes()), "SHOUT");
    c.close();
    EXPECT_EQ(py.finish().second, 0);
  }
  {
    Python py(kPyListener, {"pykey"});
    const std::string port = py.line();
    EXPECT_EQ(what_of<mp::AuthenticationError>(
                  [&] { (void)mp::Client("127.0.0.1:" + port, {.authkey = "wrong"}); }),
              "digest sent was rejected");
    EXPECT_EQ(py.finish(),
              std::make_pair(std::string("AuthenticationError: digest received was wrong\n"), 0));
  }
}

TEST(Python, Python312SchemeWithEveryAllowedDigest) {
  if (!have_python()) GTEST_SKIP() << "no python3";
  mp::Listener l("127.0.0.1:0", {.authkey = "k312"});
  for (const char* digest : {"sha256", "sha384", "sha3_256", "sha3_384", "md5"}) {
    SCOPED_TRACE(digest);
    Python py(kPy312Client, {l.address(), "k312", digest});
    serve_python(l);
    EXPECT_EQ(py.finish(), std::make_pair(std::string("world\n"), 0));
  }
}

TEST(Hostile, APartialFrameDoesNotMakeAcceptSpin) {
  // A peer that sent part of a frame waits in poll like a silent one: accept() burns no CPU
  // while it waits for the rest (CPU time, which load cannot inflate, only deflate).
  mp::Listener l("@", {.authkey = "key", .handshake_timeout = 1s});
  const int fd = raw_connect(l);
  misbehave(fd, Hostile::truncated);
  timespec t0{}, t1{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  EXPECT_EQ(what_of<mp::AuthenticationError>([&] { (void)l.accept(); }),
            "authentication timed out");
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
  const double cpu = static_cast<double>(t1.tv_sec - t0.tv_sec) +
                     static_cast<double>(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  // Waiting costs a few polls (microseconds); a spinning accept() got 80-250 ms of this
  // second even on a machine with a load average of 17 on 2 cores.
  EXPECT_LT(cpu, 0.03) << cpu;
  ::close(fd);
}
