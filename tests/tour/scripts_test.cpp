// The tour and the benchmark report are scripts (scripts/demo.sh, scripts/versus.sh,
// bench/report.py, scripts/gen_guide_scenarios.py); these tests run them on scratch
// directories with stub programs and synthetic results, and check what a user relies on:
// every scenario names a program that exists (or a placeholder of another branch), a
// missing program prints "(not built yet)" and the tour still exits 0, the live table is
// skipped with a note without python3, and the report computes its ratios and keeps the
// hand-written part of docs/benchmarks.md.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <concur/subprocess.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
namespace sp = concur::subprocess;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

const fs::path kRoot = fs::path(CONCUR_TEST_SOURCE_DIR).parent_path();

// The programs of the scenarios that other branches bring (pool, manager).
const std::set<std::string> kPlaceholders = {"pool_square_cube", "pool_gil", "manager_clock",
                                             "manager_remote"};

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/concur_tour_XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    if (d == nullptr) throw std::runtime_error("mkdtemp failed");
    path = d;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

void write_file(const fs::path& p, const std::string& text, bool executable = false) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
  if (executable) fs::permissions(p, fs::perms::owner_all, fs::perm_options::add);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs a command with PYTHON pointing at `python` (or the real python3), stdout+stderr.
sp::CompletedProcess run_script(std::vector<std::string> args, const std::string& python,
                                std::vector<std::string> extra_env = {}) {
  std::vector<std::string> cmd{"env", "PYTHON=" + python};
  for (auto& e : extra_env) cmd.push_back(e);
  for (auto& a : args) cmd.push_back(a);
  return sp::run(cmd, {.out = sp::PIPE, .err = sp::STDOUT, .timeout = std::chrono::seconds(50)});
}

// One JSON line as bench/python/_common.py prints it.
std::string peer_line(const std::string& bench, const std::string& unit, double median) {
  return "{\"bench\": \"" + bench + "\", \"unit\": \"" + unit +
         "\", \"n\": 1, \"median\": " + std::to_string(median) + "}\n";
}

bool have_python() {
  return sp::call({"sh", "-c", "command -v python3 >/dev/null"}) == 0;
}

// The scenario table of scripts/demo.sh: (heading, program) per entry.
std::vector<std::pair<std::string, std::string>> scenario_table() {
  const std::string text = read_file(kRoot / "scripts" / "demo.sh");
  const auto begin = text.find("cat <<'EOF'\n");
  const auto end = text.find("\nEOF\n", begin);
  EXPECT_NE(begin, std::string::npos);
  std::istringstream table(text.substr(begin + 12, end - begin - 12));
  std::vector<std::pair<std::string, std::string>> out;
  const std::regex entry(R"(^\s*(.*?)\s*\|\s*(.*?)\s*\|\s*(\S+).*$)");
  for (std::string line; std::getline(table, line);) {
    if (line.rfind("## ", 0) == 0) continue;
    std::smatch m;
    EXPECT_TRUE(std::regex_match(line, m, entry)) << "malformed scenario line: " << line;
    if (m.size() == 4) out.emplace_back(m[1], m[3]);
  }
  return out;
}

TEST(TourScripts, EveryScenarioNamesAnExampleThatExistsOrAnotherBranchsPlaceholder) {
  const auto table = scenario_table();
  ASSERT_GE(table.size(), 40u);  // the notes have more than forty scenarios
  std::set<std::string> seen;
  for (const auto& [heading, prog] : table) {
    bool found = false;
    for (const auto& dir : fs::directory_iterator(kRoot / "examples"))
      found = found || fs::exists(dir.path() / (prog + ".cpp"));
    EXPECT_TRUE(found || kPlaceholders.count(prog))
        << heading << ": no examples/*/" << prog << ".cpp";
    seen.insert(prog);
  }
  // Spot checks of scenarios the issue lists by name.
  for (const char* p :
       {"thread_lock", "process_exit", "lost_updates", "counter_get_lock", "counter_fetch_add",
        "clock_queue", "clock_pipe", "timeout", "process_info", "manager_clock", "pool_gil"})
    EXPECT_TRUE(seen.count(p)) << p;
}

