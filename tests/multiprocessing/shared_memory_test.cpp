// concur-test: timeout=60
// SharedMemory: create/attach/close/unlink, Python's errors, auto names, sharing across
// processes, creator-only tracking (an attaching process never unlinks: cpython#82300),
// and /dev/shm holding nothing of ours afterwards.
#include "concur/multiprocessing/shared_memory.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <vector>
#include <string>

#include "concur/detail/shm_tracker.hpp"
#include "concur/errors.hpp"
#include "fork_util.hpp"

namespace mp = concur::multiprocessing;
namespace fs = std::filesystem;
using concur_test::fork_child;
using concur_test::wait_exit;

namespace {

std::string unique_name(const char* tag) {
  return std::string("concur_test_") + tag + "_" + std::to_string(::getpid());
}

// Every segment a test makes is registered with own(); TearDown checks that none of them
// is left in /dev/shm. (Only our own names: other tests and programs run in parallel.)
class SharedMemoryTest : public ::testing::Test {
 protected:
  std::string own(const std::string& name) {
    owned_.push_back(name);
    return name;
  }
  void TearDown() override {
    for (const auto& n : owned_)
      EXPECT_FALSE(fs::exists("/dev/shm/" + n)) << "segment " << n << " leaked";
  }
  std::vector<std::string> owned_;
};

TEST_F(SharedMemoryTest, CreateWriteAttachReadUnlink) {
  const std::string name = own(unique_name("basic"));
  mp::SharedMemory a(name, true, 4096);
  EXPECT_EQ(a.name(), name);
  EXPECT_EQ(a.size(), 4096u);
  EXPECT_TRUE(fs::exists("/dev/shm/" + name));
  // Fresh segments are zero-filled.
  for (std::byte b : a.buf()) ASSERT_EQ(b, std::byte{0});
  std::memcpy(a.buf().data(), "hello", 5);

  mp::SharedMemory b(name);  // attach; size comes from the segment
  EXPECT_EQ(b.size(), 4096u);
  EXPECT_EQ(std::memcmp(b.buf().data(), "hello", 5), 0);
  b.buf()[0] = std::byte{'j'};
  EXPECT_EQ(static_cast<char>(a.buf()[0]), 'j');

  b.close();
  EXPECT_TRUE(b.buf().empty());
  b.close();  // idempotent
  a.unlink();
  EXPECT_FALSE(fs::exists("/dev/shm/" + name));
  // The mapping outlives the name.
  EXPECT_EQ(static_cast<char>(a.buf()[1]), 'e');
  EXPECT_THROW(a.unlink(), concur::FileNotFoundError);
}

TEST_F(SharedMemoryTest, PythonErrors) {
  EXPECT_THROW(mp::SharedMemory(std::nullopt, false, 0), concur::ValueError);
  try {
    mp::SharedMemory s(std::nullopt, true, 0);
    FAIL();
  } catch (const concur::ValueError& e) {
    EXPECT_STREQ(e.what(), "'size' must be a positive number different from zero");
  }
  EXPECT_THROW(mp::SharedMemory(unique_name("missing")), concur::FileNotFoundError);
  const std::string name = own(unique_name("dup"));
  mp::SharedMemory a(name, true, 100);
  try {
    mp::SharedMemory b(name, true, 100);
    FAIL();
  } catch (const concur::FileExistsError& e) {
    EXPECT_EQ(e.code(), EEXIST);
  }
  a.unlink();
}

TEST_F(SharedMemoryTest, EmptySegmentCannotBeMapped) {
  const std::string name = own(unique_name("empty"));
  const int fd = ::shm_open(("/" + name).c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ::close(fd);
  try {
    mp::SharedMemory s(name);
    FAIL();
  } catch (const concur::ValueError& e) {
    EXPECT_STREQ(e.what(), "cannot mmap an empty file");
  }
  ::shm_unlink(("/" + name).c_str());
}

TEST_F(SharedMemoryTest, NoFileDescriptorStaysOpen) {
  auto count_fds = [] {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
    return n;
  };
  // The program's tracker connection is one descriptor for the program's life, opened at
  // the first creation: open it first, then count.
  concur::detail::shm_tracker_ensure_running();
  const std::size_t before = count_fds();
  {
    mp::SharedMemory a(std::nullopt, true, 4096);
    own(a.name());
    mp::SharedMemory b(a.name());
    mp::SharedMemory c = b;
    EXPECT_EQ(count_fds(), before) << "mappings keep no descriptor";
    a.unlink();
  }
  EXPECT_EQ(count_fds(), before);
}

TEST_F(SharedMemoryTest, AutoNamesAreDistinctAndLeadingSlashIsOptional) {
  mp::SharedMemory a(std::nullopt, true, 10);
  mp::SharedMemory b(std::nullopt, true, 10);
  own(a.name());
  own(b.name());
  EXPECT_EQ(a.name().rfind("psm_", 0), 0u);
  EXPECT_EQ(a.name().size(), 12u);
  EXPECT_NE(a.name(), b.name());
  mp::SharedMemory c("/" + a.name());
  EXPECT_EQ(c.name(), a.name());
  a.unlink();
  b.unlink();
}

TEST_F(SharedMemoryTest, CopiesAreIndependentHandlesOnTheSameBytes) {
  mp::SharedMemory a(std::nullopt, true, 64);
  own(a.name());
  mp::SharedMemory b = a;
  EXPECT_NE(a.buf().data(), b.buf().data());
  a.buf()[3] = std::byte{42};
  EXPECT_EQ(b.buf()[3], std::byte{42});
  a.close();
  EXPECT_EQ(b.buf()[3], std::byte{42});
  mp::SharedMemory moved = std::move(b);
  EXPECT_TRUE(b.closed());
  EXPECT_EQ(moved.buf()[3], std::byte{42});
  moved.unlink();
}

TEST_F(SharedMemoryTest, AnotherProcessAttachesByNameAndDoesNotUnlinkAtExit) {
  mp::SharedMemory a(std::nullopt, true, 128);
  const std::string name = own(a.name());
  const pid_t pid = fork_child([&] {
    mp::SharedMemory b(name);
    std::memcpy(b.buf().data(), "from child", 10);
    b.close();
    std::exit(0);  // runs exit hooks: an attacher must not unlink
    return 0;
  });
  EXPECT_EQ(wait_exit(pid), 0);
  EXPECT_TRUE(fs::exists("/dev/shm/" + name));
  EXPECT_EQ(std::memcmp(a.buf().data(), "from child", 10), 0);
  a.unlink();
}

TEST_F(SharedMemoryTest, NulInNameIsValueError) {
  EXPECT_THROW(mp::SharedMemory(std::string("a\0b", 3), true, 16), concur::ValueError);
  EXPECT_THROW(mp::SharedMemory(std::string("x\0", 2)), concur::ValueError);
  EXPECT_FALSE(fs::exists("/dev/shm/a"));
}

// (A creator's leftovers at exit, and kills: tests/multiprocessing/shm_tracker_test.cpp.)

TEST_F(SharedMemoryTest, ForkedChildsExitDoesNotUnlinkTheParentsSegment) {
  mp::SharedMemory a(std::nullopt, true, 10);
  const std::string name = own(a.name());
  const pid_t pid = fork_child([&] {
    std::exit(0);  // inherits the handle and the tracker connection; the top owns it
    return 0;
  });
  EXPECT_EQ(wait_exit(pid), 0);
  EXPECT_TRUE(fs::exists("/dev/shm/" + name));
  a.unlink();
}

}  // namespace
