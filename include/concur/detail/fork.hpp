// concur/detail/fork.hpp — the one fork protocol of the library.
//
// concur makes exactly ONE pthread_atfork registration (at static-init time, in
// src/detail/fork.cpp). Every module that has process-wide state registers a ranked
// ForkHandler here instead of calling pthread_atfork itself, so the order in which module
// locks are taken around fork() is written down in one place (below) instead of depending
// on which module's registration glibc happened to see first. The protocol runs for every
// fork() made through glibc — concur's own (Process::start) and the user's plain fork().
//
// * prepare: in the parent, in ascending rank order, before the kernel copies the process.
//   A handler takes its module's locks and keeps them: no module lock is ever re-created
//   in the child (placement new over a mutex another thread held is undefined and hides
//   the state from ThreadSanitizer).
// * parent: in the parent after fork, in descending rank order: releases the locks.
// * child: in the child after fork (only the forking thread exists there), in descending
//   rank order: repairs the module's state for a process of one thread, then releases the
//   locks taken in prepare. Before any module's child handler runs, the thread-id and pid
//   caches below are already refreshed.
//
// Lock order (== prepare order). A module's lock may be taken while a module of LOWER rank
// holds its own, never the other way round (prepare takes them in this same order, so a
// thread that is mid-nesting when another thread forks never waits for a lock the prepare
// step holds while holding one the prepare step still needs):
//
//   rank   module            locks                                 nests inside it (examples)
//   100    kPools            pool registry, each pool's threads,   Thread::start (threading)
//                            consumer and sleep locks              from start_worker
//   200    kProcess          multiprocessing's process state       current_process_name
//                                                                  (runtime), the first
//                                                                  get_logger (logging)
//   300    kLogging          logger map / patterns                 —
//   400    kThreading        excepthook, thread registry, every    —
//                            registered ThreadState::mu
//   500    kSharedMemory     SharedMemory tracker                  register_exit_hook (runtime)
//   600    kSubprocess       abandoned Popen children              —
//   700    kArena            shared arena allocator                —
//   800    kRobust           (no lock: per-thread robust list)     —
//   900    kRuntime          exit hooks, process name              — (innermost)
//
// (The historic deadlock of 2c285fe: the runtime's prepare handler ran first, so it held the
// runtime mutex while waiting for the process lock, while Process::start held the process
// lock and asked for the runtime mutex. With the ranks above prepare takes process → runtime,
// the same order normal code nests them.)
//
// Rules for handlers: prepare may block only on locks of its own module (whose holders
// never wait for a lock of a higher rank while holding them); parent/child never block and
// never throw; a lock held across a blocking wait (a join, a futex wait) must not be held
// across fork — such locks are listed in docs/design.md with what the child does instead.
//
// Thread-safety: register_fork_handler may be called from any thread (normally from static
// initializers); the queries are lock-free.
#pragma once

#include <sys/types.h>

namespace concur::detail {

enum class ForkRank : int {
  kPools = 100,
  kProcess = 200,
  kLogging = 300,
  kThreading = 400,
  kSharedMemory = 500,
  kSubprocess = 600,
  kArena = 700,
  kRobust = 800,
  kRuntime = 900,
};

struct ForkHandler {
  void (*prepare)() noexcept = nullptr;
  void (*parent)() noexcept = nullptr;
  void (*child)() noexcept = nullptr;
};

// Adds a handler (any member may be null). Handlers of the same rank run in registration
// order for prepare, in reverse for parent/child. At most 32 handlers; a registration
// beyond that aborts (a library bug, not a runtime condition).
void register_fork_handler(ForkRank rank, ForkHandler handler) noexcept;

// Kernel thread id (gettid) of the calling thread: one TLS read after the first call;
// refreshed in the child of every fork before any module's child handler runs.
int this_thread_tid() noexcept;

// getpid(), cached; refreshed in the child of every fork.
pid_t this_process_pid() noexcept;

// A process-local number of the calling thread, never 0 and never reused within the
// process. Unlike the tid it SURVIVES fork for the forking thread (the child's only thread
// keeps the number it had in the parent), which is what Python's thread identity does for
// an owner check (threading.RLock held across fork is owned by the child's main thread).
// Never shared between processes: do not store it in memory another process reads.
unsigned this_thread_serial() noexcept;

// How many forks this process has gone through (incremented in prepare, before any
// handler, so parent and child both see the new value). A value captured before a fork
// differs from the current one after it, in both processes.
unsigned long fork_epoch() noexcept;

// The three steps of the protocol, for a launcher that creates a process without glibc's
// fork() (a raw clone3 with CLONE_PIDFD): call fork_prepare() before the clone, then
// fork_parent() in the parent and fork_child() first thing in the child. fork() itself
// runs them through the atfork registration; never call them around a fork().
void fork_prepare() noexcept;
void fork_parent() noexcept;
void fork_child() noexcept;

}  // namespace concur::detail
