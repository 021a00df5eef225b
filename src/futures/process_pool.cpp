// futures::ProcessPoolExecutor: the executor face of the process-pool engine.
#include "concur/futures/process_pool.hpp"

#include "concur/multiprocessing/process.hpp"

namespace concur::futures {

namespace {
concur::detail::wp::EngineOptions engine_options(int max_workers, ExecutorOptions& o) {
  if (max_workers <= 0) throw ValueError("max_workers must be greater than 0");
  if (o.max_tasks_per_child && *o.max_tasks_per_child == 0)
    throw ValueError("max_tasks_per_child must be >= 1");
  return {std::move(o.initializer), o.max_tasks_per_child.value_or(0), "ProcessPoolExecutor"};
}
}  // namespace

int ProcessPoolExecutor::default_max_workers() {
  return static_cast<int>(multiprocessing::cpu_count());
}

ProcessPoolExecutor::ProcessPoolExecutor(int max_workers, ExecutorOptions options)
    : engine_(max_workers, engine_options(max_workers, options)) {}

ProcessPoolExecutor::ProcessPoolExecutor(ExecutorOptions options)
    : ProcessPoolExecutor(default_max_workers(), std::move(options)) {}

ProcessPoolExecutor::~ProcessPoolExecutor() = default;  // the engine: shutdown(true)

void ProcessPoolExecutor::shutdown(bool wait, bool cancel_futures) {
  engine_.shutdown(wait, cancel_futures);
}

int ProcessPoolExecutor::max_workers() const noexcept {
  return engine_.max_workers();
}
std::vector<int> ProcessPoolExecutor::worker_pids() const {
  return engine_.worker_pids();
}
std::size_t ProcessPoolExecutor::replaced_workers() const {
  return engine_.replaced_workers();
}

}  // namespace concur::futures
