// concur/multiprocessing.hpp — Python's multiprocessing: processes (process.hpp), queues
// (queues.hpp); the shared-memory, connection, synchronization, pool and manager parts join here.
// Users write `namespace mp = concur::multiprocessing;`.
#pragma once

#include "concur/errors.hpp"
#include "concur/multiprocessing/connection.hpp"
#include "concur/multiprocessing/managers.hpp"
#include "concur/multiprocessing/pool.hpp"
#include "concur/multiprocessing/process.hpp"
#include "concur/multiprocessing/queues.hpp"
#include "concur/multiprocessing/shared_memory.hpp"
#include "concur/multiprocessing/sharedctypes.hpp"
#include "concur/multiprocessing/synchronize.hpp"
