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
