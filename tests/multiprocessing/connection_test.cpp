// concur-test: timeout=120
// mp::Pipe / Connection / mp::wait: the byte layer (Python's _TestConnection.test_connection
// and test_duplex_false ideas), Python's errors, hostile and torn frames, huge messages
// between processes, peers killed mid-message, descriptor passing, fd hygiene, and the
// wire format against CPython's own Connection.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <concur/multiprocessing.hpp>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../helpers/codec_types.hpp"
#include "bytes_util.hpp"
#include "fork_util.hpp"
#include "gtest/gtest.h"
#include "process_util.hpp"

namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;
using concur_test::B;
using concur_test::fork_child;
using concur_test::S;
using concur_test::wait_exit;
using concur_test::what_of;

namespace {

// A deterministic pattern for big messages, different per `seed`.
std::vector<std::byte> pattern(std::size_t n, std::uint32_t seed) {
  std::vector<std::byte> v(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    v[i] = static_cast<std::byte>(x >> 24);
  }
  return v;
}

// Writes raw bytes to an fd (bypassing the Connection), for forging frames.
void raw_write(int fd, std::span<const std::byte> b) {
  ptest::put(fd, std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}
void raw_write(int fd, std::initializer_list<unsigned> bytes) {
  std::vector<std::byte> v;
  for (unsigned b : bytes) v.push_back(static_cast<std::byte>(b));
  raw_write(fd, v);
}

// Peak resident memory. Under AddressSanitizer every fresh allocation also touches its
// shadow (1/8 of its address space) and freed blocks sit in a quarantine, so reserved-but-
// untouched address space shows up as memory there: the checks then allow for it.
// ThreadSanitizer's shadow and allocator metadata grow with every fresh allocation too (23 MiB
// over 400 rounds here), so it gets a looser bound; a wild allocation would still be GiBs.
#if defined(__SANITIZE_ADDRESS__)
constexpr long kRssSlackKiB = 256 * 1024;
#elif defined(__SANITIZE_THREAD__)
constexpr long kRssSlackKiB = 128 * 1024;
#else
constexpr long kRssSlackKiB = 16 * 1024;
#endif
long max_rss_kib() {
  rusage r{};
  ::getrusage(RUSAGE_SELF, &r);
  return r.ru_maxrss;
}

// ---------------------------------------------------------------------------------------
// Basics (test_connection)

TEST(Connection, DuplexBothWaysAndEmptyMessages) {
  auto [a, b] = mp::Pipe();
  EXPECT_TRUE(a.readable() && a.writable() && b.readable() && b.writable());
  a.send_bytes(B("hello"));
  b.send_bytes(B("world"));
  a.send_bytes({});
  EXPECT_EQ(S(b.recv_bytes()), "hello");
  EXPECT_EQ(S(a.recv_bytes()), "world");
  EXPECT_TRUE(b.recv_bytes().empty());
  EXPECT_FALSE(a.poll());
  EXPECT_FALSE(b.poll());
}

TEST(Connection, SendBytesOffsetAndSize) {
  auto [a, b] = mp::Pipe();
  const auto msg = B("abcdef");
  a.send_bytes(msg, 2);
  a.send_bytes(msg, 2, 2);
  a.send_bytes(msg, 6);
  a.send_bytes(msg, 1, 0);
  EXPECT_EQ(S(b.recv_bytes()), "cdef");
  EXPECT_EQ(S(b.recv_bytes()), "cd");
  EXPECT_EQ(S(b.recv_bytes()), "");
  EXPECT_EQ(S(b.recv_bytes()), "");
  EXPECT_EQ(what_of<concur::ValueError>([&] { a.send_bytes(msg, 7); }), "buffer length < offset");
  EXPECT_EQ(what_of<concur::ValueError>([&] { a.send_bytes(msg, 1, 6); }),
            "buffer length < offset + size");
  EXPECT_FALSE(b.poll());
}

TEST(Connection, ManySmallMessagesKeepOrderAndBoundaries) {
  // The receiver reads several frames per system call; boundaries must survive that, also
  // for frames straddling the end of the 64 KiB buffer.
  auto [a, b] = mp::Pipe();
  std::thread t([&] {
    for (int i = 0; i < 3000; ++i) a.send_bytes(pattern(static_cast<std::size_t>(i % 97) * 13, i));
  });
  for (int i = 0; i < 3000; ++i) {
    ASSERT_EQ(b.recv_bytes(), pattern(static_cast<std::size_t>(i % 97) * 13, i)) << i;
  }
  t.join();
}

TEST(Connection, RecvBytesIntoAndBufferTooShort) {
  auto [a, b] = mp::Pipe();
  a.send_bytes(B("abcdef"));
  std::vector<std::byte> buf(10, std::byte{'.'});
  EXPECT_EQ(b.recv_bytes_into(buf, 3), 6u);
  EXPECT_EQ(S(buf), "...abcdef.");

  a.send_bytes(B("hello world"));
  a.send_bytes(B("next"));
  std::vector<std::byte> small(4);
  try {
    (void)b.recv_bytes_into(small);
    FAIL() << "no BufferTooShort";
  } catch (const mp::BufferTooShort& e) {
    EXPECT_EQ(S(e.message()), "hello world");  // the whole message
  }
  EXPECT_EQ(b.recv_bytes_into(small), 4u);  // it was consumed: the next one follows
  EXPECT_EQ(S(small), "next");

  EXPECT_EQ(what_of<concur::ValueError>([&] { (void)b.recv_bytes_into(buf, 11); }),
            "offset too large");
  // A big message that does not fit: BufferTooShort still carries all of it.
  const auto big = pattern(3 << 20, 7);
  std::thread t([&] { a.send_bytes(big); });
  try {
    (void)b.recv_bytes_into(buf);
    FAIL();
  } catch (const mp::BufferTooShort& e) {
    EXPECT_EQ(e.message(), big);
  }
  t.join();
}

TEST(Connection, OneWayPipeDirections) {  // test_duplex_false
  auto [reader, writer] = mp::Pipe(false);
  EXPECT_TRUE(reader.readable());
  EXPECT_FALSE(reader.writable());
  EXPECT_FALSE(writer.readable());
  EXPECT_TRUE(writer.writable());
  writer.send_bytes(B("x"));
  EXPECT_EQ(S(reader.recv_bytes()), "x");
  EXPECT_EQ(what_of<concur::OSError>([&] { reader.send_bytes(B("y")); }),
            "connection is read-only");
  EXPECT_EQ(what_of<concur::OSError>([&] { (void)writer.recv_bytes(); }),
            "connection is write-only");
  EXPECT_EQ(what_of<concur::OSError>([&] { (void)writer.poll(); }), "connection is write-only");
  std::vector<std::byte> buf(4);
  EXPECT_EQ(what_of<concur::OSError>([&] { (void)writer.recv_bytes_into(buf); }),
            "connection is write-only");
  EXPECT_EQ(what_of<concur::OSError>([&] { (void)reader.poll(); }), "<no exception>");
}

TEST(Connection, ClosedHandle) {
  auto [a, b] = mp::Pipe();
  a.close();
  EXPECT_TRUE(a.closed());
  a.close();  // idempotent
  for (auto op : std::vector<std::function<void()>>{
           [&] { a.send_bytes(B("x")); }, [&] { (void)a.recv_bytes(); }, [&] { (void)a.poll(); },
           [&] { (void)a.fileno(); }, [&] { a.send_handle(0); }, [&] { (void)a.recv_handle(); }}) {
    EXPECT_EQ(what_of<concur::OSError>(op), "handle is closed");
  }
  mp::Connection none;
  EXPECT_TRUE(none.closed());
  EXPECT_EQ(what_of<concur::OSError>([&] { (void)none.recv_bytes(); }), "handle is closed");
  EXPECT_EQ(what_of<concur::ValueError>([] { mp::Connection c(-1); }), "invalid handle");
}

TEST(Connection, MoveKeepsBufferedMessages) {
  auto [a, b] = mp::Pipe();
  a.send_bytes(B("one"));
  a.send_bytes(B("two"));
  EXPECT_EQ(S(b.recv_bytes()), "one");  // "two" is likely in b's buffer now
  mp::Connection c(std::move(b));
  EXPECT_TRUE(b.closed());
  EXPECT_EQ(S(c.recv_bytes()), "two");
  mp::Connection d;
  d = std::move(c);
  a.send_bytes(B("three"));
  EXPECT_EQ(S(d.recv_bytes()), "three");
}

// ---------------------------------------------------------------------------------------
// End of file, torn and hostile frames

TEST(Connection, EofAfterTheLastMessage) {
  for (bool duplex : {true, false}) {
    auto [r, w] = mp::Pipe(duplex);
    w.send_bytes(B("last"));
    w.close();
    EXPECT_TRUE(r.poll());
    EXPECT_EQ(S(r.recv_bytes()), "last");
    EXPECT_TRUE(r.poll()) << "poll(0) is true at EOF";
    EXPECT_TRUE(r.poll(0s));
    EXPECT_THROW((void)r.recv_bytes(), concur::EOFError);
    EXPECT_THROW((void)r.recv_bytes(), concur::EOFError);
  }
}

TEST(Connection, TornFrameIsOSError) {
  struct Case {
    std::vector<unsigned> bytes;
  };
  const std::vector<Case> cases = {
      {{0, 0}},                             // half a header
      {{0, 0, 0, 10, 'a', 'b', 'c'}},       // 3 of 10 payload bytes
      {{0xff, 0xff, 0xff, 0xff, 0, 0, 0}},  // half a long header
      {{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 5, 'x'}},
  };
  for (const Case& c : cases) {
    for (bool duplex : {true, false}) {
      auto [r, w] = mp::Pipe(duplex);
      std::vector<std::byte> raw;
      for (unsigned x : c.bytes) raw.push_back(static_cast<std::byte>(x));
      raw_write(w.fileno(), raw);
      w.close();
      EXPECT_EQ(what_of<concur::OSError>([&] { (void)r.recv_bytes(); }),
                "got end of file during message");
    }
  }
  // And into a caller's buffer.
  auto [r, w] = mp::Pipe();
  raw_write(w.fileno(), {0, 0, 0, 10, 'a'});
  w.close();
  std::vector<std::byte> buf(64);
  EXPECT_EQ(what_of<concur::OSError>([&] { (void)r.recv_bytes_into(buf); }),
            "got end of file during message");
}

TEST(Connection, HugeOrNegativeLengthIsBadMessageLengthWithoutAllocating) {
  const long rss0 = max_rss_kib();
  // 2^62 in the long form; a negative short length; 2^63 + 1.
  const std::vector<std::vector<unsigned>> frames = {
      {0xff, 0xff, 0xff, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0},
      {0xff, 0xff, 0xff, 0xfb},
      {0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1},
      {0x80, 0, 0, 0},
  };
  for (const auto& f : frames) {
    auto [a, b] = mp::Pipe();
    std::vector<std::byte> raw;
    for (unsigned x : f) raw.push_back(static_cast<std::byte>(x));
    raw_write(b.fileno(), raw);
    EXPECT_EQ(what_of<concur::OSError>([&] { (void)a.recv_bytes(); }), "bad message length");
    // As Python: the duplex end stops receiving (it can still send).
    EXPECT_FALSE(a.readable());
    EXPECT_EQ(what_of<concur::OSError>([&] { (void)a.recv_bytes(); }), "connection is write-only");
    a.send_bytes(B("still sends"));
    EXPECT_EQ(S(b.recv_bytes()), "still sends");
  }
  // A read-only end is closed instead.
  auto [r, w] = mp::Pipe(false);
  raw_write(w.fileno(), {0xff, 0xff, 0xff, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(what_of<concur::OSError>([&] { (void)r.recv_bytes(); }), "bad message length");
  EXPECT_TRUE(r.closed());
  EXPECT_LT(max_rss_kib() - rss0, kRssSlackKiB) << "a hostile length must not be allocated";
}

TEST(Connection, MaxLengthAndPerConnectionLimit) {
  auto [a, b] = mp::Pipe();
  b.send_bytes(B("hello world"));
  EXPECT_EQ(what_of<concur::OSError>([&] { (void)a.recv_bytes(5); }), "bad message length");
  EXPECT_EQ(what_of<concur::OSError>([&] { (void)a.recv_bytes(); }), "connection is write-only");

  auto [c, d] = mp::Pipe();
  EXPECT_EQ(c.max_message(), std::size_t{1} << 30);
  c.set_max_message(1000);
  d.send_bytes(std::vector<std::byte>(1000));
  EXPECT_EQ(c.recv_bytes().size(), 1000u);
  d.send_bytes(std::vector<std::byte>(1001));
  EXPECT_EQ(what_of<concur::OSError>([&] { (void)c.recv_bytes(); }), "bad message length");
  // The sending side checks its own limit.
  d.set_max_message(10);
  EXPECT_THROW(d.send_bytes(std::vector<std::byte>(11)), concur::ValueError);
}

TEST(Connection, RandomBytesNeverCrashOrAllocateWildly) {
  // Seeded rounds of random garbage (a random prefix of real frames, then noise): every
  // recv ends in a message, EOFError or OSError; nothing else, no crash, no big allocation.
  std::mt19937 rng(20261201);
  const long rss0 = max_rss_kib();
  int eofs = 0, oserrors = 0, messages = 0;
  for (int round = 0; round < 400; ++round) {
    auto [r, w] = mp::Pipe(round % 2 == 0);
    std::vector<std::byte> noise(rng() % 48);
    for (auto& x : noise) x = static_cast<std::byte>(rng());
    if (round % 3 == 0 && noise.size() >= 4) {  // a plausible small length now and then
      noise[0] = noise[1] = noise[2] = std::byte{0};
      noise[3] = static_cast<std::byte>(rng() % 64);
    }
    raw_write(w.fileno(), noise);
    w.close();
    for (int i = 0; i < 64; ++i) {
      try {
        (void)r.recv_bytes();
        ++messages;
      } catch (const concur::EOFError&) {
        ++eofs;
        break;
      } catch (const concur::OSError&) {
        ++oserrors;
        break;
      }
    }
  }
  EXPECT_GT(eofs + oserrors, 0);
  EXPECT_GT(oserrors, 0);
  EXPECT_LT(max_rss_kib() - rss0, kRssSlackKiB);
}

// ---------------------------------------------------------------------------------------
// Broken pipes: EPIPE is an OSError, never a SIGPIPE death

std::atomic<int> g_sigpipes{0};

TEST(Connection, BrokenPipeIsOSErrorNotSigpipe) {
  // A handler shows whether any SIGPIPE reached the process; the default action would kill.
  struct sigaction sa {
  }, old{};
  sa.sa_handler = [](int) { g_sigpipes.fetch_add(1); };
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGPIPE, &sa, &old);
  for (bool duplex : {true, false}) {
    auto [r, w] = mp::Pipe(duplex);
    r.close();
    try {
      w.send_bytes(B("nobody listens"));
      FAIL() << "no error";
    } catch (const concur::OSError& e) {
      EXPECT_EQ(e.code(), EPIPE);
      EXPECT_STREQ(e.what(), "[Errno 32] Broken pipe");
    }
  }
  EXPECT_EQ(g_sigpipes.load(), 0);
  struct sigaction now {};
  ::sigaction(SIGPIPE, nullptr, &now);
  EXPECT_EQ(now.sa_handler, sa.sa_handler) << "the disposition is the user's";
  ::sigaction(SIGPIPE, &old, nullptr);

  // Default disposition in a child: it survives, and a caller that blocks SIGPIPE finds no
  // SIGPIPE left pending by us (but one it had pending stays).
  const pid_t pid = fork_child([] {
    ::signal(SIGPIPE, SIG_DFL);
    auto [r, w] = mp::Pipe(false);
    r.close();
    try {
      w.send_bytes(B("x"));
      return 2;
    } catch (const concur::OSError& e) {
      if (e.code() != EPIPE) return 3;
    }
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    try {
      w.send_bytes(B("x"));
      return 4;
    } catch (const concur::OSError&) {
    }
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE)) return 5;
    ::raise(SIGPIPE);  // the caller's own pending signal is kept
    try {
      w.send_bytes(B("x"));
    } catch (const concur::OSError&) {
    }
    sigpending(&pending);
    if (!sigismember(&pending, SIGPIPE)) return 6;
    return 0;
  });
  EXPECT_EQ(wait_exit(pid), 0);
}

TEST(Connection, SignalsWithoutSaRestartDoNotBreakBlockingCalls) {
  // A handler installed without SA_RESTART makes a blocked recv/send/poll return EINTR;
  // every call retries (poll with the time left) and the message still arrives whole.
  struct sigaction sa {
  }, old{};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  ::sigaction(SIGUSR1, &sa, &old);
  auto [a, b] = mp::Pipe();
  const pthread_t main_thread = ::pthread_self();
  std::atomic<bool> done{false};
  std::thread pester([&] {
    while (!done.load()) {
      ::pthread_kill(main_thread, SIGUSR1);
      std::this_thread::sleep_for(1ms);
    }
  });
  std::thread sender([&] {
    std::this_thread::sleep_for(30ms);
    for (int i = 0; i < 4; ++i) b.send_bytes(pattern(1 << 20, 4));  // read in many pieces
    b.send(std::string("after"));
  });
  EXPECT_TRUE(a.poll(std::chrono::hours::max()));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(a.recv_bytes() == pattern(1 << 20, 4));
  EXPECT_EQ(a.recv<std::string>(), "after");
  done = true;
  pester.join();
  sender.join();
  ::sigaction(SIGUSR1, &old, nullptr);
}

// ---------------------------------------------------------------------------------------
// poll and wait

TEST(Connection, PollTimeouts) {
  auto [a, b] = mp::Pipe();
  EXPECT_FALSE(a.poll());
  EXPECT_FALSE(a.poll(0ms));
  EXPECT_FALSE(a.poll(-5s));
  EXPECT_FALSE(a.poll(std::chrono::duration<double>(0.001)));
  EXPECT_FALSE(a.poll(std::chrono::duration<double, std::milli>(-1.5)));
  EXPECT_EQ(what_of<concur::ValueError>([&] {
              (void)a.poll(std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN()));
            }),
            "Invalid value NaN (not a number)");
  // "Forever" forms return once data comes (no overflow on hours::max() or +inf).
  std::thread t([&] {
    std::this_thread::sleep_for(20ms);
    b.send_bytes(B("x"));
  });
  EXPECT_TRUE(a.poll(std::chrono::hours::max()));
  t.join();
  EXPECT_TRUE(a.poll(std::chrono::nanoseconds::max()));
  EXPECT_TRUE(a.poll(std::chrono::duration<double>(std::numeric_limits<double>::infinity())));
  EXPECT_TRUE(a.poll(std::nullopt));
  EXPECT_EQ(S(a.recv_bytes()), "x");
  EXPECT_FALSE(a.poll(std::optional<std::chrono::nanoseconds>(1ms)));
}

