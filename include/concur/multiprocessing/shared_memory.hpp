// concur/multiprocessing/shared_memory.hpp — Python's multiprocessing.shared_memory.
//
// SharedMemory is a named POSIX shared-memory segment (shm_open, visible as /dev/shm/NAME)
// mapped into this process. Any process that knows the name can attach to it.
//
// Lifetime and tracking (Python's resource tracker, concur/detail/shm_tracker.hpp): every
// segment a process of the program CREATES is registered with the program's tracker, a
// small process started at the first creation (or at the first Process::start()) and
// shared by the top process and every process forked from it. A segment that was not
// unlink()ed is unlinked when the program is gone — the top process and every child that
// inherited the connection — with a warning on stderr like Python's ("... leaked
// shared_memory objects to clean up at shutdown: ['/psm_1a2b3c4d']"), also when the top
// process was killed by SIGTERM or SIGKILL. So a segment created inside a child outlives
// that child and stays until the top process ends (or someone unlinks it), as in Python.
// Merely attaching never registers (beyond Python, cpython#82300: Python's tracker also
// tracks attachers and destroys segments other programs still use). A process forked
// before any tracker existed in its parent is the top of its own program.
//
// Handles: a SharedMemory object owns one mapping; copying it maps the same segment again
// (like Python attaching by name: an independent handle, own close()). close() unmaps this
// handle only; unlink() removes the name (the memory lives until the last mapping goes).
// The destructor closes. Thread-safety: distinct handles may be used concurrently; one
// handle's close()/unlink() must not race with other calls on that same handle.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>

namespace concur::multiprocessing {

class SharedMemory {
 public:
  // Python's SharedMemory(name=None, create=False, size=0).
  //  * create = true: makes a new segment of `size` bytes (zero-filled) named `name`, or a
  //    fresh "psm_<8 hex>" name when none is given. FileExistsError if the name exists;
  //    ValueError("'size' must be a positive number different from zero") if size == 0.
  //  * create = false: attaches to the existing segment `name` (size is ignored; size()
  //    reports the segment's). FileNotFoundError if it does not exist;
  //    ValueError("'name' can only be None if create=True") without a name.
  // Names may be given with or without the leading '/'; a name holding a NUL character is
  // a ValueError. Throws OSError on other failures.
  explicit SharedMemory(std::optional<std::string> name = std::nullopt, bool create = false,
                        std::size_t size = 0);
  // Attaches to `name` (the common attach-by-name form).
  explicit SharedMemory(const char* name) : SharedMemory(std::string(name), false, 0) {}

  SharedMemory(const SharedMemory& other);
  SharedMemory& operator=(const SharedMemory& other);
  SharedMemory(SharedMemory&& other) noexcept;
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  ~SharedMemory();

  // The name without the leading '/', as Python's .name.
  const std::string& name() const noexcept { return name_; }
  // Size of the mapping in bytes.
  std::size_t size() const noexcept { return size_; }
  // The mapped bytes. Empty after close().
  std::span<std::byte> buf() const noexcept {
    return {static_cast<std::byte*>(addr_), addr_ ? size_ : 0};
  }
  // Unmaps this handle (idempotent). Other handles and processes are unaffected.
  void close() noexcept;
  // Removes the name from the system (once: FileNotFoundError the second time, as Python).
  // Existing mappings stay valid. Unregisters the name from the program's tracker.
  void unlink();
  bool closed() const noexcept { return addr_ == nullptr; }

 private:
  void map_fd(int fd, std::size_t size);
  std::string name_;
  void* addr_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace concur::multiprocessing
