// The notes' first subprocess cell (seeds/002, 6.1.1):
//   subprocess.run(['echo', '이것은 subprocess입니다.'])
//   -> CompletedProcess(args=['echo', '이것은 subprocess입니다.'], returncode=0)
// The parent starts a child process (echo), which prints to the inherited stdout; run()
// waits for it and returns a CompletedProcess.
#include <concur/subprocess.hpp>

#include <iostream>

namespace sp = concur::subprocess;

int main() {
  auto cp = sp::run({"echo", "이것은 subprocess입니다."});
  std::cout << cp << "\n";

  // In [3]: a CompletedProcess can be made by hand, as in Python.
  sp::CompletedProcess made{{"echo", "이것은 subprocess입니다."}, 0};
  std::cout << made << "\n";

  // Capturing instead of inheriting: the output comes back in cp.out.
  auto captured = sp::run({"echo", "이것은 subprocess입니다."}, {.capture_output = true});
  std::cout << captured << "\n";
}
