// MpiCommExecutor (mpi4py's MPICommExecutor) over 3 ranks, with MPI initialized by the
// program itself and rank 1 as the root: the root's executor runs tasks on ranks 0 and 2,
// the others serve inside the constructor; afterwards the caller's own collective on
// MPI_COMM_WORLD still works (the executor's traffic used a duplicate), and a second
// MpiCommExecutor over the same communicator works after the first.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>

#include "concur/errors.hpp"
#include "concur/futures/mpi.hpp"

namespace futures = concur::futures;
using namespace std::chrono_literals;

namespace {
int world_rank() {
  return futures::mpi::rank();
}
std::string twice(std::string s) {
  return s + s;
}
futures::MpiPoolExecutor* g_ex = nullptr;
}  // namespace

CONCUR_REMOTE(world_rank);
CONCUR_REMOTE(twice);

TEST(MpiCommExecutor, RootSubmitsToTheOtherRanks) {
  ASSERT_NE(g_ex, nullptr);
  EXPECT_EQ(futures::mpi::rank(), 1);
  EXPECT_EQ(g_ex->max_workers(), 2);
  std::set<int> ranks;
  std::vector<futures::Future<int>> fs;
  for (int i = 0; i < 40; ++i) fs.push_back(g_ex->submit(world_rank));
  for (auto& f : fs) ranks.insert(f.result(30s));
  EXPECT_EQ(ranks, (std::set<int>{0, 2}));
  EXPECT_EQ(g_ex->map(twice, std::vector<std::string>{"a", "bc"}).to_vector(),
            (std::vector<std::string>{"aa", "bcbc"}));
}

TEST(MpiCommExecutor, MpiPoolExecutorNeedsMpiMain) {
  EXPECT_THROW(futures::MpiPoolExecutor ex, concur::RuntimeError);
}

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rc = 0;
  {
    futures::MpiCommExecutor mce(MPI_COMM_WORLD, 1);
    if (auto* ex = mce.executor()) {
      g_ex = ex;
      testing::InitGoogleTest(&argc, argv);
      rc = RUN_ALL_TESTS();
      g_ex = nullptr;
    }
  }
  int v = futures::mpi::rank() == 1 ? 77 : 0;
  MPI_Bcast(&v, 1, MPI_INT, 1, MPI_COMM_WORLD);
  if (v != 77) rc = 2;
  {
    futures::MpiCommExecutor mce(MPI_COMM_WORLD, 0);
    if (auto* ex = mce.executor()) {
      if (ex->submit(world_rank).result(30s) == 0) rc = 3;
    } else if (futures::mpi::rank() == 0) {
      rc = 4;
    }
  }
  MPI_Finalize();
  return rc;
}
