#include "concur/multiprocessing/connection.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <limits>
#include <string>

#include "concur/detail/deadline.hpp"
#include "concur/detail/fd.hpp"

namespace concur::multiprocessing {

namespace {

namespace cd = concur::detail;
using Clock = std::chrono::steady_clock;

// The receive buffer. 64 KiB holds any small message whole (one read per message) and
// several at once when the sender is ahead; it is allocated on the first receive.
constexpr std::size_t kRecvBuffer = 64 * 1024;
// A payload remainder at least this big is read straight into its destination (no copy
// through the buffer); smaller ones go through the buffer, which may pick up the next
// messages in the same read.
constexpr std::size_t kDirectRead = kRecvBuffer / 2;
// recv_bytes grows its result by this much at a time, so the memory a frame costs follows
// the bytes that really arrived, not the length its header claims.
constexpr std::size_t kGrowStep = std::size_t{4} << 20;
// A message is given this much address space at once (64 MiB arrives without a copy);
// bigger ones grow by doubling as their bytes arrive, so a header that lies costs nothing.
constexpr std::size_t kReserveAhead = std::size_t{64} << 20;
// The send buffer of send<T>() is kept for the next message up to this size.
constexpr std::size_t kKeepSendBuffer = 1 << 20;
// Descriptors accepted per read (SCM_RIGHTS); the kernel drops any beyond (MSG_CTRUNC).
constexpr int kMaxFdsPerRead = 16;
// Descriptors kept waiting for recv_handle(); a peer sending more without frames loses them.
constexpr std::size_t kMaxPendingFds = 256;

const char* const kEndOfFile = "got end of file during message";

// A big message's fresh memory is faulted in 4 KiB at a time: 16384 faults for 64 MiB,
// which cost more than the copy itself here. Transparent huge pages cut that 512-fold where
// the system leaves THP to madvise (the default). Advice only: failure changes nothing.
void advise_huge_pages(void* p, std::size_t n) noexcept {
  constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
  const auto begin = (reinterpret_cast<std::uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(p) + n) & ~(kHuge - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

[[noreturn]] void throw_closed() {
  throw OSError("handle is closed");
}

// Waits until one of fds is ready or the deadline (time_point::max(): forever) passes;
// returns the number ready (0 on timeout). EINTR restarts with the time left.
int poll_fds(pollfd* fds, nfds_t n, Clock::time_point deadline) {
  const cd::Deadline dl(deadline);
  for (;;) {
    timespec ts{};
    const int rc = ::ppoll(fds, n, dl.relative_timespec(ts), nullptr);
    if (rc >= 0) return rc;
    if (errno != EINTR) throw OSError(errno, "");
  }
}

// recv_bytes_until's deadline passed in the middle of a big message (never escapes).
struct ReadTimedOut {};

void wait_fd(int fd, short events) {
  pollfd p{fd, events, 0};
  poll_fds(&p, 1, Clock::time_point::max());
}

// Writing to a pipe whose reader has gone raises SIGPIPE in the writing thread. This blocks
// SIGPIPE in the calling thread only, for the duration of a write, and swallows the SIGPIPE
// that write raised (never one that was pending before), so the process's disposition is
// untouched and the write just fails with EPIPE. Two rt_sigprocmask calls per write.
class SigpipeBlock {
 public:
  SigpipeBlock() noexcept {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    was_blocked_ = sigismember(&old_, SIGPIPE) == 1;
    if (was_blocked_) {  // the caller blocks it: one may be pending already, keep that one
      sigset_t pending;
      sigpending(&pending);
      was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    }
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;
  // After a write failed with EPIPE: takes the SIGPIPE it raised.
  void swallow() noexcept {
    if (was_pending_) return;
    const timespec zero{0, 0};
    while (sigtimedwait(&set_, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  ~SigpipeBlock() {
    if (!was_blocked_) pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t set_{}, old_{};
  bool was_blocked_ = false;
  bool was_pending_ = false;
};

}  // namespace

// ---------------------------------------------------------------------------------------
// Construction

Connection::Connection(int fd, bool readable, bool writable) {
  if (fd < 0) throw ValueError("invalid handle");
  if (!readable && !writable)
    throw ValueError("at least one of `readable` and `writable` must be True");
  struct stat st {};
  is_socket_ = ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
  fd_ = fd;
  readable_ = readable;
  writable_ = writable;
}

Connection::Connection(Connection&& o) noexcept {
  take(o);
}

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    close();
    take(o);
  }
  return *this;
}

void Connection::take(Connection& o) noexcept {
  fd_ = std::exchange(o.fd_, -1);
  readable_ = std::exchange(o.readable_, false);
  writable_ = std::exchange(o.writable_, false);
  is_socket_ = o.is_socket_;
  max_message_ = o.max_message_;
  rbuf_ = std::move(o.rbuf_);
  rpos_ = std::exchange(o.rpos_, 0);
  rend_ = std::exchange(o.rend_, 0);
  sbuf_ = std::move(o.sbuf_);
  sbuf_size_ = std::exchange(o.sbuf_size_, 0);
  sbuf_start_ = std::exchange(o.sbuf_start_, 0);
  sbuf_len_ = std::exchange(o.sbuf_len_, 0);
  pending_fds_ = std::exchange(o.pending_fds_, {});
}

Connection::~Connection() {
  close();
}

std::pair<Connection, Connection> Pipe(bool duplex) {
  int fds[2];
  if (duplex) {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
      throw OSError(errno, "socketpair");
  } else if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw OSError(errno, "pipe2");
  }
  cd::UniqueFd a(fds[0]), b(fds[1]);
  // Above 0-2: a process that closed its stdio never has a Connection on fd 1 that printing
  // would write into.
  a = cd::above_stdio(std::move(a));
  b = cd::above_stdio(std::move(b));
  Connection first(a.get(), true, duplex);
  a.release();
  Connection second(b.get(), duplex, true);
  b.release();
  return {std::move(first), std::move(second)};
}

// ---------------------------------------------------------------------------------------
// State checks, close

void Connection::check_readable() const {
  if (fd_ < 0) throw_closed();
  if (!readable_) throw OSError("connection is write-only");
}

void Connection::check_writable() const {
  if (fd_ < 0) throw_closed();
  if (!writable_) throw OSError("connection is read-only");
}

int Connection::fileno() const {
  if (fd_ < 0) throw_closed();
  return fd_;
}

void Connection::close_pending_fds() noexcept {
  for (int fd : pending_fds_) cd::close_fd(fd);
  pending_fds_.clear();
}

void Connection::close() noexcept {
  if (fd_ >= 0) cd::close_fd(fd_);
  fd_ = -1;
  readable_ = writable_ = false;
  close_pending_fds();
  rbuf_.reset();
  rpos_ = rend_ = 0;
}

// ---------------------------------------------------------------------------------------
// Reading

std::size_t Connection::read_some(std::byte* p, std::size_t n) {
  if (read_deadline_ != Clock::time_point::max()) {
    pollfd pfd{fd_, POLLIN, 0};
    if (poll_fds(&pfd, 1, read_deadline_) == 0) throw ReadTimedOut{};
  }
  for (;;) {
    ssize_t got;
    if (is_socket_) {
      iovec iov{p, n};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerRead)];
      msghdr m{};
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = control;
      m.msg_controllen = sizeof control;
      got = ::recvmsg(fd_, &m, MSG_CMSG_CLOEXEC);
      if (got >= 0 && m.msg_controllen > 0) {
        for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
          if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
          const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
          for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (pending_fds_.size() < kMaxPendingFds) {
              pending_fds_.push_back(fd);
            } else {
              cd::close_fd(fd);
            }
          }
        }
      }
    } else {
      got = ::read(fd_, p, n);
    }
    if (got >= 0) return static_cast<std::size_t>(got);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {  // someone made the fd non-blocking
      wait_fd(fd_, POLLIN);
      continue;
    }
    throw OSError(errno, "");
  }
}

std::size_t Connection::fill() {
  if (!rbuf_) rbuf_ = std::make_unique_for_overwrite<std::byte[]>(kRecvBuffer);
  if (rpos_ == rend_) {
    rpos_ = rend_ = 0;
  } else if (rpos_ > 0) {  // a partial frame: move it to the front
    std::memmove(rbuf_.get(), rbuf_.get() + rpos_, rend_ - rpos_);
    rend_ -= rpos_;
    rpos_ = 0;
  }
  const std::size_t got = read_some(rbuf_.get() + rend_, kRecvBuffer - rend_);
  rend_ += got;
  return got;
}

concur::detail::FrameHeader Connection::next_header(std::uint64_t limit) {
  for (;;) {
    const auto h = cd::parse_frame_header(
        std::span<const std::byte>(rbuf_.get() + rpos_, rend_ - rpos_), limit);
    if (h.kind == cd::FrameKind::bad_length) bad_message_length();
    if (h.kind != cd::FrameKind::incomplete) {
      rpos_ += h.header_size;
      return h;
    }
    const bool partial = rend_ > rpos_;
    if (fill() == 0) {
      if (partial) throw OSError(kEndOfFile);
      throw EOFError("peer closed the connection");
    }
  }
}

void Connection::stop_receiving() noexcept {
  if (writable_) {
    readable_ = false;
    rbuf_.reset();
    rpos_ = rend_ = 0;
    close_pending_fds();
  } else {
    close();
  }
}

void Connection::bad_message_length() {
  // Python's _bad_message_length: the stream is out of step, so this end stops receiving.
  stop_receiving();
  throw OSError("bad message length");
}

void Connection::read_payload(std::byte* dst, std::size_t n) {
  const std::size_t have = std::min(n, rend_ - rpos_);
  if (have) {
    std::memcpy(dst, rbuf_.get() + rpos_, have);
    rpos_ += have;
    dst += have;
    n -= have;
  }
  while (n > 0) {
    if (n >= kDirectRead) {
      const std::size_t got = read_some(dst, n);
      if (got == 0) throw OSError(kEndOfFile);
      dst += got;
      n -= got;
    } else {
      if (fill() == 0) throw OSError(kEndOfFile);
      const std::size_t take = std::min(n, rend_ - rpos_);
      std::memcpy(dst, rbuf_.get() + rpos_, take);
      rpos_ += take;
      dst += take;
      n -= take;
    }
  }
}

void Connection::skip_payload(std::uint64_t n) {
  while (n > 0) {
    if (rpos_ == rend_ && fill() == 0) throw OSError(kEndOfFile);
    const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(n, rend_ - rpos_));
    rpos_ += take;
    n -= take;
  }
}