TEST(TourScripts, DemoRunsWhatIsBuiltMarksTheRestAndExitsZero) {
  TempDir tmp;
  const fs::path ex = tmp.path / "examples";
  write_file(ex / "threading" / "thread_basic", "#!/bin/sh\necho 'name: thread 0, argument: 0'\n",
             true);
  write_file(ex / "multiprocessing" / "daemon_process", "#!/bin/sh\necho \"args:[$*]\"\n", true);
  write_file(ex / "subprocess" / "echo", "#!/bin/sh\necho failing; exit 3\n", true);
  const auto cp = run_script({"bash", (kRoot / "scripts" / "demo.sh").string(), tmp.path.string()},
                             "/nonexistent/python3");
  EXPECT_EQ(cp.returncode, 0) << cp.out;
  const std::string& out = cp.out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(======== \[1/\d+\] Threads from a function)")))
      << out;
  EXPECT_THAT(out, HasSubstr("from note 000 \"python (concurrency)\""));
  EXPECT_THAT(out, HasSubstr("name: thread 0, argument: 0"));
  EXPECT_THAT(out, HasSubstr("args:[]"));      // daemon_process
  EXPECT_THAT(out, HasSubstr("args:[join]"));  // daemon_process join: the arguments reach it
  EXPECT_THAT(out, HasSubstr("(exit status 3)"));
  EXPECT_THAT(out, HasSubstr("(not built yet)"));
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(demo: 4 of \d+ scenarios ran)"))) << out;
  EXPECT_THAT(out, HasSubstr("non-zero exit: echo"));
  EXPECT_THAT(out, HasSubstr("manager_clock"));  // listed among the programs not built yet
  EXPECT_THAT(out, HasSubstr("concur vs Python, measured now"));
  EXPECT_THAT(out, HasSubstr("python3 is not installed: the comparison with Python is skipped"));
}

TEST(TourScripts, DemoWithoutABuildDirectoryFailsClearly) {
  TempDir tmp;
  const auto cp = run_script(
      {"bash", (kRoot / "scripts" / "demo.sh").string(), (tmp.path / "nothing").string()},
      "python3");
  EXPECT_EQ(cp.returncode, 1);
  EXPECT_THAT(cp.out, HasSubstr("no examples in"));
}

TEST(TourScripts, LiveTableIsSkippedWithANoteWithoutPython) {
  TempDir tmp;
  write_file(tmp.path / "examples" / "tour" / "versus", "#!/bin/sh\necho 1000\n", true);
  const auto cp =
      run_script({"bash", (kRoot / "scripts" / "versus.sh").string(), tmp.path.string()},
                 "/nonexistent/python3");
  EXPECT_EQ(cp.returncode, 0);
  EXPECT_THAT(cp.out, HasSubstr("python3 is not installed: the comparison with Python is skipped"));
  EXPECT_THAT(cp.out, Not(HasSubstr("| concur")));
}

TEST(TourScripts, LiveTableShowsRatiosAndProgress) {
  if (!have_python()) GTEST_SKIP() << "python3 not installed";
  TempDir tmp;
  // A stub concur side (2000 operations/s for every workload) and a stub Python (500/s).
  write_file(tmp.path / "examples" / "tour" / "versus", "#!/bin/sh\necho 2000\n", true);
  write_file(tmp.path / "py",
             "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'Python 3.x'; exit; }\necho 500\n", true);
  const auto cp =
      run_script({"bash", (kRoot / "scripts" / "versus.sh").string(), tmp.path.string()},
                 (tmp.path / "py").string());
  EXPECT_EQ(cp.returncode, 0) << cp.out;
  EXPECT_THAT(cp.out, HasSubstr("[1/6] Lock acquire + release"));
  EXPECT_THAT(cp.out, HasSubstr("[6/6] multiprocessing.Queue"));
  EXPECT_THAT(cp.out, HasSubstr("2 k/s"));
  EXPECT_THAT(cp.out, HasSubstr("4.0x"));
}

