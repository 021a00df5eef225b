// The manager's server process and listener: BaseManager and Manager.
//
// start(): the Listener is made in the child (so a TCP port 0 is the child's), which sends
// the bound address (or the exception that stopped it) back through a pipe; the parent waits
// for that message or the pipe's EOF (the child died), never for a fixed time.
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <set>
#include <thread>

#include "concur/detail/fork.hpp"
#include "concur/multiprocessing/managers.hpp"

namespace concur::multiprocessing {

}  // namespace concur::multiprocessing

namespace concur::detail {

void server_handshake(multiprocessing::Connection& c, const std::string& key, concur::detail::Deadline dl) {
  concur::detail::deliver_challenge(c, key, dl);
  concur::detail::answer_challenge(c, key, dl);
}
void client_handshake(multiprocessing::Connection& c, const std::string& key, concur::detail::Deadline dl) {
  concur::detail::answer_challenge(c, key, dl);
  concur::detail::deliver_challenge(c, key, dl);
}

// A client's handshake must finish within this (a stalled server is an error, not a hang).
// At namespace scope: clang (unlike gcc) will not use a local constexpr in a lambda that
// does not capture it.
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);

std::function<multiprocessing::Connection()> manager_connector(std::string address,
                                                               std::string key) {
  return [address = std::move(address), key = std::move(key)] {
    multiprocessing::Connection c = multiprocessing::Client(address);
    client_handshake(c, key, concur::detail::Deadline::after(kHandshakeTimeout));
    return c;
  };
}

}  // namespace concur::detail

namespace concur::multiprocessing {

namespace {

using namespace std::chrono_literals;


std::atomic<unsigned> manager_counter{0};

// The default address: an abstract Unix socket whose name the kernel picks (no file).
std::string private_address() {
  return "@";
}

bool is_path(const std::string& address) {
  return !address.empty() && address[0] == '/';
}

// The connections a serve_forever() serves, so that shutdown can end them and wait.
struct LiveConnections {
  detail::Mutex mu;
  std::condition_variable_any cv;  // waited on with mu
  std::set<int> fds CONCUR_GUARDED_BY(mu);
  std::size_t threads CONCUR_GUARDED_BY(mu) = 0;
};

}  // namespace

struct BaseManager::Impl {
  enum class State { initial, started, serving, connected, shut };
  ManagerOptions options;
  std::atomic<State> state{State::initial};
  mutable detail::Mutex mu;  // serve_forever runs in another thread
  pid_t owner = ::getpid();
  std::shared_ptr<detail::ServerCore> server = std::make_shared<detail::ServerCore>();
  std::shared_ptr<detail::ClientCore> client;
  std::string address CONCUR_GUARDED_BY(mu);
  void set_address(std::string a) {
    detail::MutexLock g(mu);
    address = std::move(a);
  }
  std::string get_address() const {
    detail::MutexLock g(mu);
    return address;
  }
  std::unique_ptr<Process> process;
  // serve_forever:
  std::atomic<bool> stop{false};
  std::shared_ptr<LiveConnections> live = std::make_shared<LiveConnections>();

  // Accepts until stop; each connection gets a thread (detached; counted in `live`).
  void accept_loop(Listener& listener, bool track) {
    while (!stop.load()) {
      Connection c;
      try {
        c = listener.accept();
      } catch (const std::exception&) {
        if (stop.load()) break;
        std::this_thread::sleep_for(1ms);  // EMFILE and the like: do not spin
        continue;
      }
      if (stop.load()) break;
      const int fd = c.fileno();
      if (track) {
        detail::MutexLock g(live->mu);
        live->fds.insert(fd);
        ++live->threads;
      }
      std::thread([server = server, live = live, key = options.authkey, track, fd,
                   c = std::move(c)]() mutable {
        server->serve_connection(std::move(c), key);
        if (track) {
          detail::MutexLock g(live->mu);
          live->fds.erase(fd);
          if (--live->threads == 0) live->cv.notify_all();
        }
      }).detach();
    }
  }

  // The server child: never returns.
  [[noreturn]] void child_main(Connection& report, pid_t parent, bool from_main_thread) {
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, nullptr);  // every thread made below inherits it
    if (from_main_thread) ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    const int parent_fd = static_cast<int>(::syscall(SYS_pidfd_open, parent, 0));
    if (::getppid() != parent) ::_exit(0);  // the parent died before the death signal was armed
    const int term_fd = ::signalfd(-1, &term, SFD_CLOEXEC);
    std::optional<Listener> listener;
    try {
      listener.emplace(options.address.empty() ? private_address() : options.address);
      set_address(listener->address());
      report.send(std::tuple<bool, std::string, concur::detail::ExceptionInfo>(
          true, get_address(), {}));
    } catch (...) {
      report.send(std::tuple<bool, std::string, concur::detail::ExceptionInfo>(
          false, "", concur::detail::describe(std::current_exception())));
      ::_exit(1);
    }
    report.close();
    const std::string bound = get_address();
    auto leave = [bound] {
      if (is_path(bound)) ::unlink(bound.c_str());
      ::_exit(0);
    };
    server->on_shutdown = leave;
    // The parent's death (pidfd readable) or SIGTERM: remove the socket file and go.
    std::thread([parent_fd, term_fd, leave] {
      pollfd p[2] = {{parent_fd, POLLIN, 0}, {term_fd, POLLIN, 0}};
      const nfds_t n = parent_fd >= 0 ? 2 : 1;
      pollfd* first = parent_fd >= 0 ? p : p + 1;
      for (;;) {
        if (::poll(first, n, -1) > 0) leave();
      }
    }).detach();
    accept_loop(*listener, false);
    leave();
    ::_exit(0);
  }

