#!/usr/bin/env bash
# The tour (`make demo`): every scenario of the Python notes (../shared/seeds/), in the
# order of the notes' own topics, each under a heading that names the scenario and the note
# it comes from, then a live table of concur against Python's standard library.
#
#   bash scripts/demo.sh [build-dir]        (default build/default; examples must be built)
#
# The scenarios are the one-line entries of the table below: "heading | note | program
# [args]". A program is found by name under <build>/examples/*/; an entry whose program is
# not built (yet) prints "(not built yet)" and the tour goes on. Programs run with line-
# buffered stdout/stderr (stdbuf), so every line reaches the terminal or pipe in one write:
# lines of concurrent threads and processes never interleave mid-line. Always exits 0 unless
# the build directory is missing.
set -uo pipefail
build=${1:-build/default}
root=$(cd "$(dirname "$0")/.." && pwd)
case $build in /*) ;; *) build=$root/$build ;; esac
if [ ! -d "$build/examples" ]; then
  echo "demo: no examples in $build (build first: make demo)" >&2
  exit 1
fi

# The notes, by their number in ../shared/seeds/ (000_..., 001_..., ...):
#   000 "python (concurrency)" (2019-07-26)     001 "Thread management in Python" (2021-12-17)
#   002 "멀티 프로세스와 멀티 스레드"               003 "python (multiprocessing)" (2019-07-30)
#   004 "프로세스 / threading 모듈" (notebook)
# A line starting with "## " is a part title.
scenarios() {
  cat <<'EOF'
## threading: threads, logging, daemons, synchronization (note 000)
Threads from a function (target, name, args)            | 000 Thread 구현                         | thread_basic
Threads from a Thread subclass (run())                   | 000 Thread 구현 (class)                 | thread_subclass
Thread logging (name: %(threadName)s)                    | 000 Thread Logging                      | thread_logging
Daemon thread, main does not wait                        | 000 Daemon Thread                       | daemon_thread
Daemon thread with join()                                | 000 Daemon Thread (join)                | daemon_thread_join
Event between two threads (wait(1), set)                 | 000 Thread Event                        | thread_event
Lock: blocking and non-blocking acquire                  | 000 Thread Lock                         | thread_lock
RLock: re-entrant lock (zero / one / reverse)            | 000 Thread Reentrant Lock               | thread_rlock
Condition: notify(1), then notify_all()                  | 000 Thread Condition                    | thread_condition
Semaphore(3) guarding a resource pool                    | 000 Lock, Mutex, Semaphore              | thread_semaphore
Thread-local data (threading.local)                      | 000 Thread Local Data                   | thread_local_data
A countdown thread                                       | 002 Thread                              | countdown
## queue: worker threads and queue kinds (notes 002, 004)
Worker pool over a Queue: task_done() and join()         | 002 6.1.2 threading 모듈; 004           | worker_pool
FIFO Queue, LIFO Queue (a stack), PriorityQueue          | 002 Queue (FIFO), Queue(LIFO), Priority | queue_kinds
A daemon worker: thirty task requests, q.join()          | 002 Priority Queue (the worker cell)    | daemon_worker
## I/O-bound and CPU-bound work: threads and pools (notes 002, 000)
Square and cube, one after the other, then in 2 threads  | 002 제곱과 세제곱 구하는 함수           | square_cube
ThreadPoolExecutor: submit, map, as_completed            | 000 GIL (concurrent.futures)            | thread_pool
The GIL lesson: a CPU-bound loop over 2 threads          | 000 GIL; coarse-grained lock            | gil_lesson
Square and cube on a process pool                        | 002 제곱과 세제곱; 000 ProcessPoolExecutor | pool_square_cube
CPU-bound work: threads vs a process pool (the GIL)      | 000 GIL: ProcessPoolExecutor 권장       | pool_gil
The same CPU-bound loop on MpiPoolExecutor, 3 ranks      | 000 GIL (scale-out: MPI ranks)          | cpu_bound
## multiprocessing: processes (notes 003, 000, 002)
Process ids: os.getpid, getuid, getgid, getcwd           | 002 process                             | process_info
Processes with names and pids                            | 003 Multiprocessing 구현                | process_basic
A Process subclass (run())                               | 003 Multiprocessing 구현 (class)        | process_subclass
Multiprocessing logging (log_to_stderr, DEBUG)           | 003 Multiprocessing의 로깅              | process_logging
Daemon process, main does not wait                       | 003 Daemon Process; 000                 | daemon_process
Daemon process with join()                               | 003 Daemon Process (join); 000          | daemon_process join
Process exit codes: good_job, fail_job, kill_job         | 003 Process Exit; 000                   | process_exit
## shared memory: Value and its lost updates (note 001)
A shared Value clock: Clock activated / Time: N          | 001 1-1 Shared Memory 기본 사용법       | shared_counter
Ten counting processes: the lost updates                 | 001 1-2 한계                            | lost_updates
Fix 1: hold the Value's lock (get_lock())                | 001 1-3 결론 (fix with a lock)          | counter_get_lock
Fix 2: one atomic fetch_add per increment                | 001 1-3 결론 (fix without a lock)       | counter_fetch_add
A lock holder killed mid-update: the robust lock         | 001 1-2 한계 (what Python cannot do)    | robust_lock
## messages between processes: Queue, Pipe (notes 003, 001)
Process Queue: set_data / get_data                       | 003 Process Communication (Queue)       | queue_hello
Process Pipe: Received message                           | 003 Process Communication (pipe)        | pipe_message
The clock over a Queue                                   | 001 3. Queue                            | clock_queue
The clock over a Pipe                                    | 001 4. Pipe                             | clock_pipe
## the Manager server process (note 001)
Manager().Value: the join-order mistake (only counting)  | 001 2. Server Process                   | manager_clock mistake
Manager().Value: the fixed join order (Clock and Time)   | 001 2. Server Process                   | manager_clock fixed
A remote manager: address and authkey                    | 001 2. Server Process (remote)          | manager_remote
## subprocess (notes 002, 004)
subprocess.run(['echo', ...]) and CompletedProcess       | 002 6.1.1 subprocess 모듈; 004          | echo
subprocess.run(['sleep', ...])                           | 002 6.1.1 subprocess 모듈               | sleep
A pipeline of two children                               | 002 6.1.1 (parent-child pairs)          | pipeline
A timeout: run(..., timeout=) kills the child            | 002 6.1.1 (sleep, with a timeout)       | timeout
EOF
}

find_prog() { # prints the path of example program $1, or nothing
  local p
  for p in "$build"/examples/*/"$1"; do
    [ -x "$p" ] && [ -f "$p" ] && { printf '%s\n' "$p"; return; }
  done
}
note_title() { # "000 Thread 구현" -> 'note 000 "python (concurrency)", Thread 구현'
  local num=${1%% *} rest=${1#* } t
  case $num in
    000) t="python (concurrency)" ;;
    001) t="Thread management in Python" ;;
    002) t="멀티 프로세스와 멀티 스레드" ;;
    003) t="python (multiprocessing)" ;;
    004) t="프로세스 / threading 모듈" ;;
    *) t="" ;;
  esac
  printf 'note %s "%s", %s' "$num" "$t" "$rest"
}
trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; printf '%s' "${s%"${s##*[![:space:]]}"}"; }

runner=()
command -v stdbuf >/dev/null && runner=(stdbuf -oL -eL)
total=$(scenarios | grep -cv '^## ')
n=0 ran=0 missing=() failed=()
start=$SECONDS
while IFS= read -r line; do
  if [ "${line:0:3}" = "## " ]; then
    printf '\n################ %s ################\n' "${line:3}"
    continue
  fi
  IFS='|' read -r heading note cmd <<<"$line"
  heading=$(trim "$heading") note=$(trim "$note") cmd=$(trim "$cmd")
  read -r prog args <<<"$cmd"
  n=$((n + 1))
  printf '\n======== [%d/%d] %s\n======== from %s -- program: %s\n' "$n" "$total" "$heading" \
    "$(note_title "$note")" "$cmd"
  path=$(find_prog "$prog")
  if [ -z "$path" ]; then
    echo "(not built yet)"
    missing+=("$prog")
    continue
  fi
  launch=("${runner[@]}")
  case $path in
    */examples/mpi/*) # MpiPoolExecutor's programs run over 3 ranks on this machine
      if ! command -v mpirun >/dev/null; then
        echo "(skipped: mpirun is absent; install openmpi-bin)"
        continue
      fi
      export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader \
        OMPI_MCA_btl_vader_single_copy_mechanism=none
      launch+=(mpirun --oversubscribe -np 3)
      ;;
  esac
  # shellcheck disable=SC2086
  "${launch[@]}" "$path" $args </dev/null
  rc=$?
  ran=$((ran + 1))
  if [ $rc -ne 0 ]; then
    echo "(exit status $rc)"
    failed+=("$prog")
  fi
done < <(scenarios)

echo
echo "demo: $ran of $total scenarios ran in $((SECONDS - start)) s${missing:+; not built yet: ${missing[*]}}${failed:+; non-zero exit: ${failed[*]}}"

# The live table: concur against Python's standard library on a few workloads, each measured
# now on this machine (examples/tour/versus{,.py}).
echo
echo "################ concur vs Python, measured now ################"
bash "$root/scripts/versus.sh" "$build" || echo "(the live table could not be measured)"
exit 0