TEST(TourScripts, ReportComputesRatiosAndKeepsTheHandWrittenSections) {
  if (!have_python()) GTEST_SKIP() << "python3 not installed";
  TempDir tmp;
  const fs::path res = tmp.path / "results", docs = tmp.path / "docs";
  // Google Benchmark medians (time and rate forms) and the Python peers' JSON lines.
  write_file(res / "lock_bench.json", R"J({"benchmarks": [
    {"name": "BM_Lock_acquire_release_median", "run_name": "BM_Lock_acquire_release",
     "run_type": "aggregate", "aggregate_name": "median", "real_time": 10.0, "time_unit": "ns"},
    {"name": "BM_limit_pthread_mutex_median", "run_name": "BM_limit_pthread_mutex",
     "run_type": "aggregate", "aggregate_name": "median", "real_time": 12.5, "time_unit": "ns"}]})J");
  write_file(res / "queue_bench.json", R"J({"benchmarks": [
    {"name": "BM_concur_Queue/0/real_time", "run_name": "BM_concur_Queue/0/real_time",
     "run_type": "iteration", "real_time": 40.0, "time_unit": "ms", "items_per_second": 1.0e7}]})J");
  write_file(res / "process_bench.json", R"J({"benchmarks": [
    {"name": "BM_concur_Process_start_join/64/real_time_median",
     "run_name": "BM_concur_Process_start_join/64/real_time", "run_type": "aggregate",
     "aggregate_name": "median", "real_time": 2000.0, "time_unit": "us"}]})J");
  write_file(res / "python_b07_locks.txt",
             peer_line("threading.Lock acquire();release() (1M)", "ns/pair", 80.0));
  write_file(res / "python_b06_queue_threads.txt",
             peer_line("queue.Queue() 2 threads 500k put/get", "msgs/s (put+get pairs)", 250000));
  write_file(res / "python_b14_growth.txt",
             peer_line("growth Process start+join rss/64", "us/proc", 9000));
  write_file(res / "run.json", R"J({"machine": "test box", "date": "today"})J");
  write_file(docs / "benchmarks.md",
             "# concur — benchmarks\n\nintro\n\n## A hand-written section\nkeep me\n");
  for (int pass = 0; pass < 2; ++pass) {  // the second run replaces the first one's block
    const auto cp = run_script({"python3", (kRoot / "bench" / "report.py").string(), res.string()},
                               "python3", {"BENCH_DOCS=" + docs.string()});
    ASSERT_EQ(cp.returncode, 0) << cp.out;
  }
  const std::string md = read_file(docs / "benchmarks.md");
  const auto begin = md.find("<!-- report:begin -->"), end = md.find("<!-- report:end -->");
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(md.find("<!-- report:begin -->", begin + 1), std::string::npos) << "block doubled";
  EXPECT_LT(md.find("# concur — benchmarks"), begin);
  EXPECT_GT(md.find("## A hand-written section\nkeep me"), end);
  const std::string block = md.substr(begin, end - begin);
  // Lock: 10 ns vs Python 80 ns = 8x; vs the limit's 12.5 ns = 1.25x.
  EXPECT_THAT(block, HasSubstr("| Lock acquire + release, uncontended | 10 ns | 80 ns | 12.5 ns | "
                               "— | 8.00× | 1.25× | — |"));
  // Queue: 10 M/s vs 250 k/s = 40x (rates: higher is better).
  EXPECT_THAT(block, HasSubstr("| 10 M msgs/s | 250 k msgs/s |"));
  EXPECT_THAT(block, HasSubstr("40×"));
  // A series point: Process start at 64 MiB, 2000 us vs Python's 9000 us = 4.5x.
  EXPECT_THAT(block, HasSubstr("| 64 | 2000 us | 9000 us | — | 4.50× | — |"));
  EXPECT_THAT(block, HasSubstr("test box"));
  if (sp::call({"sh", "-c", "command -v gnuplot >/dev/null"}) == 0) {
    EXPECT_GT(fs::file_size(docs / "bench" / "speedup.svg"), 1000u);
    EXPECT_GT(fs::file_size(docs / "bench" / "speedup.png"), 1000u);
  }
}

// The guide's scenario part embeds the notes' Python and the examples' code: it must be
// regenerated whenever an example or the scenario table changes.
TEST(TourScripts, GuideScenarioPartIsUpToDateWithTheExamples) {
  if (!have_python()) GTEST_SKIP() << "python3 not installed";
  if (!fs::exists(kRoot / ".." / "shared" / "seeds") && !fs::exists("/work/shared/seeds"))
    GTEST_SKIP() << "the notes (../shared/seeds) are not next to this tree";
  const auto cp = run_script(
      {"python3", (kRoot / "scripts" / "gen_guide_scenarios.py").string(), "--check"}, "python3");
  EXPECT_EQ(cp.returncode, 0) << cp.out;
}

}  // namespace
