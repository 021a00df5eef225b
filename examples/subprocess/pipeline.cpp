// A captured pipeline, `ls | sort -r`, built two ways:
//  1. two Popens, the first one's stdout pipe fed to the second one's stdin (what a shell
//     does), the parent keeping no copy of the read end;
//  2. the shell form: run({"ls | sort -r"}, {.shell = true}).
#include <concur/subprocess.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>

namespace sp = concur::subprocess;
namespace fs = std::filesystem;

int main() {
  // A small directory so the output is the same on every machine.
  const fs::path dir = fs::temp_directory_path() / "concur_pipeline_demo";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* name : {"banana", "apple", "cherry"}) std::ofstream(dir / name) << name;

  sp::Popen ls({"ls"}, {.out = sp::PIPE, .cwd = dir});
  sp::Popen sort({"sort", "-r"}, {.in = ls.stdout_fd(), .out = sp::PIPE});
  ls.close_stdout();  // sort holds the only read end: ls gets SIGPIPE if sort quits early
  auto [out, err] = sort.communicate();
  std::cout << "ls | sort -r (two Popens):\n" << out;
  std::cout << "returncodes: ls=" << ls.wait() << " sort=" << sort.wait() << "\n";

  auto cp = sp::run({"ls | sort -r | head -n 2"}, {.capture_output = true, .cwd = dir, .shell = true});
  std::cout << "ls | sort -r | head -n 2 (shell):\n" << cp.out;

  // check_output and getoutput, Python's shortcuts.
  std::cout << "check_output wc -l: " << sp::check_output({"sh", "-c", "ls | wc -l"}, {.cwd = dir});
  std::cout << "getoutput: " << sp::getoutput("echo $((6 * 7))") << "\n";
  fs::remove_all(dir);
}
