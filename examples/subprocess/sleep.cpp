// The notes' second cell: subprocess.run(['sleep','10']) -> CompletedProcess(..., returncode=0).
// Scaled down ten times (10 s -> 1 s) to keep the tour short. run() blocks until the child
// ends; meanwhile the child is an ordinary process the OS schedules on any core.
#include <concur/subprocess.hpp>

#include <chrono>
#include <iostream>

namespace sp = concur::subprocess;

int main() {
  const auto t0 = std::chrono::steady_clock::now();
  auto cp = sp::run({"sleep", "1"});
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - t0);
  std::cout << cp << "\n";
  std::cout << "waited about " << (ms.count() + 50) / 100 * 100 << " ms\n";

  // The same child, started with Popen and polled while it runs.
  sp::Popen p({"sleep", "0.3"});
  std::cout << "poll() while running: " << (p.poll() ? "ended" : "None") << "\n";
  std::cout << "wait() -> " << p.wait() << "\n";
}
