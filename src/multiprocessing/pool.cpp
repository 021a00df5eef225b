// multiprocessing::Pool: the Pool face of the process-pool engine.
#include "concur/multiprocessing/pool.hpp"

namespace concur::multiprocessing {

namespace {
int checked_processes(unsigned n) {
  if (n == 0) throw ValueError("Number of processes must be at least 1");
  if (n > 4096) throw ValueError("Number of processes is too large");
  return static_cast<int>(n);
}
}  // namespace

Pool::Pool(unsigned processes, PoolOptions options)
    : engine_(checked_processes(processes),
              {std::move(options.initializer), options.maxtasksperchild, "Pool"}) {}

Pool::Pool(PoolOptions options) : Pool(cpu_count(), std::move(options)) {}

Pool::~Pool() {
  terminate();
}

void Pool::close() {
  {
    std::lock_guard g(mu_);
    if (state_ == State::run) state_ = State::close;
  }
  engine_.shutdown(false, false);
}

void Pool::terminate() {
  {
    std::lock_guard g(mu_);
    state_ = State::terminate;
  }
  engine_.terminate();
}

void Pool::join() {
  {
    std::lock_guard g(mu_);
    if (state_ == State::run) throw ValueError("Pool is still running");
  }
  engine_.shutdown(true, false);
}

unsigned Pool::processes() const noexcept {
  return static_cast<unsigned>(engine_.max_workers());
}

std::vector<int> Pool::worker_pids() const {
  return engine_.worker_pids();
}

std::size_t Pool::default_chunksize(std::size_t n) const {
  const std::size_t d = 4 * processes();
  const std::size_t cs = n / d + (n % d != 0 ? 1 : 0);
  return cs == 0 ? 1 : cs;
}

}  // namespace concur::multiprocessing
