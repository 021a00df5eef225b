// concur/multiprocessing/connection.hpp — Python's multiprocessing.Pipe, Connection and
// multiprocessing.connection.wait.
//
// Pipe(duplex = true) gives two Connections joined by a Unix stream socketpair (both ends
// send and receive), Pipe(false) a pipe whose first end only receives and second only
// sends. Both ends are O_CLOEXEC and are inherited by fork(): create the Pipe before
// Process::start() and use the ends in the children, as in Python.
//
// Messages: send_bytes/recv_bytes move byte strings; send(x)/recv<T>() are exactly
// send_bytes(encode(x)) and decode<T>(recv_bytes()) with concur's codec (a type tag and the
// body), so a relay can forward messages it does not understand with recv_bytes/send_bytes.
// recv<U>() of a message sent as another type throws TypeError and has consumed it.
// The frame is Python's (detail/frame.hpp): a concur Connection and a Python Connection
// exchange send_bytes/recv_bytes messages.
//
// Errors are Python's: EOFError when the peer has closed and nothing is left; OSError("got
// end of file during message") on a torn frame; OSError("handle is closed"), ("connection is
// read-only"), ("connection is write-only"); OSError("bad message length") for a frame
// above the limit (after which, as in Python, the connection stops receiving: it becomes
// write-only, or is closed if it was read-only); OSError with the errno for the OS's
// failures (EPIPE when the reader is gone — never a SIGPIPE: sockets send with
// MSG_NOSIGNAL, pipe writes block SIGPIPE in the calling thread only, around the write, and
// swallow the one it raised; the process's disposition is never touched). EINTR is retried.
//
// Cost: a message of up to 64 KiB costs one system call on each side when the peer is
// ready (the header and payload go out in one write; the receiver reads header and payload
// into a 64 KiB per-connection buffer with one read, and may read several small messages at
// once). Bigger messages are read straight into their destination, without a second copy.
//
// Thread-safety: one thread may send while another receives on the same Connection (the
// send and receive sides share no state); two threads must not send (or receive) on one
// Connection at once, and close() must not race with other calls — as in Python, where
// concurrent use of one end corrupts the stream.
#pragma once

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

#include "concur/detail/codec.hpp"
#include "concur/detail/deadline.hpp"
#include "concur/detail/frame.hpp"
#include "concur/detail/futex.hpp"
#include "concur/errors.hpp"
#include "concur/multiprocessing/process.hpp"

namespace concur::detail {
// The deadline of a timed poll/wait: negative is zero, huge (hours::max(), +inf) is
// forever (time_point::max()), NaN is ValueError.
template <class Rep, class Period>
Clock::time_point poll_deadline(std::chrono::duration<Rep, Period> timeout) {
  if constexpr (std::chrono::treat_as_floating_point_v<Rep>) {
    if (std::isnan(timeout.count())) throw ValueError("Invalid value NaN (not a number)");
  }
  return concur::detail::deadline_after(timeout);
}
}  // namespace concur::detail

namespace concur::multiprocessing {

class Connection {
 public:
  // A closed connection (every operation but close()/closed() throws OSError).
  Connection() noexcept = default;
  // Adopts `fd` (a socket or one end of a pipe), as Python's Connection(handle, readable,
  // writable). ValueError for fd < 0 or when neither direction is allowed.
  explicit Connection(int fd, bool readable = true, bool writable = true);
  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  // Closes.
  ~Connection();

  // --- objects, through the codec (detail/codec.hpp: what can be sent) ---

  // Sends obj as one message: send_bytes of its encoding (type tag + body), built in this
  // end's send buffer (no allocation after the first message up to 1 MiB) and written with
  // one system call. Same errors as send_bytes. A type that cannot be sent does not compile.
  template <class T>
  void send(const T& obj) {
    std::byte* out = begin_send(concur::detail::codec::encoded_size(obj));
    concur::detail::codec::encode_to(obj, out);
    end_send();
  }
  // A string literal or C string travels as a std::string (Python's str).
  void send(const char* s) { send(std::string(s)); }
  // Receives one message as a T: decode<T>(recv_bytes()), decoded in place from the receive
  // buffer when it fits there. TypeError if it was sent as another type, DecodeError (a
  // ValueError) if it is corrupt — either way the message is consumed; the next recv reads
  // the next one. EOFError / OSError as recv_bytes.
  template <class T>
  [[nodiscard]] T recv() {
    namespace codec = concur::detail::codec;
    if constexpr (!codec::Sendable<T>) {
      return codec::decode<T>(std::span<const std::byte>{});  // its static_assert says why
    } else {
      std::vector<std::byte> storage;
      return codec::decode<T>(recv_view(storage), max_message_);
    }
  }

