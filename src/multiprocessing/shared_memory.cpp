#include "concur/multiprocessing/shared_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <utility>

#include "concur/detail/fd.hpp"
#include "concur/detail/shm_tracker.hpp"
#include "concur/errors.hpp"

namespace concur::multiprocessing {

namespace {

std::string random_name() {
  unsigned char b[4];
  if (::getrandom(b, sizeof b, 0) != static_cast<ssize_t>(sizeof b)) {
    const auto x = static_cast<std::uint64_t>(
        std::chrono::steady_clock::now().time_since_epoch().count() ^ ::getpid());
    for (int i = 0; i < 4; ++i) b[i] = static_cast<unsigned char>(x >> (8 * i));
  }
  static const char* hex = "0123456789abcdef";
  std::string s = "psm_";
  for (unsigned char c : b) {
    s += hex[c >> 4];
    s += hex[c & 15];
  }
  return s;
}

}  // namespace

SharedMemory::SharedMemory(std::optional<std::string> name, bool create, std::size_t size) {
  if (!name && !create) throw ValueError("'name' can only be None if create=True");
  if (create && size == 0) throw ValueError("'size' must be a positive number different from zero");
  if (name && name->find('\0') != std::string::npos)
    throw ValueError("embedded null character in shared memory name");
  int fd = -1;
  if (create) {
    // Tracker first (its start takes a fork+exec): the window between shm_open and the
    // registration, in which a kill would leak the segment, is then a few syscalls long.
    concur::detail::shm_tracker_ensure_running();
    const bool auto_name = !name.has_value();
    for (;;) {
      std::string n = auto_name ? random_name() : *name;
      if (!n.empty() && n.front() == '/') n.erase(0, 1);
      const std::string path = "/" + n;
      fd = ::shm_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
      if (fd < 0 && errno == EEXIST && auto_name) continue;
      if (fd < 0) throw_os_error(errno, n);
      name_ = n;
      break;
    }
    const std::string path = "/" + name_;
    int rc;
    do {
      rc = ::ftruncate(fd, static_cast<off_t>(size));
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      const int err = errno;
      ::shm_unlink(path.c_str());
      concur::detail::close_fd(fd);
      throw OSError(err, name_);
    }
    try {
      map_fd(fd, size);
    } catch (...) {
      ::shm_unlink(path.c_str());
      concur::detail::close_fd(fd);
      throw;
    }
    concur::detail::close_fd(fd);
    // The program's tracker owns it from here: unlinked when the program is gone unless
    // unlink() came first (also if this process is killed, or is a child that ends).
    try {
      concur::detail::shm_tracker_register(path);
    } catch (...) {
      close();
      ::shm_unlink(path.c_str());
      throw;
    }
  } else {
    std::string n = *name;
    if (!n.empty() && n.front() == '/') n.erase(0, 1);
    const std::string path = "/" + n;
    fd = ::shm_open(path.c_str(), O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) throw_os_error(errno, n);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      concur::detail::close_fd(fd);
      throw OSError(err, n);
    }
    name_ = n;
    try {
      map_fd(fd, static_cast<std::size_t>(st.st_size));
    } catch (...) {
      concur::detail::close_fd(fd);
      throw;
    }
    concur::detail::close_fd(fd);
  }
}

void SharedMemory::map_fd(int fd, std::size_t size) {
  if (size == 0) throw ValueError("cannot mmap an empty file");
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw OSError(errno, "mmap " + name_);
  addr_ = p;
  size_ = size;
}

SharedMemory::SharedMemory(const SharedMemory& other) : name_(other.name_), size_(other.size_) {
  if (other.addr_) {
    // An independent mapping of the same pages: remap the other handle's mapping.
    void* p = ::mremap(other.addr_, 0, other.size_, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) throw OSError(errno, "mremap " + name_);
    addr_ = p;
  }
}

SharedMemory& SharedMemory::operator=(const SharedMemory& other) {
  if (this != &other) {
    SharedMemory tmp(other);
    *this = std::move(tmp);
  }
  return *this;
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : name_(std::move(other.name_)),
      addr_(std::exchange(other.addr_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this != &other) {
    close();
    name_ = std::move(other.name_);
    addr_ = std::exchange(other.addr_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SharedMemory::~SharedMemory() {
  close();
}

void SharedMemory::close() noexcept {
  if (addr_) ::munmap(addr_, size_);
  addr_ = nullptr;
}

void SharedMemory::unlink() {
  const std::string path = "/" + name_;
  if (::shm_unlink(path.c_str()) != 0) throw_os_error(errno, name_);
  concur::detail::shm_tracker_unregister(path);
}

}  // namespace concur::multiprocessing
