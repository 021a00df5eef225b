// Seed 002, "process": who this process is. Python:
//   import os
//   print(os.getpid()) # process ID
//   print(os.getuid()) # user ID
//   print(os.getgid()) # group ID
//   print(os.getcwd()) # current directory
// C++ has these from POSIX directly; concur adds the multiprocessing view of the same
// process (current_process(): its name and pid) and of a child's.
#include <unistd.h>

#include <climits>
#include <concur/multiprocessing.hpp>
#include <cstdio>

namespace mp = concur::multiprocessing;

int main() {
  std::printf("%d\n", static_cast<int>(::getpid()));  // process ID
  std::printf("%u\n", ::getuid());                    // user ID
  std::printf("%u\n", ::getgid());                    // group ID
  char cwd[PATH_MAX];
  std::printf("%s\n", ::getcwd(cwd, sizeof cwd) != nullptr ? cwd : "?");  // current directory

  std::printf("current_process(): name=%s, pid=%d\n", mp::current_process().name().c_str(),
              static_cast<int>(mp::current_process().pid()));
  mp::Process child({.name = "child"}, [] {
    std::printf("in the child: name=%s, pid=%d, parent pid=%d\n",
                mp::current_process().name().c_str(), static_cast<int>(::getpid()),
                static_cast<int>(::getppid()));
  });
  child.start();
  child.join();
  std::printf("child exit code: %d\n", child.exitcode().value_or(-1));
}
