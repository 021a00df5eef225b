// concur/detail/runtime.hpp — process-wide runtime hooks shared by the modules.
//
// * Exit hooks: Python runs, at interpreter exit, threading's join of non-daemon threads,
//   then multiprocessing's handling of children, then resource cleanup. concur reproduces
//   that order with one std::atexit handler (installed on first registration) that runs
//   the registered hooks by ascending priority. Hooks never run in a forked child that
//   leaves through _exit (concur's children always do).
// * Process identity: the name logging prints as {process} ("MainProcess" until the
//   multiprocessing module renames a child).
// * Fork handling is not here: see concur/detail/fork.hpp (one protocol for every fork).
//
// Thread-safety: every function here may be called from any thread.
#pragma once

#include <string>

namespace concur::detail {

enum ExitPriority : int {
  kExitJoinThreads = 100,     // threading: join non-daemon threads
  kExitChildren = 200,        // multiprocessing: terminate daemons, join the rest
  kExitResources = 300,       // shared memory segments and other leftovers
};

// Registers fn to run at normal process exit (return from main or exit()), ordered by
// priority (ties: registration order). Safe to call from static initializers.
void register_exit_hook(int priority, void (*fn)());

// Runs the registered exit hooks now, once; later calls (and the atexit handler) do nothing.
void run_exit_hooks();

// The current process's name as logging shows it: "MainProcess" unless renamed.
std::string current_process_name();
void set_current_process_name(std::string name);

}  // namespace concur::detail
