// Beyond Python (cpython#88304): a process killed while holding a multiprocessing Lock
// leaves it locked forever in Python. concur's locks are robust: the kernel hands the lock
// to the next acquirer, who learns through owner_died() that the protected data may be
// half-updated, repairs it and calls consistent().
#include <chrono>
#include <iostream>
#include <mutex>
#include <thread>

#include "concur/multiprocessing.hpp"

namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;

int main() {
  mp::Value<int> balance(100);
  mp::Event holding;

  auto transfer = [](mp::Value<int> v, mp::Event ev) {
    v.get_lock().acquire();
    v.set(v.value() - 30);  // first half of an update...
    ev.set();
    std::this_thread::sleep_for(10s);  // ...killed before the second half
    v.set(v.value() + 30);
    v.get_lock().release();
  };
  mp::Process worker(transfer, balance, holding);
  worker.start();
  (void)holding.wait(5s);
  worker.kill();
  worker.join();
  std::cout << "worker killed while holding the lock, exitcode " << *worker.exitcode() << "\n";

  std::lock_guard guard(balance.get_lock());  // Python would hang here forever
  if (balance.get_lock().owner_died()) {
    std::cout << "owner died; balance is " << balance.value() << ", repairing\n";
    balance.set(100);
    balance.get_lock().consistent();
  }
  std::cout << "balance " << balance.value() << ", owner_died() "
            << std::boolalpha << balance.get_lock().owner_died() << "\n";
}