TEST(Connection, PollSeesMessagesAlreadyBuffered) {
  // Two messages arrive in one read; after the first recv the second is in this end's
  // buffer and no longer in the socket: poll and wait must still say "ready".
  auto [a, b] = mp::Pipe();
  b.send_bytes(B("1"));
  b.send_bytes(B("2"));
  ASSERT_TRUE(a.poll(1h));
  std::this_thread::sleep_for(10ms);  // let both frames arrive (success does not depend on it)
  EXPECT_EQ(S(a.recv_bytes()), "1");
  EXPECT_TRUE(a.poll());
  mp::Connection* list[] = {&a};
  EXPECT_EQ(mp::wait(list, 0s).size(), 1u);
  EXPECT_EQ(S(a.recv_bytes()), "2");
  EXPECT_FALSE(a.poll());
  EXPECT_TRUE(mp::wait(list, 0s).empty());
}

TEST(Connection, WaitOverConnectionsAndASentinel) {
  auto [a1, b1] = mp::Pipe();
  auto [a2, b2] = mp::Pipe();
  auto [r3, w3] = mp::Pipe(false);
  std::vector<mp::Connection*> conns = {&a1, &a2, &r3};
  EXPECT_TRUE(mp::wait(conns, 0s).empty());
  EXPECT_TRUE(mp::wait(conns, -1s).empty());
  EXPECT_TRUE(mp::wait(conns, std::chrono::duration<double>(0.002)).empty());
  b2.send_bytes(B("x"));
  w3.send_bytes(B("y"));
  auto ready = mp::wait(conns);  // forever: returns once something is ready
  ASSERT_FALSE(ready.empty());
  ready = mp::wait(conns, 1h);
  // Both are ready now (poll returned for one; the other was written before).
  EXPECT_EQ(ready, (std::vector<mp::Connection*>{&a2, &r3}));
  EXPECT_EQ(S(a2.recv_bytes()), "x");
  EXPECT_EQ(S(r3.recv_bytes()), "y");

  // A process sentinel among connections: ready when it ends.
  mp::Process p([] { std::this_thread::sleep_for(30ms); });
  p.start();
  auto ready2 = mp::wait({a1, p}, std::chrono::hours::max());
  ASSERT_EQ(ready2.size(), 1u);
  EXPECT_EQ(ready2[0].process(), &p);
  EXPECT_EQ(ready2[0].connection(), nullptr);
  p.join();
  // Raw descriptors.
  const int fds[] = {a1.fileno(), *p.sentinel()};
  EXPECT_EQ(mp::wait(std::span<const int>(fds), 0s), std::vector<int>{*p.sentinel()});
  // A peer closing makes a connection ready (EOF).
  b1.close();
  EXPECT_EQ(mp::wait({a1}, 1h).size(), 1u);
  // Errors.
  a2.close();
  EXPECT_EQ(what_of<concur::OSError>([&] { (void)mp::wait(conns, 0s); }), "handle is closed");
  EXPECT_THROW((void)mp::wait({-1}, 0s), concur::ValueError);
  EXPECT_THROW((void)mp::wait({a1}, std::chrono::duration<double>(std::nan(""))),
               concur::ValueError);
  mp::Process never;
  EXPECT_THROW((void)mp::wait({never}, 0s), concur::ValueError);
}

