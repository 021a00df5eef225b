// A program outside the project using the installed concur::mpi (find_package(concur
// COMPONENTS mpi) or pkg-config concur-mpi), run by mpirun over 2 ranks: prints
// "mpi consumer ok" on rank 0 when submit and map came back right from rank 1.
#include <concur/futures/mpi.hpp>
#include <cstdio>
#include <vector>

namespace futures = concur::futures;

static int cube(int x) {
  return x * x * x;
}
static int where() {
  return futures::mpi::rank();
}
CONCUR_REMOTE(cube);
CONCUR_REMOTE(where);

int main(int argc, char** argv) {
  return futures::mpi::main(argc, argv, [](int, char**) {
    futures::MpiPoolExecutor ex;
    const int r = ex.submit(where).result();
    const auto v = ex.map(cube, std::vector<int>{1, 2, 3}, {.chunksize = 2}).to_vector();
    const bool ok = r == 1 && v == std::vector<int>{1, 8, 27};
    std::printf("%s\n", ok ? "mpi consumer ok" : "mpi consumer FAILED");
    return ok ? 0 : 1;
  });
}
