#include "concur/detail/fd.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "concur/detail/deadline.hpp"
#include "concur/errors.hpp"

namespace concur::detail {

void close_fd(int fd) noexcept {
  if (fd < 0) return;
  const int saved = errno;
  ::close(fd);  // Linux releases the descriptor even when close reports EINTR
  errno = saved;
}

void UniqueFd::reset(int fd) noexcept {
  if (fd_ >= 0 && fd_ != fd) close_fd(fd_);
  fd_ = fd;
}

UniqueFd above_stdio(UniqueFd fd) {
  if (!fd || fd.get() >= 3) return fd;
  const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) throw OSError(errno, "fcntl(F_DUPFD_CLOEXEC)");
  return UniqueFd(moved);  // `fd` closes the low copy
}

std::pair<UniqueFd, UniqueFd> make_pipe(int extra_flags) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | extra_flags) != 0) throw OSError(errno, "pipe2");
  UniqueFd rd(fds[0]), wr(fds[1]);
  return {above_stdio(std::move(rd)), above_stdio(std::move(wr))};
}

bool write_all(int fd, const void* buf, std::size_t len) noexcept {
  auto* p = static_cast<const char*>(buf);
  while (len > 0) {
    const ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {  // non-blocking fd: wait until it drains
        pollfd pf{fd, POLLOUT, 0};
        if (::poll(&pf, 1, -1) < 0 && errno != EINTR) return false;
        continue;
      }
      return false;
    }
    p += n;
    len -= static_cast<std::size_t>(n);
  }
  return true;
}

ssize_t read_full(int fd, void* buf, std::size_t len) noexcept {
  auto* p = static_cast<char*>(buf);
  std::size_t got = 0;
  while (got < len) {
    const ssize_t n = ::read(fd, p + got, len - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  return static_cast<ssize_t>(got);
}

int pidfd_open(pid_t pid) noexcept {
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0 || fd >= 3) return fd;
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  const int err = errno;
  ::close(fd);
  errno = err;
  return moved;
}

bool wait_readable(int fd, int timeout_ms) noexcept {
  const Deadline deadline = timeout_ms < 0 ? Deadline::forever()
                                           : Deadline::after(std::chrono::milliseconds(timeout_ms));
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int rc = ::poll(&p, 1, deadline.poll_ms());
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return true;  // let the caller's read report the error
  }
}

}  // namespace concur::detail
