// concur/futures.hpp — Python's concurrent.futures: Future, wait, as_completed and the
// thread pool and the process pool.
#pragma once

#include "concur/futures/future.hpp"
#include "concur/futures/process_pool.hpp"
#include "concur/futures/thread_pool.hpp"
