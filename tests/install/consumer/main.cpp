// A program outside the project, built against the installed package only: it uses the
// public names of DESIGN.md and prints "consumer ok" when every check held.
#include <concur/concur.hpp>

#include <chrono>
#include <cstdio>
#include <vector>

// concur::queue and concur::futures through DESIGN.md's names (issue #3).
static bool queue_and_futures_ok() {
  using namespace std::chrono_literals;
  concur::queue::Queue<int> q(2);
  q.put(1);
  q.put_nowait(2);
  if (!q.full() || q.try_put(3)) return false;
  if (q.get() != 1 || q.get(10ms) != 2 || q.try_get()) return false;
  q.task_done();
  q.task_done();
  q.join();
  concur::queue::PriorityQueue<int> pq;
  pq.put(3);
  pq.put(1);
  if (pq.get() != 1) return false;
  concur::futures::ThreadPoolExecutor ex(2, {.thread_name_prefix = "consumer"});
  std::vector<concur::futures::Future<int>> fs;
  for (int i = 0; i < 4; ++i) fs.push_back(ex.submit([](int x) { return x * x; }, i));
  auto r = concur::futures::wait(fs, std::nullopt, concur::futures::ReturnWhen::ALL_COMPLETED);
  int sum = 0;
  for (auto& f : concur::futures::as_completed(fs, 5s)) sum += f.result();
  for (int v : ex.map([](int x) { return x; }, std::vector<int>{1, 2}, {.timeout = 5s})) sum += v;
  ex.shutdown(true, false);
  return r.done.size() == 4 && sum == 14 + 3;
}

int main() {
  if (!queue_and_futures_ok()) {
    std::printf("queue/futures check failed\n");
    return 1;
  }
  try {
    throw concur::queue::Empty();
  } catch (const concur::Error& e) {
    std::printf("caught %s\n", e.what());
  }
  std::printf("consumer ok\n");
  return 0;
}
