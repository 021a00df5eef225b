// The notes' three queue kinds (seeds/004): FIFO Queue, LIFO Queue (a stack) and
// PriorityQueue (smallest first), each filled with 0..4 next to a plain list.
//
// Python:
//   q = queue.Queue()            # / queue.LifoQueue()
//   for i in range(5): q.put(i); ql.append(i)
//   while not q.empty(): print(q.get())
//   print(ql)
#include <concur/queue.hpp>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace queue = concur::queue;

template <class Q>
void show(const char* title, Q& q) {
  std::vector<int> ql;
  for (int i = 0; i < 5; ++i) {
    q.put(i);
    ql.push_back(i);
  }
  std::cout << "## " << title << "\n";
  while (!q.empty()) std::cout << q.get() << "\n";
  std::cout << "[";
  for (std::size_t i = 0; i < ql.size(); ++i) std::cout << (i ? ", " : "") << ql[i];
  std::cout << "]\n";
}

int main() {
  queue::Queue<int> fifo;
  show("Queue (FIFO)", fifo);
  queue::LifoQueue<int> lifo;
  show("LifoQueue (LIFO) = stack", lifo);

  // PriorityQueue: put in any order, get the smallest first. (priority, item) pairs are the
  // Python idiom for tagging work with a priority.
  queue::PriorityQueue<std::pair<int, std::string>> pq;
  pq.put({3, "write report"});
  pq.put({1, "fix the build"});
  pq.put({2, "review patch"});
  std::cout << "## PriorityQueue (smallest first)\n";
  while (!pq.empty()) {
    auto [prio, task] = pq.get();
    std::cout << prio << " " << task << "\n";
  }
}
