// A program outside the project, built against the installed package only: it uses the
// public names of DESIGN.md and prints "consumer ok" when every check held.
#include <concur/concur.hpp>

#include <cstdio>
#include <string>

int main() {
  try {
    throw concur::queue::Empty();
  } catch (const concur::Error& e) {
    std::printf("caught %s\n", e.what());
  }
  {  // concur::subprocess through DESIGN.md's names
    namespace sp = concur::subprocess;
    sp::CompletedProcess cp = sp::run({"echo", "hi"}, {.capture_output = true, .check = true});
    sp::Popen p({"cat"}, {.in = sp::Redirect::Pipe, .out = sp::Redirect::Pipe});
    auto [out, err] = p.communicate(std::string("piped"));
    if (cp.out != "hi\n" || out != "piped" || p.returncode() != 0) return 1;
    std::printf("subprocess ok\n");
  }
  std::printf("consumer ok\n");
  return 0;
}