namespace {
// A message frame was expected and a descriptor frame came: drop its descriptor.
[[noreturn]] void unexpected_handle(std::vector<int>& pending) {
  if (!pending.empty()) {
    cd::close_fd(pending.front());
    pending.erase(pending.begin());
  }
  throw OSError("expected a message, got a file descriptor (use recv_handle)");
}
}  // namespace

void Connection::read_message(std::vector<std::byte>& out, std::size_t len) {
  out.clear();
  if (len <= kGrowStep) {
    out.resize(len);
    read_payload(out.data(), len);
    return;
  }
  // Address space is reserved up to kReserveAhead at once (untouched pages cost no memory),
  // beyond that it doubles with the bytes that really came; resize touches a step at a time.
  auto reserve = [&out](std::size_t n) {
    out.reserve(n);
    advise_huge_pages(out.data(), out.capacity());
  };
  reserve(std::min(len, kReserveAhead));
  while (out.size() < len) {
    const std::size_t old = out.size();
    const std::size_t next = std::min(len, old + kGrowStep);
    if (next > out.capacity()) reserve(std::min(len, 2 * out.capacity()));
    out.resize(next);
    read_payload(out.data() + old, next - old);
  }
}

std::vector<std::byte> Connection::recv_bytes(std::optional<std::size_t> maxlength) {
  check_readable();
  const std::uint64_t limit =
      std::min<std::uint64_t>(max_message_, maxlength.value_or(max_message_));
  const auto h = next_header(limit);
  if (h.kind == cd::FrameKind::handle) unexpected_handle(pending_fds_);
  std::vector<std::byte> out;
  read_message(out, static_cast<std::size_t>(h.length));
  return out;
}