// ---------------------------------------------------------------------------------------
// Between processes

TEST(Connection, HelloWorldFromAProcess) {  // the notes' example, through mp::Process
  auto [parent_pipe, child_pipe] = mp::Pipe();
  mp::Process p([&child_pipe] { child_pipe.send(std::string("Hello World")); });
  p.start();
  child_pipe.close();
  EXPECT_EQ(parent_pipe.recv<std::string>(), "Hello World");
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_THROW((void)parent_pipe.recv_bytes(), concur::EOFError);
}

void big_both_ways(std::size_t size) {
  auto [a, b] = mp::Pipe();
  const pid_t pid = fork_child([&, size] {
    a.close();
    // Send and receive at once (one thread each), as the parent does: no deadlock.
    bool sent = true;
    std::thread t([&] {
      try {
        b.send_bytes(pattern(size, 2));
      } catch (...) {
        sent = false;
      }
    });
    const auto got = b.recv_bytes();
    t.join();
    return got == pattern(size, 1) && sent ? 0 : 1;
  });
  b.close();
  const auto mine = pattern(size, 1);
  std::thread t([&] { a.send_bytes(mine); });
  const auto got = a.recv_bytes();
  t.join();
  EXPECT_EQ(got.size(), size);
  EXPECT_TRUE(got == pattern(size, 2));
  EXPECT_EQ(wait_exit(pid), 0);
}

