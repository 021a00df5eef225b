// concur/threading.hpp — Python's threading module in one include: Thread (and
// current_thread, main_thread, active_count, enumerate, get_ident, get_native_id,
// excepthook), Timer, Local<T>, Lock, RLock, Condition, Semaphore, BoundedSemaphore, Event,
// Barrier.
#pragma once

#include "concur/errors.hpp"
#include "concur/threading/barrier.hpp"
#include "concur/threading/condition.hpp"
#include "concur/threading/event.hpp"
#include "concur/threading/local.hpp"
#include "concur/threading/lock.hpp"
#include "concur/threading/semaphore.hpp"
#include "concur/threading/thread.hpp"
#include "concur/threading/timer.hpp"