std::optional<std::vector<std::byte>> Connection::recv_bytes_until(
    Clock::time_point deadline, std::optional<std::size_t> maxlength) {
  check_readable();
  const std::uint64_t limit =
      std::min<std::uint64_t>(max_message_, maxlength.value_or(max_message_));
  // Gather a whole frame in the buffer before consuming any of it (a frame that cannot fit
  // there: at least its header).
  for (;;) {
    const auto h = cd::parse_frame_header(
        rbuf_ ? std::span<const std::byte>(rbuf_.get() + rpos_, rend_ - rpos_)
              : std::span<const std::byte>(),
        limit);
    if (h.kind == cd::FrameKind::bad_length) bad_message_length();
    if (h.kind != cd::FrameKind::incomplete) {
      const std::uint64_t whole = h.header_size + (h.kind == cd::FrameKind::message ? h.length : 0);
      if (whole > kRecvBuffer) break;
      if (rend_ - rpos_ >= whole) return recv_bytes(maxlength);  // all here: no blocking
    }
    pollfd p{fd_, POLLIN, 0};
    if (poll_fds(&p, 1, deadline) == 0) return std::nullopt;
    const bool partial = rend_ > rpos_;
    if (fill() == 0) {
      if (partial) throw OSError(kEndOfFile);
      throw EOFError("peer closed the connection");
    }
  }
  // A big message: read it as it comes, each read bounded by the deadline.
  struct Reset {
    Clock::time_point& d;
    ~Reset() { d = Clock::time_point::max(); }
  } reset{read_deadline_};
  read_deadline_ = deadline;
  try {
    return recv_bytes(maxlength);
  } catch (const ReadTimedOut&) {
    stop_receiving();
    return std::nullopt;
  }
}