  // --- bytes ---

  // Sends `buf` as one message. Blocks until the whole message is written (the peer may
  // have to read). OSError if closed / read-only / the peer is gone (EPIPE);
  // ValueError if the message exceeds max_message().
  void send_bytes(std::span<const std::byte> buf);
  // Python's send_bytes(buf, offset, size): sends buf[offset, offset + size) (size: to the
  // end). ValueError("buffer length < offset") / ("buffer length < offset + size").
  void send_bytes(std::span<const std::byte> buf, std::size_t offset,
                  std::optional<std::size_t> size = std::nullopt);
  // Receives one message. Blocks until a whole message is here. EOFError if the peer closed
  // and nothing is left; OSError("got end of file during message") if it closed mid-message;
  // OSError("bad message length") above `maxlength` or max_message() (nothing is allocated
  // for it; the connection stops receiving, as Python's); OSError if closed / write-only.
  std::vector<std::byte> recv_bytes(std::optional<std::size_t> maxlength = std::nullopt);
  // Receives one message into buf[offset, ...) and returns its size. ValueError("offset
  // too large") if offset > buf.size(); BufferTooShort (holding the whole message, which is
  // consumed) if it does not fit.
  std::size_t recv_bytes_into(std::span<std::byte> buf, std::size_t offset = 0);

  // Whether a recv would not block (data is here, or the peer has closed: poll() is true at
  // EOF, as in Python). poll() does not wait; poll(timeout) waits up to `timeout` (any
  // duration; negative is zero, hours::max() is forever, NaN is ValueError).
  // OSError if closed / write-only.
  bool poll() { return poll_until(Clock::now()); }
  template <class Rep, class Period>
  bool poll(std::chrono::duration<Rep, Period> timeout) {
    return poll_until(detail::poll_deadline(timeout));
  }
  // Same with Python's timeout=None: nullopt waits forever.
  bool poll(std::optional<std::chrono::nanoseconds> timeout);
  bool poll_until(std::chrono::steady_clock::time_point deadline);

  // Closes the descriptor (idempotent). Messages already read into this end's buffer and
  // file descriptors received but not yet taken by recv_handle() are dropped.
  void close() noexcept;
  bool closed() const noexcept { return fd_ < 0; }
  bool readable() const noexcept { return readable_; }
  bool writable() const noexcept { return writable_; }
  // The descriptor (for poll/epoll, or mp::wait). OSError("handle is closed") if closed.
  int fileno() const;

  // --- beyond Python ---

  // Passes a file descriptor to the peer (SCM_RIGHTS; a dup arrives there, `fd` stays open
  // here). Duplex connections only: OSError (ENOTSOCK) on a one-way pipe.
  void send_handle(int fd);
  // Receives a descriptor sent by send_handle (it is O_CLOEXEC; the caller owns it).
  // OSError if the next message is not a descriptor (that message is consumed), EOFError /
  // OSError as recv_bytes.
  [[nodiscard]] int recv_handle();

  // The largest message this end sends or accepts (default 1 GiB). A frame claiming more is
  // OSError("bad message length") before anything is allocated for it.
  std::size_t max_message() const noexcept { return max_message_; }
  void set_max_message(std::size_t limit) noexcept { max_message_ = limit; }

  // Bytes already received into this end's buffer and not yet returned (what poll() sees
  // before asking the OS).
  std::size_t buffered() const noexcept { return rend_ - rpos_; }