TEST(Connection, SixteenMiBBothWaysBetweenProcesses) {
  big_both_ways(16u << 20);
}
TEST(Connection, SixtyFourMiBBothWaysBetweenProcesses) {
  big_both_ways(64u << 20);
}

TEST(Connection, OneWayPipeBigMessageAcrossFork) {
  auto [r, w] = mp::Pipe(false);
  const pid_t pid = fork_child([&] {
    r.close();
    w.send_bytes(pattern(5 << 20, 9));
    return 0;
  });
  w.close();
  std::vector<std::byte> buf(6 << 20);
  const std::size_t n = r.recv_bytes_into(buf);
  ASSERT_EQ(n, std::size_t{5} << 20);
  buf.resize(n);
  EXPECT_TRUE(buf == pattern(n, 9));
  EXPECT_EQ(wait_exit(pid), 0);
  EXPECT_THROW((void)r.recv_bytes(), concur::EOFError);
}

// Forks a relay that forwards every message from `in` to `out` with recv_bytes/send_bytes
// (it understands none of them) until EOF. The child closes the parent's ends `mine1`,
// `mine2`; the parent closes `in` and `out`.
pid_t start_relay(mp::Connection& in, mp::Connection& out, mp::Connection& mine1,
                  mp::Connection& mine2) {
  const pid_t pid = fork_child([&] {
    mine1.close();
    mine2.close();
    for (;;) {
      try {
        out.send_bytes(in.recv_bytes());
      } catch (const concur::EOFError&) {
        return 0;
      }
    }
  });
  in.close();
  out.close();
  return pid;
}

