// The owner id of BasicRLock: the calling thread's kernel tid, cached per thread and
// forgotten in the child of ANY fork() (a pthread_atfork child handler), so a process
// forked with plain fork() never mistakes itself for its parent's thread when it shares an
// RLock with it in MAP_SHARED memory. (detail::current_tid() is refreshed only on concur's
// own fork paths.)
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "concur/detail/rlock.hpp"

namespace concur::detail {

namespace {
thread_local int tls_owner_id = 0;
void forget_owner_id_in_child() { tls_owner_id = 0; }  // runs in the only surviving thread
}  // namespace

int rlock_owner_id_slow() noexcept {
  static const bool registered = [] {
    ::pthread_atfork(nullptr, nullptr, forget_owner_id_in_child);
    return true;
  }();
  (void)registered;
  tls_owner_id = static_cast<int>(::syscall(SYS_gettid));
  return tls_owner_id;
}

int rlock_owner_id() noexcept { return tls_owner_id != 0 ? tls_owner_id : rlock_owner_id_slow(); }

}  // namespace concur::detail