  // recv_bytes that waits at most until `deadline` (time_point::max(): forever): nullopt if
  // no whole message has arrived by then. A message that fits the receive buffer (64 KiB)
  // is taken only once all of it is here, so after nullopt nothing is lost and the next
  // receive continues the same message. A bigger one is read as it arrives; a deadline that
  // passes in its middle makes this end stop receiving (as after a bad length: it becomes
  // write-only, or closed if it was read-only). Errors as recv_bytes. For servers that must
  // not be held by a slow peer (the Listener's handshake).
  std::optional<std::vector<std::byte>> recv_bytes_until(
      std::chrono::steady_clock::time_point deadline,
      std::optional<std::size_t> maxlength = std::nullopt);
  // A server's read of the next request: waits for ever for a message to begin (a peer
  // that sends nothing between messages is idle, not hostile), then at most `bound` from
  // its first bytes for the rest — recv_bytes_until(now + bound) once something is here.
  // When the peer is ready this costs the one read recv_bytes costs (no poll). nullopt and
  // errors as recv_bytes_until (EOFError when the peer closed before a message began).
  std::optional<std::vector<std::byte>> recv_bytes_started_within(
      std::chrono::nanoseconds bound, std::optional<std::size_t> maxlength = std::nullopt);

 private:
  using Clock = std::chrono::steady_clock;

  void take(Connection& other) noexcept;  // moves other's state here (this is empty)
  void check_readable() const;
  void check_writable() const;
  // Reads the next frame header (blocking); consumes it from the buffer.
  concur::detail::FrameHeader next_header(std::uint64_t limit);
  [[noreturn]] void bad_message_length();
  // The stream is out of step: stop receiving (write-only, or closed if read-only).
  void stop_receiving() noexcept;
  // Copies/reads exactly n payload bytes to dst.
  void read_payload(std::byte* dst, std::size_t n);
  // Reads a payload of len bytes into out (grown step by step, see kGrowStep).
  void read_message(std::vector<std::byte>& out, std::size_t len);
  // Receives one message: a view into the receive buffer when it fits there (valid until
  // the next receive), else into `storage`. Consumed before the caller looks at it.
  std::span<const std::byte> recv_view(std::vector<std::byte>& storage);
  // send<T>: checks, writes the header and returns where the n payload bytes go (the
  // connection's send buffer); end_send() writes header and payload with one call.
  std::byte* begin_send(std::size_t n);
  void end_send();
  // Drops n payload bytes.
  void skip_payload(std::uint64_t n);
  // One read from the OS into the buffer; returns bytes read (0 at EOF).
  std::size_t fill();
  // One read from the OS into [p, p+n); returns bytes read (0 at EOF).
  std::size_t read_some(std::byte* p, std::size_t n);
  // Writes the iovec-like pieces completely.
  void write_frame(const std::byte* header, std::size_t header_size,
                   std::span<const std::byte> payload, int pass_fd = -1);
  void close_pending_fds() noexcept;

  int fd_ = -1;
  bool readable_ = false;
  bool writable_ = false;
  bool is_socket_ = false;
  std::size_t max_message_ = concur::detail::codec::kDefaultMaxMessage;
  // Receive buffer: bytes [rpos_, rend_) of rbuf_ are received and not yet consumed.
  std::unique_ptr<std::byte[]> rbuf_;
  std::size_t rpos_ = 0;
  std::size_t rend_ = 0;
  // send<T>'s buffer: frame at [sbuf_start_, sbuf_start_ + sbuf_len_).
  std::unique_ptr<std::byte[]> sbuf_;
  std::size_t sbuf_size_ = 0;
  std::size_t sbuf_start_ = 0;
  std::size_t sbuf_len_ = 0;
  // Descriptors that arrived (SCM_RIGHTS) and wait for their frame in recv_handle().
  std::vector<int> pending_fds_;
  // recv_bytes_until of a big message: each read waits at most until here.
  std::chrono::steady_clock::time_point read_deadline_ = std::chrono::steady_clock::time_point::max();
};

// Python's multiprocessing.Pipe(duplex=True): (a, b). duplex: a socketpair, both ends send
// and receive. !duplex: a pipe, the first end only receives, the second only sends.
// OSError if the descriptors cannot be made.
std::pair<Connection, Connection> Pipe(bool duplex = true);

// One thing mp::wait can wait for: a Connection (ready when recv would not block), a
// Process (ready when it has ended: its sentinel), or any pollable descriptor (ready when
// readable or hung up).
class Waitable {
 public:
  Waitable(Connection& c) noexcept : conn_(&c), fd_(-1) {}  // NOLINT: implicit by design
  Waitable(Connection* c) noexcept : conn_(c), fd_(-1) {}   // NOLINT
  // The process's sentinel: ValueError("process not started") before start().
  Waitable(const Process& p) : proc_(&p), fd_(*p.sentinel()) {}  // NOLINT
  Waitable(int fd) noexcept : fd_(fd) {}                         // NOLINT
  // The Connection, or nullptr for a descriptor or process.
  Connection* connection() const noexcept { return conn_; }
  // The Process, or nullptr.
  const Process* process() const noexcept { return proc_; }
  // The descriptor polled: the connection's (OSError if it is closed), the sentinel, or fd.
  int fileno() const;
  friend bool operator==(const Waitable&, const Waitable&) = default;