TEST(Connection, BytesRelayProcessForwardsUnchanged) {
  // parent -> relay -> parent: the relay understands nothing and forwards bytes.
  auto [to_relay, relay_in] = mp::Pipe();
  auto [from_relay, relay_out] = mp::Pipe();
  const pid_t pid = start_relay(relay_in, relay_out, to_relay, from_relay);
  std::thread t([&] {
    for (int i = 0; i < 200; ++i)
      to_relay.send_bytes(pattern(static_cast<std::size_t>(i) * 331, i));
    to_relay.send_bytes(pattern(3 << 20, 1000));
    to_relay.close();
  });
  for (int i = 0; i < 200; ++i)
    ASSERT_EQ(from_relay.recv_bytes(), pattern(static_cast<std::size_t>(i) * 331, i));
  EXPECT_TRUE(from_relay.recv_bytes() == pattern(3 << 20, 1000));
  t.join();
  EXPECT_THROW((void)from_relay.recv_bytes(), concur::EOFError);
  EXPECT_EQ(wait_exit(pid), 0);
}

TEST(Connection, PeerKilledMidMessageIsAnErrorNotAHang) {
  // The child claims a 64 MiB message and writes it slowly; the parent sees some of it,
  // kills the child, and must get an OSError (torn frame / reset), never wait forever.
  for (bool duplex : {true, false}) {
    auto [r, w] = mp::Pipe(duplex);
    const pid_t pid = fork_child([&] {
      r.close();
      std::byte header[12];
      const std::size_t hs = concur::detail::write_frame_header(header, 64u << 20);
      raw_write(w.fileno(), std::span<const std::byte>(header, hs));
      const auto chunk = pattern(4096, 3);
      for (;;) {
        raw_write(w.fileno(), chunk);
        ::usleep(1000);
      }
      return 0;
    });
    w.close();
    ASSERT_TRUE(r.poll(1h));
    ::kill(pid, SIGKILL);
    EXPECT_EQ(wait_exit(pid), -SIGKILL);
    EXPECT_THROW((void)r.recv_bytes(), concur::OSError);
  }
}

