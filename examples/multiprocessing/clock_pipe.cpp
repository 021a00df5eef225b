// Seed 001, §4 "Pipe": one process counts and sends the count through a Pipe, another
// receives and prints it. recv() blocks until something arrives, so the printer needs no
// condition of its own (the notes' remark) — and when the counter's end is closed, recv()
// throws EOFError, which ends the printer.
//
//   def count_Time(int_Time_counter, conn):
//       while (True):
//           int_Time_counter = int_Time_counter + 1
//           conn.send(int_Time_counter)
//           print("Clock activated ...")
//           time.sleep(1)
//   def print_Time(conn):
//       while (True):
//           int_Time_counter = conn.recv()
//           print("Time: " + str(int_Time_counter))
//
// The notes tick once a second forever; here a tick is 50 ms and the counter stops after
// 10. It prints before it sends, so the two processes' lines alternate in the notes' order.
#include <chrono>
#include <iostream>
#include <thread>

#include "concur/multiprocessing.hpp"

namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;

int main() {
  int int_time_counter = 0;
  auto [conn_sender, conn_receiver] = mp::Pipe();

  auto count_time = [&conn_sender](int counter) {
    for (int tick = 0; tick < 10; ++tick) {
      counter = counter + 1;
      std::cout << "Clock activated ...\n" << std::flush;
      conn_sender.send(counter);
      std::this_thread::sleep_for(50ms);
    }
  };  // the child ends: its end of the pipe closes
  auto print_time = [&conn_sender, &conn_receiver] {
    // After fork every process holds both ends. The printer closes its copy of the sending
    // end, or it would wait forever for a message from itself.
    conn_sender.close();
    try {
      while (true) {
        const int counter = conn_receiver.recv<int>();
        std::cout << "Time: " << counter << "\n" << std::flush;
      }
    } catch (const concur::EOFError&) {
      std::cout << "(the clock stopped: EOFError)\n";
    }
  };

  mp::Process process_count_time(count_time, int_time_counter);
  mp::Process process_print_time(print_time);
  process_count_time.start();
  process_print_time.start();
  // The parent holds both ends too (as in Python); close them so that the printer sees
  // EOF once the counter is gone.
  conn_sender.close();
  conn_receiver.close();
  process_count_time.join();
  process_print_time.join();
}
