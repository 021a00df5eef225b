// A program outside the project, built against the installed package only: it uses the
// public names of DESIGN.md and prints "consumer ok" when every check held.
#include <concur/concur.hpp>

#include <cstdio>
#include <string>

// multiprocessing::Process through DESIGN.md's names (issue #4).
static bool check_multiprocessing() {
  namespace mp = concur::multiprocessing;
  mp::Process p({.name = "consumer_child", .daemon = false}, [](int n) { mp::exit(n); }, 5);
  p.start();
  p.join();
  const bool ok = p.exitcode() == 5 && !p.is_alive() && p.pid().has_value() &&
                  mp::current_process().name() == "MainProcess" && !mp::parent_process() &&
                  mp::active_children().empty() && mp::cpu_count() >= 1 &&
                  mp::to_string(p).find("stopped exitcode=5") != std::string::npos;
  std::printf("multiprocessing %s\n", ok ? "ok" : "FAILED");
  return ok;
}

int main() {
  if (!check_multiprocessing()) return 1;
  try {
    throw concur::queue::Empty();
  } catch (const concur::Error& e) {
    std::printf("caught %s\n", e.what());
  }
  std::printf("consumer ok\n");
  return 0;
}
