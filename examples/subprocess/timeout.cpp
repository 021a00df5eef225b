// Timeouts. run() with a timeout kills the child (SIGKILL) when it expires, reaps it and
// throws TimeoutExpired carrying what the child printed before. Popen::communicate with a
// timeout does not kill: it can be called again and nothing printed is lost.
// (The notes' sleep 10 stands for a slow child; the timeouts here are 0.3 s.)
#include <concur/subprocess.hpp>

#include <chrono>
#include <iostream>

namespace sp = concur::subprocess;
using namespace std::chrono_literals;

int main() {
  // start_new_session: the child leads its own process group, so the timeout kills the
  // shell's `sleep` too instead of leaving it running with our pipes (cpython#81605).
  try {
    (void)sp::run({"sh", "-c", "echo started; sleep 10"},
                  {.capture_output = true, .timeout = 300ms, .start_new_session = true});
  } catch (const sp::TimeoutExpired& e) {
    std::cout << "TimeoutExpired: " << e.what() << "\n";
    std::cout << "output so far: " << e.output();
  }

  sp::Popen p({"sh", "-c", "echo one; sleep 0.6; echo two"}, {.out = sp::PIPE});
  try {
    (void)p.communicate(std::nullopt, 300ms);
  } catch (const sp::TimeoutExpired& e) {
    std::cout << "first communicate timed out with: " << e.output();
  }
  auto [out, err] = p.communicate();  // retry: everything arrives
  std::cout << "second communicate returned:\n" << out << "returncode " << p.wait() << "\n";

  // check=true turns a failure into CalledProcessError, with Python's message.
  try {
    (void)sp::run({"sh", "-c", "exit 3"}, {.check = true});
  } catch (const sp::CalledProcessError& e) {
    std::cout << "CalledProcessError: " << e.what() << "\n";
  }
}