TEST(Connection, PeerKilledAtRandomPointsDeliversOnlyWholeMessages) {
  // Seeded: a child streams numbered messages of random sizes; the parent kills it after a
  // random number of messages received. Every message the parent gets is whole and in
  // order; the stream ends in EOFError or OSError.
  std::mt19937 rng(4242);
  for (int round = 0; round < 12; ++round) {
    const std::uint32_t seed = static_cast<std::uint32_t>(rng());
    const int kill_after = 1 + static_cast<int>(rng() % 40);
    auto [r, w] = mp::Pipe(round % 2 == 0);
    const pid_t pid = fork_child([&] {
      r.close();
      std::mt19937 sizes(seed);
      for (int i = 0;; ++i) w.send_bytes(pattern(sizes() % 200000, static_cast<std::uint32_t>(i)));
      return 0;
    });
    w.close();
    std::mt19937 sizes(seed);
    int i = 0;
    bool ended = false, intact = true;
    while (!ended && intact) {
      try {
        const auto m = r.recv_bytes();
        intact = m == pattern(sizes() % 200000, static_cast<std::uint32_t>(i));
        if (++i == kill_after || !intact) ::kill(pid, SIGKILL);
      } catch (const concur::EOFError&) {
        ended = true;
      } catch (const concur::OSError&) {
        ended = true;
      }
    }
    EXPECT_TRUE(intact) << "round " << round << " message " << i - 1;
    EXPECT_EQ(wait_exit(pid), -SIGKILL);
    EXPECT_GE(i, kill_after);
  }
}

TEST(Connection, ForkFromABusyMultiThreadedParent) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer cannot follow a fork from a multi-threaded parent";
#endif
  // Two threads stream messages over one Pipe while the main thread forks children that
  // each echo over their own Pipe: a Connection holds no lock a fork could catch held.
  auto [x, y] = mp::Pipe();
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    for (int i = 0; !stop.load(); ++i) x.send(i);
    x.send(-1);
  });
  std::thread receiver([&] {
    while (y.recv<int>() != -1) {
    }
  });
  for (int k = 0; k < 5; ++k) {
    auto [a, b] = mp::Pipe();
    const pid_t pid = fork_child([&] {
      a.close();
      b.send(b.recv<std::string>() + "!");
      return 0;
    });
    b.close();
    a.send(std::string("ping"));
    EXPECT_EQ(a.recv<std::string>(), "ping!");
    EXPECT_EQ(wait_exit(pid), 0);
  }
  stop = true;
  sender.join();
  receiver.join();
}

TEST(Connection, ChildWithClosedStdioUsesPipes) {
  auto [a, b] = mp::Pipe();
  const pid_t pid = fork_child([&] {
    a.close();
    ::close(0);
    ::close(1);
    ::close(2);
    // A Pipe made now must not land on 0-2 (printing would write into it).
    auto [c, d] = mp::Pipe();
    if (c.fileno() < 3 || d.fileno() < 3) return 7;
    d.send_bytes(B("inner"));
    if (S(c.recv_bytes()) != "inner") return 8;
    const auto m = b.recv_bytes();
    b.send_bytes(m);
    return 0;
  });
  b.close();
  a.send_bytes(B("echo me"));
  EXPECT_EQ(S(a.recv_bytes()), "echo me");
  EXPECT_EQ(wait_exit(pid), 0);
}

// ---------------------------------------------------------------------------------------
// Descriptor passing

TEST(Connection, SendHandleAcrossProcesses) {
  auto [a, b] = mp::Pipe();
  const pid_t pid = fork_child([&] {
    a.close();
    const int fd = b.recv_handle();
    const int flags = ::fcntl(fd, F_GETFD);
    if (!(flags & FD_CLOEXEC)) return 3;
    ptest::put(fd, "through a passed fd");
    ::close(fd);
    b.send_bytes(B("done"));
    return 0;
  });
  b.close();
  ptest::Pipe p;  // a plain pipe: its write end travels to the child
  a.send_handle(p.w);
  p.close_w();
  EXPECT_EQ(S(a.recv_bytes()), "done");
  EXPECT_EQ(p.read_all(), "through a passed fd");
  EXPECT_EQ(wait_exit(pid), 0);
}

TEST(Connection, HandleFramesMixWithMessages) {
  const int fds0 = ptest::count_fds();
  {
    auto [a, b] = mp::Pipe();
    ptest::Pipe p;
    a.send_bytes(B("before"));
    a.send_handle(p.w);
    a.send_bytes(B("after"));
    a.send_handle(p.r);
    a.send_bytes(B("last"));
    EXPECT_EQ(S(b.recv_bytes()), "before");
    const int got = b.recv_handle();
    EXPECT_GE(got, 0);
    EXPECT_EQ(S(b.recv_bytes()), "after");
    // recv_bytes on a descriptor frame: OSError, and the descriptor is not leaked.
    EXPECT_EQ(what_of<concur::OSError>([&] { (void)b.recv_bytes(); }),
              "expected a message, got a file descriptor (use recv_handle)");
    // recv_handle on a message: OSError, the message is consumed.
    EXPECT_EQ(what_of<concur::OSError>([&] { (void)b.recv_handle(); }),
              "expected a file descriptor, got a message");
    ptest::put(got, "z");
    ::close(got);
    p.close_w();
    EXPECT_EQ(p.read_all(), "z");
    // One-way pipes cannot carry descriptors.
    auto [r, w] = mp::Pipe(false);
    EXPECT_THROW(w.send_handle(0), concur::OSError);
    EXPECT_THROW((void)r.recv_handle(), concur::OSError);
    // Descriptors received but never taken are closed with the connection.
    a.send_handle(0);
    a.send_handle(1);
    a.send_bytes(B("x"));
    ASSERT_TRUE(b.poll(1h));
  }
  EXPECT_EQ(ptest::count_fds(), fds0);
}

