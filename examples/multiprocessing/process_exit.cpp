// Checking, terminating and reading the exit codes of processes (the notes' "Process Exit":
// good_job returns, fail_job calls sys.exit(1), kill_job runs too long and is terminated).
//
// Sleeps scaled down 10x (5 s -> 0.5 s, 10 s -> 1 s, 0.3 s -> 0.03 s). The notes read
// kill_job's exitcode right after terminate() and got None; here we join it first, so the
// code is deterministic: -15 (SIGTERM).
#include <unistd.h>

#include <chrono>
#include <concur/multiprocessing.hpp>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;

const char* py(bool b) { return b ? "True" : "False"; }

std::string py(std::optional<int> code) { return code ? std::to_string(*code) : "None"; }

void say(const std::string& s) { std::cout << s + "\n" << std::flush; }

void start_line() {
  auto p = mp::current_process();
  say("Start name: " + p.name() + ", pid:" + std::to_string(p.pid()));
}
void exit_line() {
  auto p = mp::current_process();
  say("Exit name:" + p.name() + ", pid:" + std::to_string(p.pid()));
}

void good_job() {
  start_line();
  std::this_thread::sleep_for(500ms);
  exit_line();
}

void fail_job() {
  start_line();
  std::this_thread::sleep_for(500ms);
  exit_line();
  mp::exit(1);  // sys.exit(1)
}

void kill_job() {
  start_line();
  std::this_thread::sleep_for(1000ms);
  exit_line();
}

int main() {
  std::vector<std::unique_ptr<mp::Process>> processes;
  using Job = std::pair<const char*, void (*)()>;
  for (auto [name, fn] : {Job{"good_job", good_job}, Job{"fail_job", fail_job}, Job{"kill_job", kill_job}}) {
    auto& p = *processes.emplace_back(std::make_unique<mp::Process>(mp::ProcessOptions{.name = name}, fn));
    std::ostringstream line;
    line << "Process check : " << p << ", " << py(p.is_alive());
    say(line.str());
    p.start();
    std::this_thread::sleep_for(30ms);
  }
  for (auto& p : processes) {
    std::ostringstream line;
    line << "process check : " << *p << " " << py(p->is_alive());
    say(line.str());
  }
  std::this_thread::sleep_for(600ms);
  for (auto& p : processes) {
    std::ostringstream line;
    line << "Process check : " << *p << " " << py(p->is_alive());
    say(line.str());
    if (p->is_alive()) {
      std::ostringstream t;
      t << "Terminate process : " << *p;
      say(t.str());
      p->terminate();
      p->join();
    }
  }
  for (auto& p : processes) say("Process name: " + p->name() + ", exit code : " + py(p->exitcode()));
}