 private:
  Connection* conn_ = nullptr;
  const Process* proc_ = nullptr;
  int fd_ = -1;
};

// Python's multiprocessing.connection.wait(object_list, timeout): blocks until at least one
// of `objects` is ready or the timeout passes, and returns the ready ones in their order
// (empty on timeout). nullopt waits forever; any duration is accepted (negative is zero,
// hours::max() forever, NaN ValueError). OSError("handle is closed") for a closed Connection;
// ValueError for a negative descriptor.
std::vector<Waitable> wait_until(std::span<const Waitable> objects,
                                 std::chrono::steady_clock::time_point deadline);
std::vector<Waitable> wait(std::span<const Waitable> objects,
                           std::optional<std::chrono::nanoseconds> timeout = std::nullopt);
template <class Rep, class Period>
std::vector<Waitable> wait(std::span<const Waitable> objects,
                           std::chrono::duration<Rep, Period> timeout) {
  return wait_until(objects, detail::poll_deadline(timeout));
}
// mp::wait({conn_a, conn_b, process}, 1s).
inline std::vector<Waitable> wait(std::initializer_list<Waitable> objects,
                                  std::optional<std::chrono::nanoseconds> timeout = std::nullopt) {
  return wait(std::span<const Waitable>(objects.begin(), objects.size()), timeout);
}
template <class Rep, class Period>
std::vector<Waitable> wait(std::initializer_list<Waitable> objects,
                           std::chrono::duration<Rep, Period> timeout) {
  return wait_until(std::span<const Waitable>(objects.begin(), objects.size()),
                    detail::poll_deadline(timeout));
}

// DESIGN.md's form: connections only; returns the ready ones.
std::vector<Connection*> wait_until(std::span<Connection* const> connections,
                                    std::chrono::steady_clock::time_point deadline);
std::vector<Connection*> wait(std::span<Connection* const> connections,
                              std::optional<std::chrono::nanoseconds> timeout = std::nullopt);
template <class Rep, class Period>
std::vector<Connection*> wait(std::span<Connection* const> connections,
                              std::chrono::duration<Rep, Period> timeout) {
  return wait_until(connections, detail::poll_deadline(timeout));
}

// Raw descriptors (process sentinels, sockets, pipes); returns the ready ones.
std::vector<int> wait_until(std::span<const int> fds,
                            std::chrono::steady_clock::time_point deadline);
std::vector<int> wait(std::span<const int> fds,
                      std::optional<std::chrono::nanoseconds> timeout = std::nullopt);
template <class Rep, class Period>
std::vector<int> wait(std::span<const int> fds, std::chrono::duration<Rep, Period> timeout) {
  return wait_until(fds, detail::poll_deadline(timeout));
}

// ---------------------------------------------------------------------------------------
// Listener / Client: Python's multiprocessing.connection.Listener and Client.
//
// Addresses (a std::string; what address() returns can be given to Client):
//   "/path", "./rel", "name"  a Unix socket file (any string with a '/' or without a ':').
//                             Created with mode 0600; EADDRINUSE if the file exists; removed
//                             by close()/the destructor in the process that created it
//                             (not in a forked child), and only if it is still this socket.
//   "\0name" or "@name"       an abstract Unix socket (no file). "@" alone: the kernel picks
//                             a free name (address() returns it as "@xxxxx").
//   "host:port"               TCP over IPv4 or IPv6 (the first address host resolves to that
//                             works); port 0 picks a free port, which address() reports:
//                             "127.0.0.1:41234". "[::1]:port" for an IPv6 literal;
//                             ":port" binds every IPv4 interface (0.0.0.0, Python's ''). TCP_NODELAY on every connection.
// Anything else is ValueError (bad port, unclosed '[', a Unix path of 108 bytes or more).
//
// Authentication (authkey set): Python 3.12's handshake, which interoperates with CPython's
// Listener/Client of 3.12 and of earlier versions (their HMAC-MD5 form): the listener sends
// a random "{sha256}" challenge and checks the peer's HMAC, then answers the peer's
// challenge; the client does the reverse. A wrong key is AuthenticationError on both sides
// ("digest received was wrong" on the side that checked, "digest sent was rejected" on the
// other) and the connection is closed. Decision (Python is silent): every failure of the
// handshake — wrong digest, garbage, an oversized frame, the peer hanging up, or taking
// longer than handshake_timeout — is AuthenticationError, so a server loop needs to catch
// one type.
//
// accept() serves many handshakes at once: a peer that stalls or sends garbage does not hold
// up the honest ones behind it (each peer is dropped after handshake_timeout; at most
// kMaxPendingHandshakes are in progress — beyond that the oldest is dropped). accept()
// returns the first peer that completes, or throws AuthenticationError for one that failed
// (the listener stays usable: call accept() again).
//
// Thread-safety: accept() calls are serialized (one runs at a time); close() may be called
// from another thread while accept() blocks: it wakes it (OSError("listener is closed")),
// waits for it to leave, then closes. Other members may be called concurrently.
struct ListenerOptions {
  int backlog = 16;
  // The key both sides must share (any bytes, empty allowed); nullopt: no handshake.
  std::optional<std::string> authkey{};
  // How long one peer may take to finish the handshake once accepted (NaN, zero or negative
  // is ValueError).
  std::chrono::duration<double> handshake_timeout = std::chrono::seconds(5);
};

class Listener {
 public:
  // Binds and listens. ValueError for a bad address or option; OSError (FileExistsError is
  // not used: Python's EADDRINUSE) when the address cannot be bound.
  explicit Listener(std::string address, ListenerOptions options = {});
  Listener(Listener&&) noexcept;
  Listener& operator=(Listener&&) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  // close().
  ~Listener();