// ---------------------------------------------------------------------------------------
// Objects through the codec: send(x) = send_bytes(encode(x)), recv<T>() = decode<T>(recv_bytes())

namespace codec = concur::detail::codec;
enum class Color : std::uint8_t { red = 1, green = 2 };

// Every family, each value sent by `send` and checked by `check` in the same order.
template <class Send, class Check>
void every_family(Send&& send, Check&& check) {
  using namespace codec_test;
  auto both = [&](const auto& v) {
    send(v);
    check(v);
  };
  both(std::int8_t{-5});
  both(std::uint64_t{1} << 63);
  both(3.25);
  both(true);
  both(Color::green);
  both('z');
  both(std::string());
  both(std::string(100000, 'q'));  // bigger than the receive buffer
  both(std::vector<int>{1, 2, 3});
  both(std::vector<std::string>{"a", "", "ccc"});
  both(std::vector<bool>{true, false, true});
  both(std::array<int, 4>{4, 3, 2, 1});
  both(std::pair<int, std::string>{7, "seven"});
  both(std::tuple<int, double, std::string>{1, 2.5, "three"});
  both(std::optional<int>());
  both(std::optional<int>(9));
  both(std::variant<int, std::string>(std::string("alt")));
  both(std::map<std::string, int>{{"x", 1}, {"y", 2}});
  both(std::unordered_map<int, std::string>{{1, "one"}, {2, "two"}});
  both(std::set<std::string>{"b", "a"});
  both(Record{42, 0.5, "twelve chars"});
  both(Point{3, -4});
  both(Pod{1, 2.5f, "pod!"});
  both(Shape{"tri", {{0, 0}, {1, 0}, {0, 1}}, {{"r", Record{1, 1.5, "x"}}}, std::string("e")});
  both(std::vector<std::map<std::string, std::vector<std::optional<Point>>>>{
      {{"k", {Point{1, 2}, std::nullopt}}}, {}});
  std::vector<std::int32_t> big(1 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::int32_t>(i * 7);
  both(big);  // 4 MiB: the storage path of recv<T>
}

TEST(ConnectionObjects, EveryFamilyRoundTrips) {
  auto [a, b] = mp::Pipe();
  std::thread sender;  // a sender thread: the 4 MiB value does not fit the socket buffer
  every_family([&](const auto& v) { sender = std::thread([&a, &v] { a.send(v); }); },
               [&](const auto& v) {
                 using T = std::decay_t<decltype(v)>;
                 EXPECT_TRUE(b.recv<T>() == v) << codec::type_name<T>();
                 sender.join();
               });
}

TEST(ConnectionObjects, EveryFamilyThroughABytesRelayProcess) {
  // parent --send--> relay (recv_bytes/send_bytes, understands nothing) --> parent recv<T>.
  auto [to_relay, relay_in] = mp::Pipe(false);
  auto [from_relay, relay_out] = mp::Pipe(false);
  std::swap(to_relay, relay_in);  // Pipe(false) is (reader, writer): the parent writes
  const pid_t pid = start_relay(relay_in, relay_out, to_relay, from_relay);
  // Send everything first from a thread (the relay's pipes could not hold it all).
  std::vector<std::function<void()>> checks;
  std::vector<std::function<void()>> sends;
  every_family([&](const auto& v) { sends.push_back([&to_relay, v] { to_relay.send(v); }); },
               [&](const auto& v) {
                 checks.push_back([&from_relay, v] {
                   using T = std::decay_t<decltype(v)>;
                   EXPECT_TRUE(from_relay.recv<T>() == v) << codec::type_name<T>();
                 });
               });
  std::thread t([&] {
    for (auto& f : sends) f();
    to_relay.close();
  });
  for (auto& f : checks) f();
  t.join();
  EXPECT_THROW((void)from_relay.recv<int>(), concur::EOFError);
  EXPECT_EQ(wait_exit(pid), 0);
}

TEST(ConnectionObjects, TypeMismatchIsTypeErrorAndConsumesTheMessage) {
  auto [a, b] = mp::Pipe();
  a.send(std::int32_t{5});
  a.send(std::string("next"));
  a.send(std::vector<int>(50000, 1));  // bigger than the buffer
  a.send(std::int64_t{6});
  EXPECT_THROW((void)b.recv<std::int64_t>(), concur::TypeError);
  EXPECT_THROW((void)b.recv<std::int64_t>(), concur::TypeError);  // the string
  EXPECT_THROW((void)b.recv<std::vector<long>>(), concur::TypeError);
  EXPECT_EQ(b.recv<std::int64_t>(), 6);
  // A string literal is a std::string.
  a.send("literal");
  EXPECT_EQ(b.recv<std::string>(), "literal");
}

TEST(ConnectionObjects, CorruptBodiesAreDecodeErrorsAndConsumed) {
  auto [a, b] = mp::Pipe();
  const long rss0 = max_rss_kib();
  std::vector<std::byte> m;
  codec::encode(std::string("hello"), m);
  // Truncated; then a count of 2^62 characters in a 16-byte message.
  a.send_bytes(std::span<const std::byte>(m).first(m.size() - 2));
  std::vector<std::byte> hostile(16);
  const std::uint64_t tag = codec::type_tag<std::string>(), count = std::uint64_t{1} << 62;
  std::memcpy(hostile.data(), &tag, 8);
  std::memcpy(hostile.data() + 8, &count, 8);
  a.send_bytes(hostile);
  a.send_bytes(B("short"));  // shorter than a tag
  a.send(std::string("fine"));
  EXPECT_THROW((void)b.recv<std::string>(), codec::DecodeError);
  EXPECT_THROW((void)b.recv<std::string>(), codec::DecodeError);
  EXPECT_THROW((void)b.recv<std::string>(), concur::ValueError);
  EXPECT_EQ(b.recv<std::string>(), "fine");
  EXPECT_LT(max_rss_kib() - rss0, kRssSlackKiB);
  // Seeded garbage after a valid tag: DecodeError or a value, never a crash.
  std::mt19937 rng(99);
  for (int i = 0; i < 300; ++i) {
    std::vector<std::byte> g(8 + rng() % 40);
    const std::uint64_t t = codec::type_tag<codec_test::Shape>();
    std::memcpy(g.data(), &t, 8);
    for (std::size_t j = 8; j < g.size(); ++j) g[j] = static_cast<std::byte>(rng());
    a.send_bytes(g);
    try {
      (void)b.recv<codec_test::Shape>();
    } catch (const codec::DecodeError&) {
    }
  }
  // Objects and end of file.
  a.close();
  EXPECT_THROW((void)b.recv<int>(), concur::EOFError);
}

TEST(ConnectionObjects, TypedMessagesBetweenProcesses) {
  auto [a, b] = mp::Pipe();
  mp::Process p(
      [](mp::Connection& conn) {
        // Echo: a Shape comes, it goes back with one more point; then 16 MiB of doubles.
        auto s = conn.recv<codec_test::Shape>();
        s.points.push_back({9, 9});
        conn.send(s);
        auto v = conn.recv<std::vector<double>>();
        for (double& d : v) d = -d;
        conn.send(v);
      },
      std::ref(b));
  p.start();
  b.close();
  codec_test::Shape s{"sq", {{0, 0}}, {}, 5};
  a.send(s);
  s.points.push_back({9, 9});
  EXPECT_EQ(a.recv<codec_test::Shape>(), s);
  std::vector<double> v(2 << 20);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  a.send(v);
  const auto back = a.recv<std::vector<double>>();
  ASSERT_EQ(back.size(), v.size());
  EXPECT_EQ(back[12345], -12345.0);
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

// ---------------------------------------------------------------------------------------
// Hygiene

TEST(Connection, NoDescriptorLeaks) {
  const int fds0 = ptest::count_fds();
  for (int i = 0; i < 50; ++i) {
    auto [a, b] = mp::Pipe(i % 2 == 0);
    auto [c, d] = mp::Pipe();
    c.send_handle(d.fileno());
    int got = d.recv_handle();
    ::close(got);
    mp::Connection moved = std::move(a);
    b = mp::Connection();
  }
  {
    auto [a, b] = mp::Pipe();
    const int fa = a.fileno();
    EXPECT_TRUE(::fcntl(fa, F_GETFD) & FD_CLOEXEC);
    auto [r, w] = mp::Pipe(false);
    EXPECT_TRUE(::fcntl(r.fileno(), F_GETFD) & FD_CLOEXEC);
    EXPECT_TRUE(::fcntl(w.fileno(), F_GETFD) & FD_CLOEXEC);
  }
  EXPECT_EQ(ptest::count_fds(), fds0);
}

TEST(Connection, AdoptsADescriptor) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  mp::Connection a(sv[0]), b(sv[1], true, true);
  a.send_bytes(B("adopted"));
  EXPECT_EQ(S(b.recv_bytes()), "adopted");
  ptest::Pipe p;
  a.send_handle(p.w);  // it knows it is a socket
  ::close(b.recv_handle());
  EXPECT_THROW(mp::Connection(sv[0], false, false), concur::ValueError);
}

// ---------------------------------------------------------------------------------------
// The wire format is CPython's: a Python Connection on the other end understands us.

TEST(Connection, TalksToCPythonConnection) {
  if (::system("python3 -c 'import multiprocessing.connection' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "no python3";
  auto [a, b] = mp::Pipe();
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (b.fileno() == 3) {
      ::fcntl(3, F_SETFD, 0);
    } else {
      ::dup2(b.fileno(), 3);  // the copy on fd 3 is not close-on-exec
    }
    ::execlp("python3", "python3", "-c",
             "from multiprocessing.connection import Connection\n"
             "c = Connection(3)\n"
             "while True:\n"
             "    m = c.recv_bytes()\n"
             "    if not m: break\n"
             "    c.send_bytes(m[::-1])\n",
             static_cast<char*>(nullptr));
    ::_exit(127);
  }
  b.close();
  a.send_bytes(B("stressed"));
  EXPECT_EQ(S(a.recv_bytes()), "desserts");
  const auto big = pattern(3u << 20, 5);
  a.send_bytes(big);
  auto back = a.recv_bytes();
  std::reverse(back.begin(), back.end());
  EXPECT_TRUE(back == big);
  a.send_bytes({});
  EXPECT_EQ(wait_exit(pid), 0);
}

}  // namespace