  Listener* listening CONCUR_GUARDED_BY(mu) = nullptr;  // serve_forever's, while it accepts
  void wake_acceptor() {
    detail::MutexLock g(mu);
    if (listening != nullptr) listening->close();  // accept() returns; the loop sees `stop`
  }
};

BaseManager::BaseManager(ManagerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  const double ft = impl_->options.frame_timeout.count();
  if (!(ft > 0)) throw ValueError("frame_timeout must be > 0");
  if (impl_->options.authkey.empty()) impl_->options.authkey = process_authkey();
  impl_->server->frame_timeout = impl_->options.frame_timeout;
}

BaseManager::~BaseManager() {
  shutdown();
}

void BaseManager::add_object(std::string name, std::shared_ptr<detail::ServedObject> obj) {
  if (impl_->state != Impl::State::initial)
    throw ProcessError("register_object() must come before start()/serve_forever()");
  impl_->server->add(std::move(name), std::move(obj));
}

void BaseManager::start() {
  Impl& I = *impl_;
  if (I.state != Impl::State::initial) throw ProcessError("Already started server");
  auto [r, w] = Pipe(false);
  const pid_t parent = ::getpid();
  const bool from_main = ::gettid() == ::getpid();
  Connection* report = &w;
  Impl* self = impl_.get();
  I.process = std::make_unique<Process>(
      ProcessOptions{.name = "SyncManager-" + std::to_string(manager_counter.fetch_add(1) + 1),
                     .daemon = true},
      [self, report, parent, from_main] { self->child_main(*report, parent, from_main); });
  I.process->start();
  w.close();
  std::tuple<bool, std::string, concur::detail::ExceptionInfo> msg;
  try {
    msg = r.recv<decltype(msg)>();
  } catch (const EOFError&) {
    I.process->join();
    throw ProcessError("the manager's server process died before it listened (exit code " +
                       std::to_string(I.process->exitcode().value_or(-1)) + ")");
  }
  if (!std::get<0>(msg)) {
    I.process->join();
    concur::detail::rethrow(std::get<2>(msg));
  }
  I.set_address(std::get<1>(msg));
  I.client = detail::ClientCore::make(detail::manager_connector(std::get<1>(msg), I.options.authkey), std::get<1>(msg));
  I.state = Impl::State::started;
}

void BaseManager::serve_forever() {
  Impl& I = *impl_;
  if (I.state != Impl::State::initial) throw ProcessError("Already started server");
  Listener listener(I.options.address.empty() ? private_address() : I.options.address);
  I.client = detail::ClientCore::make(detail::manager_connector(listener.address(), I.options.authkey), listener.address());
  I.server->on_shutdown = [&I] {
    I.stop.store(true);
    I.wake_acceptor();
  };
  {
    detail::MutexLock g(I.mu);
    I.address = listener.address();
    I.listening = &listener;
  }
  I.state = Impl::State::serving;
  I.accept_loop(listener, true);
  {
    detail::MutexLock g(I.mu);  // a wake_acceptor() in progress finishes first
    I.listening = nullptr;
  }
  listener.close();
  LiveConnections& live = *I.live;
  live.mu.lock();
  for (int fd : live.fds) ::shutdown(fd, SHUT_RDWR);  // their recv returns: EOF
  while (live.threads != 0) live.cv.wait(live.mu);
  live.mu.unlock();
  I.state = Impl::State::shut;
}

void BaseManager::connect() {
  Impl& I = *impl_;
  if (I.state != Impl::State::initial) throw ProcessError("Already started or connected");
  if (I.options.address.empty()) throw ValueError("connect() needs the server's address");
  auto client =
      detail::ClientCore::make(detail::manager_connector(I.options.address, I.options.authkey),
                               I.options.address);
  client->call<void>(detail::kControl, detail::kPing);
  I.client = std::move(client);
  I.set_address(I.options.address);
  I.state = Impl::State::connected;
}

std::string BaseManager::address() const {
  return impl_->get_address();
}
const std::string& BaseManager::authkey() const noexcept {
  return impl_->options.authkey;
}
Process* BaseManager::process() const noexcept {
  return impl_->process.get();
}

std::shared_ptr<detail::ClientCore> BaseManager::client() const {
  if (!impl_->client) throw ProcessError("the manager is not started or connected");
  return impl_->client;
}

detail::LookupReply BaseManager::lookup(const std::string& name) {
  return client()->call<detail::LookupReply>(detail::kControl, detail::kLookup, name);
}

std::size_t BaseManager::number_of_objects() {
  return static_cast<std::size_t>(
      client()->call<std::uint64_t>(detail::kControl, detail::kNumberOfObjects));
}

void BaseManager::shutdown() noexcept {
  Impl& I = *impl_;
  try {
    const bool owner = ::getpid() == I.owner;
    if (I.state == Impl::State::started && owner) {
      try {
        I.client->call<void>(detail::kControl, detail::kShutdown);
      } catch (...) {
        // already dead
      }
      if (!I.process->join(2s)) {
        I.process->kill();
        I.process->join();
        if (const std::string a = I.get_address(); is_path(a)) ::unlink(a.c_str());
      }
      I.client->mark_shut();  // proxies dropped from now on have nothing to give back
      I.state = Impl::State::shut;
    } else if (I.state == Impl::State::serving && owner) {
      I.stop.store(true);
      I.wake_acceptor();
    } else if (I.state == Impl::State::connected) {
      I.state = Impl::State::shut;
    }
    if (I.client) I.client->drop_this_thread();
  } catch (...) {
  }
}

Manager::Manager(ManagerOptions options) : BaseManager(std::move(options)) {
  start();
}

}  // namespace concur::multiprocessing
