// concur/concur.hpp — everything concur offers, in one include.
#pragma once

#include "concur/errors.hpp"
#include "concur/futures.hpp"
#include "concur/logging.hpp"
#include "concur/multiprocessing.hpp"
#include "concur/queue.hpp"
#include "concur/subprocess.hpp"
#include "concur/threading.hpp"
