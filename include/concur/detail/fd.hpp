// concur/detail/fd.hpp — file-descriptor ownership and EINTR-safe I/O helpers.
//
// UniqueFd owns one descriptor and closes it on destruction (move-only). Every helper
// retries EINTR; every descriptor concur opens is O_CLOEXEC.
// Thread-safety: a UniqueFd is not shared between threads without external locking.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <cstring>
#include <utility>

namespace concur::detail {

class UniqueFd {
 public:
  constexpr UniqueFd() noexcept = default;
  constexpr explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  // Gives up ownership without closing.
  int release() noexcept { return std::exchange(fd_, -1); }
  // Closes the owned descriptor (if any) and takes `fd`.
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

// close() that keeps errno and ignores EINTR (Linux always releases the fd).
void close_fd(int fd) noexcept;

// Returns fd itself if it is >= 3, else a close-on-exec copy at the lowest free fd >= 3
// (the original is closed). Internal descriptors live above the stdio slots, so code that
// dup2()s onto 0-2 (a child's redirections) never overwrites them when 0-2 were closed.
// Throws OSError.
UniqueFd above_stdio(UniqueFd fd);

// pipe2(O_CLOEXEC | extra_flags), both ends at fd >= 3 (above_stdio). Throws OSError.
std::pair<UniqueFd, UniqueFd> make_pipe(int extra_flags = 0);

// Writes all of buf; returns false with errno set on failure (EPIPE, EBADF...).
bool write_all(int fd, const void* buf, std::size_t len) noexcept;
// Reads until len bytes or EOF; returns bytes read, or -1 with errno set.
ssize_t read_full(int fd, void* buf, std::size_t len) noexcept;

// pidfd_open(pid, 0), at fd >= 3; -1 with errno on failure (ENOSYS before Linux 5.3).
int pidfd_open(pid_t pid) noexcept;

// Waits up to timeout_ms (-1: forever) for fd to become readable; EINTR-safe (the
// remaining time is recomputed). Returns true if readable (or hung up), false on timeout.
bool wait_readable(int fd, int timeout_ms) noexcept;

// Control data with room for one descriptor passed over a Unix socket (SCM_RIGHTS).
struct PassedFdBuffer {
  alignas(cmsghdr) char bytes[CMSG_SPACE(sizeof(int))] = {};
};

// Makes the sendmsg() header `h` carry `fd` (SCM_RIGHTS) in `buf`, which must outlive the
// call; fd < 0 leaves `h` without control data. The one place that builds that cmsg (the
// pools' fork server and Connection::send_bytes both pass descriptors). Never fails.
inline void attach_fd(msghdr& h, PassedFdBuffer& buf, int fd) noexcept {
  if (fd < 0) {
    h.msg_control = nullptr;
    h.msg_controllen = 0;
    return;
  }
  h.msg_control = buf.bytes;
  h.msg_controllen = sizeof buf.bytes;
  cmsghdr* c = CMSG_FIRSTHDR(&h);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
}

}  // namespace concur::detail