std::optional<std::vector<std::byte>> Connection::recv_bytes_started_within(
    std::chrono::nanoseconds bound, std::optional<std::size_t> maxlength) {
  check_readable();
  if (rend_ == rpos_ && fill() == 0) throw EOFError("peer closed the connection");
  return recv_bytes_until(cd::deadline_after(bound), maxlength);
}

std::size_t Connection::recv_bytes_into(std::span<std::byte> buf, std::size_t offset) {
  check_readable();
  if (offset > buf.size()) throw ValueError("offset too large");
  const auto h = next_header(max_message_);
  if (h.kind == cd::FrameKind::handle) unexpected_handle(pending_fds_);
  const auto len = static_cast<std::size_t>(h.length);
  if (len <= buf.size() - offset) {
    read_payload(buf.data() + offset, len);
    return len;
  }
  std::vector<std::byte> whole;
  read_message(whole, len);
  throw BufferTooShort(std::move(whole));
}

std::span<const std::byte> Connection::recv_view(std::vector<std::byte>& storage) {
  check_readable();
  const auto h = next_header(max_message_);
  if (h.kind == cd::FrameKind::handle) unexpected_handle(pending_fds_);
  const auto len = static_cast<std::size_t>(h.length);
  if (len <= kRecvBuffer) {  // small: gather it whole in the buffer and lend it out
    while (rend_ - rpos_ < len)
      if (fill() == 0) throw OSError(kEndOfFile);
    const std::byte* p = rbuf_.get() + rpos_;
    rpos_ += len;
    return {p, len};
  }
  read_message(storage, len);
  return storage;
}