  // The next connection (authenticated when an authkey is set); blocks until one arrives.
  // AuthenticationError for a peer whose handshake failed; OSError("listener is closed")
  // after close(); OSError with the errno for the OS's failures (EMFILE...).
  Connection accept();
  // Stops listening, drops the handshakes in progress, removes the socket file (see above).
  // Idempotent; connections already accepted stay open.
  void close();
  bool closed() const noexcept;
  // The bound address, port filled in ("127.0.0.1:41234", "[::1]:41234", "/tmp/s", "@name").
  std::string address() const;
  // The listening socket (for poll: readable when a peer is waiting to be accepted).
  // OSError("listener is closed") after close().
  int fileno() const;
  // Python's last_accepted: the peer of the last accepted connection ("ip:port" for TCP,
  // "" for an unnamed Unix peer); nullopt before the first.
  std::optional<std::string> last_accepted() const;

  static constexpr std::size_t kMaxPendingHandshakes = 128;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct ClientOptions {
  // The listener's key; nullopt: no handshake.
  std::optional<std::string> authkey{};
  // How long the handshake may take (default forever, as Python's Client; NaN is ValueError).
  std::chrono::duration<double> handshake_timeout =
      std::chrono::duration<double>(std::numeric_limits<double>::infinity());
};

// Connects to a Listener (or to CPython's). OSError with the errno when it cannot connect
// (FileNotFoundError for a missing Unix socket file, ECONNREFUSED...); ValueError for a bad
// address; AuthenticationError as above.
Connection Client(std::string address, ClientOptions options = {});

}  // namespace concur::multiprocessing

// The handshake's halves, for code that runs its own (the Manager). Python's
// deliver_challenge/answer_challenge: deliver sends a challenge and checks the answer (then
// sends WELCOME or FAILURE), answer answers the peer's challenge and waits for its verdict.
// A listener runs deliver then answer, a client answer then deliver. Every failure —
// including a deadline that passes, EOF and oversized frames — is AuthenticationError; the
// caller closes the connection.
namespace concur::detail {
void deliver_challenge(multiprocessing::Connection& conn, std::string_view authkey,
                       Deadline deadline);
void answer_challenge(multiprocessing::Connection& conn, std::string_view authkey,
                      Deadline deadline);
// 32 random bytes (getrandom), Python's os.urandom(32) default authkey.
std::string random_authkey();
}  // namespace concur::detail
