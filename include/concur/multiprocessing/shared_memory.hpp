// concur/multiprocessing/shared_memory.hpp — Python's multiprocessing.shared_memory.
//
// SharedMemory is a named POSIX shared-memory segment (shm_open, visible as /dev/shm/NAME)
// mapped into this process. Any process that knows the name can attach to it.
//
// Lifetime and tracking (beyond Python, cpython#82300): only the process that CREATED a
// segment tracks it. If that process exits normally (return from main / exit()) without
// having called unlink(), the segment is unlinked then, with a warning on stderr like
// Python's resource tracker prints. A process that merely attaches never unlinks anything
// at exit — Python's tracker does, and destroys segments other processes still use.
// Forked children inherit the handle but not the tracking. Note: a child that creates a
// segment and ends through _exit (concur's Process children do) leaves it to whoever
// calls unlink(); unlink it in the child or hand the name back to the parent.
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
  // Names may be given with or without the leading '/'. Throws OSError on other failures.
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
  // Existing mappings stay valid. Stops this process's exit-time tracking of the name.
  void unlink();
  bool closed() const noexcept { return addr_ == nullptr; }

 private:
  void map_fd(int fd, std::size_t size);
  std::string name_;
  void* addr_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace concur::multiprocessing