int Connection::recv_handle() {
  check_readable();
  if (!is_socket_) throw OSError(ENOTSOCK, "recv_handle needs a duplex connection");
  const auto h = next_header(max_message_);
  if (h.kind == cd::FrameKind::message) {
    skip_payload(h.length);
    throw OSError("expected a file descriptor, got a message");
  }
  if (pending_fds_.empty()) throw OSError("file descriptor frame without a descriptor");
  const int fd = pending_fds_.front();
  pending_fds_.erase(pending_fds_.begin());
  return fd;
}

// ---------------------------------------------------------------------------------------
// Writing

void Connection::write_frame(const std::byte* header, std::size_t header_size,
                             std::span<const std::byte> payload, int pass_fd) {
  iovec iov[2] = {{const_cast<std::byte*>(header), header_size},
                  {const_cast<std::byte*>(payload.data()), payload.size()}};
  iovec* cur = iov;
  int count = payload.empty() ? 1 : 2;
  std::optional<SigpipeBlock> no_sigpipe;
  if (!is_socket_) no_sigpipe.emplace();
  while (count > 0) {
    ssize_t put;
    if (is_socket_) {
      msghdr m{};
      m.msg_iov = cur;
      m.msg_iovlen = static_cast<std::size_t>(count);
      cd::PassedFdBuffer control;
      cd::attach_fd(m, control, pass_fd);
      put = ::sendmsg(fd_, &m, MSG_NOSIGNAL);
    } else {
      put = ::writev(fd_, cur, count);
    }
    if (put < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        wait_fd(fd_, POLLOUT);
        continue;
      }
      const int err = errno;
      if (err == EPIPE && no_sigpipe) no_sigpipe->swallow();
      throw OSError(err, "");
    }
    pass_fd = -1;  // it went with the first byte
    auto left = static_cast<std::size_t>(put);
    while (count > 0 && left >= cur->iov_len) {
      left -= cur->iov_len;
      ++cur;
      --count;
    }
    if (count > 0) {
      cur->iov_base = static_cast<char*>(cur->iov_base) + left;
      cur->iov_len -= left;
    }
  }
}

void Connection::send_bytes(std::span<const std::byte> buf) {
  check_writable();
  if (buf.size() > max_message_)
    throw ValueError("message of " + std::to_string(buf.size()) +
                     " bytes exceeds the connection's limit of " + std::to_string(max_message_));
  std::byte header[cd::kFrameMaxHeader];
  const std::size_t hs = cd::write_frame_header(header, buf.size());
  write_frame(header, hs, buf);
}

void Connection::send_bytes(std::span<const std::byte> buf, std::size_t offset,
                            std::optional<std::size_t> size) {
  if (offset > buf.size()) throw ValueError("buffer length < offset");
  const std::size_t n = size.value_or(buf.size() - offset);
  if (n > buf.size() - offset) throw ValueError("buffer length < offset + size");
  send_bytes(buf.subspan(offset, n));
}

std::byte* Connection::begin_send(std::size_t n) {
  check_writable();
  if (n > max_message_)
    throw ValueError("message of " + std::to_string(n) +
                     " bytes exceeds the connection's limit of " + std::to_string(max_message_));
  const std::size_t need = cd::kFrameMaxHeader + n;
  if (need > sbuf_size_) {
    sbuf_ = std::make_unique_for_overwrite<std::byte[]>(need);
    sbuf_size_ = need;
  }
  // The header goes right before the payload: 12 bytes are kept for the long form.
  std::byte header[cd::kFrameMaxHeader];
  const std::size_t hs = cd::write_frame_header(header, n);
  sbuf_start_ = cd::kFrameMaxHeader - hs;
  std::memcpy(sbuf_.get() + sbuf_start_, header, hs);
  sbuf_len_ = hs + n;
  return sbuf_.get() + cd::kFrameMaxHeader;
}

