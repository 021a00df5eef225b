// concur/multiprocessing.hpp — Python's multiprocessing: processes (process.hpp); the
// shared-memory, connection, queue, synchronization, pool and manager parts join here.
// Users write `namespace mp = concur::multiprocessing;`.
#pragma once

#include "concur/errors.hpp"
#include "concur/multiprocessing/connection.hpp"
#include "concur/multiprocessing/process.hpp"
#include "concur/multiprocessing/shared_memory.hpp"
#include "concur/multiprocessing/sharedctypes.hpp"
#include "concur/multiprocessing/synchronize.hpp"
