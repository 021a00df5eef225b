// concur_child — the helper program process-level tests run (its path reaches every test as
// CONCUR_CHILD_PATH). One mode per invocation:
//   exit N                 exit with status N
//   sleep MS               sleep MS milliseconds, then exit 0
//   ignore-term MS         ignore SIGTERM, then sleep MS milliseconds
//   echo                   copy stdin to stdout until EOF
//   echo-err               copy stdin to stderr until EOF
//   crash SIGNAL           raise SIGNAL (a number) at itself
//   print-args ARGS...     print each argument on its own line
//   print-env NAME         print the value of NAME (or "<unset>")
//   print-cwd              print the working directory
//   print-fds              print the open descriptors (from /proc/self/fd), one a line
//   write N [err]          write N bytes ('x') to stdout (or stderr)
//   out-err                write "out" to stdout and "err" to stderr
//   grandchild MS          start a grandchild that sleeps MS ms holding stdout/stderr, then
//                          exit 0 at once
//   partial-then-sleep MS  print "partial" (flushed), then sleep MS ms
//   print-sig N            print the disposition of signal N: default, ignore or handler
//   print-ids              print "pid pgid sid" of this process
//   print-tags             print the codec type tags of tests/helpers/codec_types.hpp's
//                          types, "name 0x..." one a line
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "codec_types.hpp"

namespace {
void sleep_ms(long ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

int copy(int from, int to) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(from, buf, sizeof buf);
    if (n == 0) return 0;
    if (n < 0) return 1;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(to, buf + off, static_cast<size_t>(n - off));
      if (w < 0) return 1;
      off += w;
    }
  }
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: concur_child MODE [ARGS...]\n");
    return 2;
  }
  const std::string mode = argv[1];
  auto arg = [&](int i) -> long { return i < argc ? std::strtol(argv[i], nullptr, 10) : 0; };
  if (mode == "exit") return static_cast<int>(arg(2));
  if (mode == "sleep") {
    sleep_ms(arg(2));
    return 0;
  }
  if (mode == "ignore-term") {
    signal(SIGTERM, SIG_IGN);
    sleep_ms(arg(2));
    return 0;
  }
  if (mode == "echo") return copy(0, 1);
  if (mode == "echo-err") return copy(0, 2);
  if (mode == "crash") {
    signal(static_cast<int>(arg(2)), SIG_DFL);
    raise(static_cast<int>(arg(2)));
    return 3;
  }
  if (mode == "print-args") {
    for (int i = 2; i < argc; ++i) std::printf("%s\n", argv[i]);
    return 0;
  }
  if (mode == "print-env") {
    const char* v = argc > 2 ? std::getenv(argv[2]) : nullptr;
    std::printf("%s\n", v ? v : "<unset>");
    return 0;
  }
  if (mode == "print-cwd") {
    char buf[4096];
    std::printf("%s\n", getcwd(buf, sizeof buf) ? buf : "?");
    return 0;
  }
  if (mode == "print-fds") {
    DIR* d = opendir("/proc/self/fd");
    if (!d) return 1;
    const int self = dirfd(d);
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      if (std::atoi(e->d_name) == self) continue;
      std::printf("%s\n", e->d_name);
    }
    closedir(d);
    return 0;
  }
  if (mode == "write") {
    std::string s(static_cast<size_t>(arg(2)), 'x');
    const int fd = (argc > 3 && std::strcmp(argv[3], "err") == 0) ? 2 : 1;
    for (size_t off = 0; off < s.size();) {
      ssize_t w = write(fd, s.data() + off, s.size() - off);
      if (w < 0) return 1;
      off += static_cast<size_t>(w);
    }
    return 0;
  }
  if (mode == "out-err") {
    std::fputs("out", stdout);
    std::fflush(stdout);
    std::fputs("err", stderr);
    return 0;
  }
  if (mode == "grandchild") {
    if (fork() == 0) {
      sleep_ms(arg(2));
      _exit(0);
    }
    return 0;
  }
  if (mode == "partial-then-sleep") {
    std::fputs("partial", stdout);
    std::fflush(stdout);
    sleep_ms(arg(2));
    return 0;
  }
  if (mode == "print-sig") {
    struct sigaction sa {};
    sigaction(static_cast<int>(arg(2)), nullptr, &sa);
    std::printf("%s\n", sa.sa_handler == SIG_DFL   ? "default"
                        : sa.sa_handler == SIG_IGN ? "ignore"
                                                   : "handler");
    return 0;
  }
  if (mode == "print-ids") {
    std::printf("%d %d %d\n", static_cast<int>(getpid()), static_cast<int>(getpgid(0)),
                static_cast<int>(getsid(0)));
    return 0;
  }
  if (mode == "print-tags") {
    codec_test::for_each_tagged([](const char* name, std::uint64_t tag) {
      std::printf("%s 0x%016llx\n", name, static_cast<unsigned long long>(tag));
    });
    return 0;
  }
  std::fprintf(stderr, "concur_child: unknown mode %s\n", mode.c_str());
  return 2;
}
