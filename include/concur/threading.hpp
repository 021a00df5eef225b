// concur/threading.hpp — Python's threading module: Thread, Timer, Local and (from the sync
// parts) Lock, RLock, Condition, Semaphore, BoundedSemaphore, Event, Barrier.
#pragma once

#include "concur/errors.hpp"
#include "concur/threading/local.hpp"
#include "concur/threading/thread.hpp"
#include "concur/threading/timer.hpp"