void Connection::end_send() {
  const std::span<const std::byte> frame(sbuf_.get() + sbuf_start_, sbuf_len_);
  struct Release {  // a buffer grown for one big message is not kept
    Connection* c;
    ~Release() {
      if (c->sbuf_size_ > kKeepSendBuffer) {
        c->sbuf_.reset();
        c->sbuf_size_ = 0;
      }
    }
  } release{this};
  write_frame(frame.data(), frame.size(), {});
}

void Connection::send_handle(int fd) {
  check_writable();
  if (!is_socket_) throw OSError(ENOTSOCK, "send_handle needs a duplex connection");
  std::byte header[cd::kFrameShortHeader];
  cd::write_handle_header(header);
  write_frame(header, sizeof header, {}, fd);
}

// ---------------------------------------------------------------------------------------
// Waiting

bool Connection::poll_until(Clock::time_point deadline) {
  check_readable();
  if (rend_ > rpos_) return true;
  pollfd p{fd_, POLLIN, 0};
  return poll_fds(&p, 1, deadline) > 0;
}

bool Connection::poll(std::optional<std::chrono::nanoseconds> timeout) {
  return poll_until(timeout ? detail::poll_deadline(*timeout) : Clock::time_point::max());
}

int Waitable::fileno() const {
  return conn_ ? conn_->fileno() : fd_;
}

std::vector<Waitable> wait_until(std::span<const Waitable> objects, Clock::time_point deadline) {
  std::vector<pollfd> fds(objects.size());
  std::vector<bool> buffered(objects.size());
  bool any_buffered = false;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    const int fd = objects[i].fileno();
    if (fd < 0) throw ValueError("Invalid file descriptor: " + std::to_string(fd));
    fds[i] = {fd, POLLIN, 0};
    if (Connection* c = objects[i].connection(); c && c->buffered() > 0) {
      buffered[i] = true;
      any_buffered = true;
    }
  }
  // A connection with received bytes is ready now: only look which others are too.
  poll_fds(fds.data(), fds.size(), any_buffered ? Clock::time_point{} : deadline);
  std::vector<Waitable> ready;
  for (std::size_t i = 0; i < objects.size(); ++i)
    if (buffered[i] || fds[i].revents != 0) ready.push_back(objects[i]);
  return ready;
}

std::vector<Waitable> wait(std::span<const Waitable> objects,
                           std::optional<std::chrono::nanoseconds> timeout) {
  return wait_until(objects, timeout ? detail::poll_deadline(*timeout) : Clock::time_point::max());
}

std::vector<Connection*> wait_until(std::span<Connection* const> connections,
                                    Clock::time_point deadline) {
  std::vector<Waitable> objects(connections.begin(), connections.end());
  std::vector<Connection*> ready;
  for (const Waitable& w : wait_until(std::span<const Waitable>(objects), deadline))
    ready.push_back(w.connection());
  return ready;
}

std::vector<Connection*> wait(std::span<Connection* const> connections,
                              std::optional<std::chrono::nanoseconds> timeout) {
  return wait_until(connections,
                    timeout ? detail::poll_deadline(*timeout) : Clock::time_point::max());
}

std::vector<int> wait_until(std::span<const int> fds, Clock::time_point deadline) {
  std::vector<Waitable> objects(fds.begin(), fds.end());
  std::vector<int> ready;
  for (const Waitable& w : wait_until(std::span<const Waitable>(objects), deadline))
    ready.push_back(w.fileno());
  return ready;
}

std::vector<int> wait(std::span<const int> fds, std::optional<std::chrono::nanoseconds> timeout) {
  return wait_until(fds, timeout ? detail::poll_deadline(*timeout) : Clock::time_point::max());
}

}  // namespace concur::multiprocessing
