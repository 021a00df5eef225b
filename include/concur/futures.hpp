// concur/futures.hpp — Python's concurrent.futures: Future, wait, as_completed and the
// thread pool. (ProcessPoolExecutor: <concur/futures/process_pool.hpp>, a later issue.)
#pragma once

#include "concur/futures/future.hpp"
#include "concur/futures/thread_pool.hpp"
