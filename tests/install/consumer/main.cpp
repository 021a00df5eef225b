// A program outside the project, built against the installed package only: it uses the
// public names of DESIGN.md and prints "consumer ok" when every check held.
#include <concur/concur.hpp>

#include <cstdio>

int main() {
  try {
    throw concur::queue::Empty();
  } catch (const concur::Error& e) {
    std::printf("caught %s\n", e.what());
  }
  std::printf("consumer ok\n");
  return 0;
}
