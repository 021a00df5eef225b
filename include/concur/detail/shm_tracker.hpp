// concur/detail/shm_tracker.hpp — the program's resource tracker for named shared memory.
//
// Python's multiprocessing.resource_tracker, for POSIX shared-memory names: one small
// process per program that unlinks every registered name not unregistered by the time the
// program is gone — also when the top process was killed (SIGTERM, SIGKILL), which no exit
// hook can do. "The program" is the top process and every process forked from it: they
// share one connection to the tracker (a SOCK_SEQPACKET socketpair end inherited by fork),
// and the tracker learns the program is gone when the last holder has closed it (recv()
// returns 0). So a segment a child creates belongs to the top process's tracker and
// outlives the child, as in Python.
//
// Starting: at the first registration in a process that has no connection (the top
// process, or a process forked before any tracker existed — it is then the top of its own
// program), and before the first Process::start() of a program that contains SharedMemory
// (shm_tracker_prefork, so children inherit the connection instead of starting their own).
// The tracker is this program itself, exec'd through the spawn layer from /proc/self/exe
// with argv[0] "concur-shm-tracker" and CONCUR_SHM_TRACKER=1 in its environment: a
// priority constructor in this library sees that before main() and runs the tracker loop
// instead (a fresh image: no inherited threads, locks or memory; nothing pinned). It runs
// in its own process group (a terminal's Ctrl-C or a group kill spares it), ignores SIGINT,
// SIGTERM, SIGHUP and SIGPIPE, and inherits the top process's stderr for its warning.
// Messages: one send() each, [op 'R'|'U'][name], at most kShmTrackerMaxName bytes of name:
// atomic, never interleaved between processes. Counted: a name registered twice needs two
// unregistrations.
//
// Ending: when the connection's last holder closes it, the tracker unlinks the leftover
// names with a warning on stderr ("... leaked shared_memory objects to clean up at
// shutdown: ['/psm_1a2b3c4d']") and exits. The top process, at normal exit (exit hook
// kExitResources), closes its end and reaps the tracker if it ends within 2 s (it does
// unless some forked process still holds the connection); if the top process is killed
// the tracker is re-parented to init, which reaps it. No zombie either way.
//
// Fallback: if the tracker cannot be started (no /proc, /proc/self/exe not this program —
// e.g. run through ld.so), names are tracked in-process and unlinked at the normal exit of
// the process that registered them, with the same warning.
//
// Thread-safety: all functions may be called from any thread, and from a forked child of
// a multi-threaded parent (the start lock is fork-aware: a child takes over a lock its
// parent's other thread held at fork).
#pragma once

#include <atomic>
#include <cstddef>
#include <string_view>

namespace concur::detail {

inline constexpr std::size_t kShmTrackerMaxName = 1024;

// Registers / unregisters a shared-memory name (as passed to shm_open, with the leading
// '/'). ValueError if the name is empty, longer than kShmTrackerMaxName or holds NUL.
void shm_tracker_register(std::string_view name);
void shm_tracker_unregister(std::string_view name);

// Starts the tracker now if this process has no connection yet (no-op otherwise).
void shm_tracker_ensure_running();

// Set (to shm_tracker_ensure_running) by the tracker's translation unit when it is part of
// the program; Process::start() calls it before forking, so programs without SharedMemory
// never start a tracker. An inline variable: it does not link the tracker in.
inline std::atomic<void (*)()> shm_tracker_prefork{nullptr};

// The tracker's pid in the process that started it, or -1 (for tests and diagnostics).
int shm_tracker_pid() noexcept;

}  // namespace concur::detail
