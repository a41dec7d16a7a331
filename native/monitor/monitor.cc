#include "monitor/monitor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <ctime>

#include "common/error.h"
#include "monitor/json.h"
#include "monitor/util.h"

namespace skiff::monitor {

namespace {

constexpr int64_t kDrainMs = 2000;       // output drain after the process exited
constexpr int64_t kFinalFlushMs = 2000;  // last replies after exit.json
constexpr int64_t kHeldFlushMs = 30000;  // … and the last output for a holding attach client
constexpr int64_t kErrorKillMs = 5000;   // an init that reported an error must exit by then
constexpr size_t kMaxClients = 256;      // well below the usual RLIMIT_NOFILE of 1024
constexpr size_t kStdinHighWater = 1 << 20;
constexpr size_t kIoChunk = 32 * 1024;

std::string message_json(const std::string& message) { return "{\"message\":" + json_quote(message) + "}"; }

std::string status_text(int status) {
  if (WIFEXITED(status)) return "status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

std::vector<std::string> split_words(const std::string& line) {
  std::vector<std::string> w;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) i++;
    size_t s = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') i++;
    if (i > s) w.emplace_back(line, s, i - s);
  }
  return w;
}

}  // namespace

Monitor::Monitor(Options opts) : opts_(std::move(opts)) {}

int64_t Monitor::now_ms() const {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// ---------------------------------------------------------------------------------------
// Setup

void Monitor::listen_socket() {
  sock_path_ = opts_.bundle + "/ms";
  // Bound by the relative name "ms" from inside the bundle: sun_path holds 108 bytes and an
  // exec bundle's absolute path can be longer (single-threaded, so the chdir is harmless).
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, "ms", 3);
  listen_.reset(check(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), "socket", "AF_UNIX stream"));
  if (::unlink(sock_path_.c_str()) < 0 && errno != ENOENT) throw SysError("unlink", sock_path_, errno);
  check(::chdir(opts_.bundle.c_str()), "chdir", opts_.bundle);
  mode_t old = ::umask(0177);
  int rc = ::bind(listen_.get(), reinterpret_cast<struct sockaddr*>(&addr), offsetof(struct sockaddr_un, sun_path) + 3);
  int err = errno;
  ::umask(old);
  check(::chdir("/"), "chdir", "/");
  if (rc < 0) throw SysError("bind", sock_path_, err);
  check(::chmod(sock_path_.c_str(), 0600), "chmod 0600", sock_path_);
  check(::listen(listen_.get(), 64), "listen", sock_path_);
}

void Monitor::start(UniqueFd report_fd) {
  report_ = std::move(report_fd);
  self_pid_ = ::getpid();

  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  check(::sigprocmask(SIG_BLOCK, &mask, nullptr), "sigprocmask", "SIG_BLOCK SIGCHLD");
  sigfd_.reset(check(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC), "signalfd", "SIGCHLD"));

  listen_socket();
  atomic_write(opts_.bundle, "monitor.pid", std::to_string(self_pid_), false);

  if (!opts_.log_path.empty())
    log_.open(opts_.log_path, opts_.log_max_size, opts_.log_max_file, opts_.log_format, opts_.log_attrs);
  if (!opts_.journal_socket.empty()) log_.open_journal(opts_.journal_socket, opts_.journal_fields);
  if (!opts_.oom_file.empty()) {
    long long v = read_keyed_counter(opts_.oom_file, "oom_kill");
    oom_baseline_ = v > 0 ? v : 0;
  }

  io_ = ContainerIo::create(opts_.tty, opts_.open_stdin);

  int sv[2];
  check(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), "socketpair", "sync channel");
  sync_.reset(sv[0]);
  UniqueFd child_end(sv[1]);
  set_nonblock(sync_.get());

  init_pid_ = spawn_init(opts_.mode, opts_.bundle, io_, child_end.get());
  child_end.reset();
  io_.close_child_ends();
  if (!opts_.tty && !opts_.open_stdin) stdin_closed_ = true;
}

// ---------------------------------------------------------------------------------------
// Event loop

void Monitor::run() {
  std::vector<struct pollfd> pfds;
  std::vector<std::pair<Src, Client*>> srcs;
  for (;;) {
    int64_t now = now_ms();
    if (phase_ == Phase::kExited && (outputs_done() || now >= drain_deadline_)) finalize();
    sweep_clients();
    if (phase_ == Phase::kFinished && (clients_.empty() || now >= final_deadline_)) break;
    if (kill_deadline_ && now >= kill_deadline_) {
      pid_t victim = container_pid_ > 0 ? container_pid_ : init_pid_;
      if (victim > 0) ::kill(victim, SIGKILL);
      if (init_pid_ > 0 && init_pid_ != victim) ::kill(init_pid_, SIGKILL);
      kill_deadline_ = 0;
    }

    pfds.clear();
    srcs.clear();
    auto add = [&](int fd, short ev, Src s, Client* c = nullptr) {
      pfds.push_back({fd, ev, 0});
      srcs.emplace_back(s, c);
    };
    add(sigfd_.get(), POLLIN, Src::kSignal);
    if (listen_.valid()) add(listen_.get(), POLLIN, Src::kListen);
    if (sync_.valid()) add(sync_.get(), POLLIN, Src::kSync);
    bool stdin_pending = stdin_off_ < stdin_buf_.size();
    // While the process runs, a holding attach client (`attach … hold`: the daemon's builder)
    // that could not take another chunk holds the output back, and the process waits on its
    // full pipe, as with dockerd's attach: a build's RUN output is whole however loaded the
    // daemon is. Other clients that fall behind are dropped (deliver), the process never waits
    // for them; after the exit nothing is held.
    bool held_back = phase_ == Phase::kRunning && attach_backlogged();
    if (io_.tty) {
      short ev = 0;
      if (!out_eof_[0] && !held_back) ev |= POLLIN;
      if (stdin_pending) ev |= POLLOUT;
      if (ev && io_.master.valid()) add(io_.master.get(), ev, Src::kMaster);
    } else {
      if (io_.stdout_r.valid() && !held_back) add(io_.stdout_r.get(), POLLIN, Src::kStdout);
      if (io_.stderr_r.valid() && !held_back) add(io_.stderr_r.get(), POLLIN, Src::kStderr);
      if (stdin_pending && io_.stdin_w.valid()) add(io_.stdin_w.get(), POLLOUT, Src::kStdinW);
    }
    bool stdin_room = stdin_buf_.size() - stdin_off_ < kStdinHighWater;
    for (auto& cp : clients_) {
      Client& c = *cp;
      if (c.dead) continue;
      short ev = 0;
      if (!c.read_closed &&
          (c.kind == Client::Kind::kCommand || (c.kind == Client::Kind::kAttach && c.want_stdin && stdin_room)))
        ev |= POLLIN;
      if (!c.out.empty()) ev |= POLLOUT;
      add(c.fd.get(), ev, Src::kClient, &c);
    }

    int timeout = -1;
    auto consider = [&](int64_t deadline) {
      if (!deadline) return;
      int64_t d = deadline - now;
      if (d < 0) d = 0;
      if (timeout < 0 || d < timeout) timeout = static_cast<int>(d);
    };
    if (phase_ == Phase::kExited) consider(drain_deadline_);
    if (phase_ == Phase::kFinished) consider(final_deadline_);
    consider(kill_deadline_);

    int n = ::poll(pfds.data(), pfds.size(), timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw SysError("poll", "monitor loop", errno);
    }
    for (size_t i = 0; i < pfds.size(); i++) {
      short re = pfds[i].revents;
      if (!re) continue;
      switch (srcs[i].first) {
        case Src::kSignal: on_signal(); break;
        case Src::kListen: on_accept(); break;
        case Src::kSync: drain_sync(); break;
        case Src::kStdout: on_output(0, io_.stdout_r.get()); break;
        case Src::kStderr: on_output(1, io_.stderr_r.get()); break;
        case Src::kMaster:
          // held back: the hang-up is looked at again once the holding client drained (no spin)
          if (re & (POLLIN | POLLHUP | POLLERR) && !out_eof_[0] && !held_back) on_output(0, io_.master.get());
          if (re & POLLOUT) write_stdin();
          break;
        case Src::kStdinW: write_stdin(); break;
        case Src::kClient:
          if (!srcs[i].second->dead) on_client(*srcs[i].second, re);
          break;
      }
    }
  }
}

void Monitor::sweep_clients() {
  // Stable: connections keep being served in the order they came in.
  size_t keep = 0;
  for (size_t i = 0; i < clients_.size(); i++)
    if (!clients_[i]->dead) clients_[keep++] = std::move(clients_[i]);
  clients_.resize(keep);
}

void Monitor::on_accept() {
  for (;;) {
    int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // EAGAIN, or EMFILE and the like: retried on the next wakeup
    }
    if (clients_.size() >= kMaxClients) {
      ::close(fd);
      continue;
    }
    clients_.push_back(std::make_unique<Client>(fd));
  }
}

void Monitor::on_signal() {
  struct signalfd_siginfo si;
  while (::read(sigfd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
  }
  // Messages a process sent before exiting are queued already: read them first, so an
  // init's `pid N` / `error` is known before its exit is handled.
  drain_sync();
  for (;;) {
    int status;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) break;
    if (pid == container_pid_) {
      on_container_exit(status);
    } else if (pid == init_pid_) {
      on_init_exit(status);
    } else if (container_pid_ < 0) {
      if (early_reaped_.size() >= 64) early_reaped_.erase(early_reaped_.begin());
      early_reaped_.emplace_back(pid, status);
    }
    // Anything else: an orphan we adopted as subreaper; reaping it is all there is to do.
  }
}

// ---------------------------------------------------------------------------------------
// Sync channel with skiff-init

void Monitor::drain_sync() {
  while (sync_.valid()) {
    char buf[8192];
    // recvmsg: the "pty" message carries the pty master as SCM_RIGHTS.
    union {
      struct cmsghdr align;
      char data[CMSG_SPACE(sizeof(int))];
    } control{};
    struct iovec iov {
      buf, sizeof buf
    };
    struct msghdr mh {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control.data;
    mh.msg_controllen = sizeof control.data;
    ssize_t n = ::recvmsg(sync_.get(), &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    int passed_fd = -1;
    if (n > 0)
      for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
          std::memcpy(&passed_fd, CMSG_DATA(c), sizeof(int));
    if (passed_fd >= 0) {
      if (io_.tty && !io_.master.valid() && n >= 3 && std::memcmp(buf, "pty", 3) == 0) {
        io_.master.reset(passed_fd);
        set_nonblock(passed_fd);
      } else {
        ::close(passed_fd);
      }
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // ECONNRESET and friends: the other side is gone.
      on_sync_eof();
      return;
    }
    if (n == 0) {
      on_sync_eof();
      return;
    }
    std::string msg(buf, static_cast<size_t>(n));
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\0' || msg.back() == '\r')) msg.pop_back();
    on_sync_message(std::move(msg));
  }
}

void Monitor::on_sync_message(std::string msg) {
  if (msg.compare(0, 4, "pid ") == 0) {
    long long v;
    if (!parse_int64(msg.c_str() + 4, v) || v <= 0 || v > 0x7fffffff) return;
    if (container_pid_ > 0) return;  // only the first one counts
    container_pid_ = static_cast<pid_t>(v);
    for (size_t i = 0; i < early_reaped_.size(); i++) {
      if (early_reaped_[i].first == container_pid_) {
        int st = early_reaped_[i].second;
        early_reaped_.clear();
        on_container_exit(st);
        return;
      }
    }
    early_reaped_.clear();
    if (ready_seen_) on_ready();
  } else if (msg == "ready") {
    // The init's parent side sends `pid`, its child `ready`: they may arrive in either order.
    ready_seen_ = true;
    if (container_pid_ > 0) on_ready();
  } else if (msg.compare(0, 6, "error ") == 0 || msg == "error") {
    set_error(msg.size() > 6 ? msg.substr(6) : std::string());
  }
  // Unknown messages are ignored (forward compatibility).
}

void Monitor::on_sync_eof() {
  sync_.reset();
  if (!error_json_.empty()) return;
  if (start_sent_) {
    exec_ok_ = true;
    if (phase_ == Phase::kCreated) {
      phase_ = Phase::kRunning;
      started_at_ = now_rfc3339nano();
      write_state();
    }
    for (auto& c : clients_)
      if (!c->dead && c->kind == Client::Kind::kStart) reply(*c, "{\"ok\":true}");
    return;
  }
  set_error(message_json(phase_ == Phase::kCreating ? "skiff-init closed the sync channel before ready"
                                                    : "skiff-init closed the sync channel before start"));
}

void Monitor::on_ready() {
  if (phase_ != Phase::kCreating || !error_json_.empty()) return;
  phase_ = Phase::kCreated;
  write_state();
  report("ready " + std::to_string(self_pid_) + " " + std::to_string(container_pid_));
}

void Monitor::set_error(std::string json) {
  if (!error_json_.empty()) return;
  if (!json_valid(json) || json.empty() || json[0] != '{')
    json = message_json(json.empty() ? "skiff-init error" : json);
  error_json_ = json;
  if (!json_string_field(error_json_, "message", error_message_)) error_message_ = error_json_;
  if (phase_ == Phase::kCreating) report("error " + error_json_);
  for (auto& c : clients_)
    if (!c->dead && c->kind == Client::Kind::kStart) reply(*c, "{\"ok\":false,\"error\":" + error_json_ + "}");
  // The init exits after an error; make sure it does.
  if (phase_ < Phase::kExited) kill_deadline_ = now_ms() + kErrorKillMs;
}

void Monitor::report(const std::string& line) {
  if (!report_.valid()) return;
  std::string l = line + "\n";
  write_all(report_.get(), l.data(), l.size());
  report_.reset();
}

// ---------------------------------------------------------------------------------------
// Process exits

void Monitor::on_init_exit(int status) {
  init_pid_ = -1;
  bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (container_pid_ < 0) {
    // No process was ever reported: the init itself stands for it.
    set_error(message_json("skiff-init exited with " + status_text(status) + " before reporting a process"));
    on_container_exit(status);
    return;
  }
  if (!clean && phase_ == Phase::kCreating && error_json_.empty()) {
    set_error(message_json("skiff-init exited with " + status_text(status) + " before ready"));
    ::kill(container_pid_, SIGKILL);
  }
}

void Monitor::on_container_exit(int status) {
  if (phase_ >= Phase::kExited) return;
  if (container_pid_ == init_pid_) init_pid_ = -1;
  if (phase_ == Phase::kCreating && error_json_.empty())
    set_error(message_json("process exited with " + status_text(status) + " before ready"));
  finished_at_ = now_rfc3339nano();
  exit_signal_ = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  if (!error_json_.empty()) {
    exit_code_ = 127;
  } else if (WIFEXITED(status)) {
    exit_code_ = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit_code_ = 128 + WTERMSIG(status);
  } else {
    exit_code_ = 255;
  }
  long long ooms = read_keyed_counter(opts_.oom_file, "oom_kill");
  oom_killed_ = ooms > oom_baseline_;
  phase_ = Phase::kExited;
  drain_deadline_ = now_ms() + kDrainMs;
  kill_deadline_ = 0;
  // Nothing reads the container's stdin any more.
  io_.stdin_w.reset();
  std::string().swap(stdin_buf_);
  stdin_off_ = 0;
  stdin_closed_ = true;
}

bool Monitor::outputs_done() const {
  if (io_.tty) return out_eof_[0] || !io_.master.valid();  // no master: the init failed before sending it
  return out_eof_[0] && out_eof_[1];
}

void Monitor::finalize() {
  // Whatever is still readable now is the last output (a process that kept the pipe open
  // past the drain deadline loses the rest).
  if (io_.tty) {
    if (!out_eof_[0] && io_.master.valid()) on_output(0, io_.master.get());
  } else {
    if (io_.stdout_r.valid()) on_output(0, io_.stdout_r.get());
    if (io_.stderr_r.valid()) on_output(1, io_.stderr_r.get());
  }
  log_.flush_partial(LogWriter::kStdout);
  log_.flush_partial(LogWriter::kStderr);

  try {
    atomic_write(opts_.bundle, "exit.json", exit_json(),
                 false);  // exec root: tmpfs, gone at reboot with the containers
  } catch (const std::exception&) {
    // Nowhere to report it; the daemon sees the missing exit.json.
  }
  write_state();

  std::string ej = exit_json();
  for (auto& cp : clients_) {
    Client& c = *cp;
    if (c.dead) continue;
    switch (c.kind) {
      case Client::Kind::kWait: reply(c, ej); break;
      case Client::Kind::kStart:
        reply(c, "{\"ok\":false,\"error\":" +
                     (error_json_.empty() ? message_json("process exited before start completed") : error_json_) + "}");
        break;
      case Client::Kind::kAttach:
        c.kind = Client::Kind::kClosing;
        if (c.out.empty()) c.dead = true;
        break;
      default: break;
    }
  }
  ::unlink(sock_path_.c_str());
  listen_.reset();
  phase_ = Phase::kFinished;
  // a holding client (a build's RUN) may have up to kMaxQueued still to read: it gets longer
  bool holding = false;
  for (auto& cp : clients_)
    if (!cp->dead && cp->holds_output && !cp->out.empty()) holding = true;
  final_deadline_ = now_ms() + (holding ? kHeldFlushMs : kFinalFlushMs);
}

std::string Monitor::exit_json() const {
  std::string s = "{\"exitCode\":" + std::to_string(exit_code_) + ",\"signal\":" + std::to_string(exit_signal_) +
                  ",\"oomKilled\":" + (oom_killed_ ? "true" : "false") + ",\"finishedAt\":" + json_quote(finished_at_);
  if (!error_message_.empty()) s += ",\"error\":" + json_quote(error_message_);
  // the whole failure too (call, target, errno): the daemon's exit code for it comes from those
  if (!error_json_.empty()) s += ",\"failure\":" + error_json_;
  return s + "}";
}

std::string Monitor::state_json() const {
  const char* status = phase_ >= Phase::kExited ? "exited" : phase_ == Phase::kRunning ? "running" : "created";
  std::string s = std::string("{\"status\":\"") + status +
                  "\",\"pid\":" + std::to_string(container_pid_ > 0 ? container_pid_ : 0) +
                  ",\"monitorPid\":" + std::to_string(self_pid_);
  if (!started_at_.empty()) s += ",\"startedAt\":" + json_quote(started_at_);
  if (phase_ >= Phase::kExited) {
    s += ",\"exitCode\":" + std::to_string(exit_code_) + ",\"signal\":" + std::to_string(exit_signal_) +
         ",\"oomKilled\":" + (oom_killed_ ? "true" : "false") + ",\"finishedAt\":" + json_quote(finished_at_);
    if (!error_message_.empty()) s += ",\"error\":" + json_quote(error_message_);
  }
  return s + "}";
}

void Monitor::write_state() {
  try {
    atomic_write(opts_.bundle, "state.json", state_json(), false);
  } catch (const std::exception&) {
  }
}

// ---------------------------------------------------------------------------------------
// Container output and input

void Monitor::on_output(int stream, int fd) {
  char buf[kIoChunk];
  for (int round = 0; round < 64; round++) {
    if (phase_ == Phase::kRunning && attach_backlogged()) return;  // the loop polls again once it drains
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      deliver(stream, buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    // EOF, or EIO on a pty master once every slave fd is closed.
    out_eof_[stream] = true;
    log_.flush_partial(stream == 0 ? LogWriter::kStdout : LogWriter::kStderr);
    if (!io_.tty) (stream == 0 ? io_.stdout_r : io_.stderr_r).reset();
    return;
  }
}

bool Monitor::attach_backlogged() const {
  for (const auto& cp : clients_) {
    const Client& c = *cp;
    // room for one more chunk and its frame header
    if (!c.dead && c.holds_output && c.kind == Client::Kind::kAttach &&
        c.out.size() + kIoChunk + 8 > Client::kMaxQueued)
      return true;
  }
  return false;
}

void Monitor::deliver(int stream, const char* data, size_t len) {
  log_.write(stream == 0 ? LogWriter::kStdout : LogWriter::kStderr, data, len);
  for (auto& cp : clients_) {
    Client& c = *cp;
    if (c.dead || c.kind != Client::Kind::kAttach) continue;
    bool ok = true;
    // while the process runs a holding client is never this far behind (the output waits for
    // it); after the exit what is left in the pipe is queued for it whole
    size_t limit = c.holds_output && phase_ != Phase::kRunning ? Client::kMaxHeld : Client::kMaxQueued;
    if (io_.tty) {
      if (c.want_stdout || c.want_stderr) ok = queue_raw(c, data, len, limit);
    } else if (stream == 0 && c.want_stdout) {
      ok = queue_frame(c, 1, data, len, limit);
    } else if (stream == 1 && c.want_stderr) {
      ok = queue_frame(c, 2, data, len, limit);
    }
    if (!ok) {
      c.dead = true;  // too slow: dropped, the container does not wait for it
      continue;
    }
    client_flush(c);
  }
}

bool Monitor::stdin_accepting() const {
  if (stdin_closed_ || stdin_close_pending_ || !opts_.open_stdin) return false;
  return io_.tty ? io_.master.valid() : io_.stdin_w.valid();
}

void Monitor::feed_stdin(const char* data, size_t len) {
  if (!stdin_accepting() || len == 0) return;
  if (stdin_off_ == stdin_buf_.size()) {
    stdin_buf_.clear();
    stdin_off_ = 0;
  }
  stdin_buf_.append(data, len);
  write_stdin();
}

void Monitor::write_stdin() {
  int fd = io_.tty ? io_.master.get() : io_.stdin_w.get();
  while (fd >= 0 && stdin_off_ < stdin_buf_.size()) {
    ssize_t n = ::write(fd, stdin_buf_.data() + stdin_off_, stdin_buf_.size() - stdin_off_);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // EPIPE: the reader is gone. Input is dropped from now on.
      stdin_closed_ = true;
      stdin_off_ = stdin_buf_.size();
      if (!io_.tty) io_.stdin_w.reset();
      break;
    }
    stdin_off_ += static_cast<size_t>(n);
  }
  std::string().swap(stdin_buf_);
  stdin_off_ = 0;
  if (stdin_close_pending_ && !io_.tty) {
    io_.stdin_w.reset();
    stdin_close_pending_ = false;
    stdin_closed_ = true;
  }
}

void Monitor::on_stdin_eof(Client& c) {
  // A terminal's input is never closed by an attach ending (docker's rule too): the client may
  // have detached, and a shell must survive that.
  if (!c.want_stdin || !opts_.stdin_once || !stdin_accepting() || io_.tty) return;
  stdin_close_pending_ = true;
  write_stdin();
}

// ---------------------------------------------------------------------------------------
// Clients

void Monitor::on_client(Client& c, short revents) {
  if (revents & (POLLIN | POLLHUP | POLLERR)) {
    bool reading =
        !c.read_closed && (c.kind == Client::Kind::kCommand || (c.kind == Client::Kind::kAttach && c.want_stdin));
    if (reading) client_read(c);
  }
  if (c.dead) return;
  if (revents & POLLOUT) client_flush(c);
  if (c.dead) return;
  if (revents & POLLERR) {
    c.dead = true;
  } else if (revents & POLLHUP) {
    // The peer closed both directions: nothing can be delivered any more. A command client
    // whose line was complete has been answered in client_read already.
    if (c.kind != Client::Kind::kCommand || c.read_closed) c.dead = true;
  }
}

void Monitor::client_read(Client& c) {
  char buf[kIoChunk];
  while (!c.dead && !c.read_closed) {
    bool is_cmd = c.kind == Client::Kind::kCommand;
    bool is_in = c.kind == Client::Kind::kAttach && c.want_stdin;
    if (!is_cmd && !is_in) return;
    if (is_in && stdin_buf_.size() - stdin_off_ >= kStdinHighWater) return;
    ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) c.dead = true;
      return;
    }
    if (n == 0) {
      c.read_closed = true;
      if (is_cmd) {
        if (c.in.empty()) c.dead = true;
        else run_command(c, std::move(c.in), std::string());
      } else {
        on_stdin_eof(c);
      }
      return;
    }
    if (is_in) {
      feed_stdin(buf, static_cast<size_t>(n));
      continue;
    }
    c.in.append(buf, static_cast<size_t>(n));
    size_t nl = c.in.find('\n');
    if (nl != std::string::npos) {
      std::string line = c.in.substr(0, nl);
      std::string rest = c.in.substr(nl + 1);
      std::string().swap(c.in);
      run_command(c, std::move(line), std::move(rest));
    } else if (c.in.size() > Client::kMaxCommand) {
      std::string().swap(c.in);
      reply_error(c, "command line too long");
    }
  }
}

void Monitor::client_flush(Client& c) {
  int err = 0;
  switch (c.out.flush(c.fd.get(), &err)) {
    case OutQueue::Flush::kDone:
      if (c.kind == Client::Kind::kClosing) c.dead = true;
      break;
    case OutQueue::Flush::kAgain: break;
    case OutQueue::Flush::kError: c.dead = true; break;
  }
}

void Monitor::reply(Client& c, const std::string& json) {
  std::string line = json + "\n";
  c.kind = Client::Kind::kClosing;
  c.out.push(line.data(), line.size(), Client::kMaxQueued + line.size());
  client_flush(c);
}

void Monitor::reply_error(Client& c, const std::string& message) {
  reply(c, "{\"ok\":false,\"error\":" + message_json(message) + "}");
}

void Monitor::run_command(Client& c, std::string line, std::string rest) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  try {
    command(c, split_words(line), rest);
  } catch (const SysError& e) {
    reply(c, "{\"ok\":false,\"error\":{\"call\":" + json_quote(e.call()) + ",\"target\":" + json_quote(e.target()) +
                 ",\"errno\":" + std::to_string(e.err()) + ",\"message\":" + json_quote(e.what()) + "}}");
  } catch (const std::exception& e) {
    reply_error(c, e.what());
  }
}

void Monitor::command(Client& c, const std::vector<std::string>& w, std::string& rest) {
  if (w.empty()) return reply_error(c, "empty command");
  const std::string& cmd = w[0];

  if (cmd == "state" && w.size() == 1) {
    std::string s = std::string("{\"status\":\"") +
                    (phase_ >= Phase::kExited    ? "exited"
                     : phase_ == Phase::kRunning ? "running"
                                                 : "created") +
                    "\",\"pid\":" + std::to_string(container_pid_ > 0 ? container_pid_ : 0);
    if (phase_ >= Phase::kExited)
      s += ",\"exitCode\":" + std::to_string(exit_code_) + ",\"oomKilled\":" + (oom_killed_ ? "true" : "false");
    return reply(c, s + "}");
  }

  if (cmd == "start" && w.size() == 1) {
    if (!error_json_.empty()) return reply(c, "{\"ok\":false,\"error\":" + error_json_ + "}");
    if (phase_ >= Phase::kExited) return reply_error(c, "process has exited");
    if (phase_ == Phase::kRunning || exec_ok_) return reply_error(c, "process already started");
    if (phase_ == Phase::kCreating) return reply_error(c, "process is not ready yet");
    if (!start_sent_) {
      if (!sync_.valid()) return reply_error(c, "sync channel to skiff-init is closed");
      if (::send(sync_.get(), "start", 5, MSG_NOSIGNAL) < 0) throw SysError("send", "start on the sync channel", errno);
      start_sent_ = true;
    }
    c.kind = Client::Kind::kStart;  // answered on EOF or `error` of the sync channel
    return;
  }

  if (cmd == "wait" && w.size() == 1) {
    if (phase_ == Phase::kFinished) return reply(c, exit_json());
    c.kind = Client::Kind::kWait;
    return;
  }

  if (cmd == "kill" && w.size() == 2) {
    long long sig;
    if (!parse_int64(w[1].c_str(), sig) || sig < 1 || sig > 64) return reply_error(c, "invalid signal " + w[1]);
    if (phase_ >= Phase::kExited) return reply(c, "{\"ok\":true}");
    pid_t target = container_pid_ > 0 ? container_pid_ : init_pid_;
    if (target <= 0) return reply_error(c, "no process to signal");
    if (::kill(target, static_cast<int>(sig)) < 0 && errno != ESRCH)
      throw SysError("kill", "pid " + std::to_string(target) + " signal " + std::to_string(sig), errno);
    return reply(c, "{\"ok\":true}");
  }

  if (cmd == "resize" && w.size() == 3) {
    long long rows, cols;
    if (!parse_int64(w[1].c_str(), rows) || !parse_int64(w[2].c_str(), cols) || rows < 0 || cols < 0 || rows > 65535 ||
        cols > 65535)
      return reply_error(c, "invalid size " + w[1] + " " + w[2]);
    if (!io_.tty || !io_.master.valid()) return reply_error(c, "the process has no tty");
    struct winsize ws;
    memset(&ws, 0, sizeof ws);
    ws.ws_row = static_cast<unsigned short>(rows);
    ws.ws_col = static_cast<unsigned short>(cols);
    check(::ioctl(io_.master.get(), TIOCSWINSZ, &ws), "ioctl TIOCSWINSZ", "pty master");
    return reply(c, "{\"ok\":true}");
  }

  if (cmd == "attach" && (w.size() == 4 || (w.size() == 5 && w[4] == "hold"))) {
    if (!parse_attach_args(c, w[1], w[2], w[3])) return reply_error(c, "usage: attach <0|1> <0|1> <0|1> [hold]");
    c.holds_output = w.size() == 5;
    if (phase_ == Phase::kFinished) {
      c.kind = Client::Kind::kClosing;
      c.dead = true;  // nothing more will come
      return;
    }
    c.kind = Client::Kind::kAttach;
    if (c.want_stdin && !rest.empty()) feed_stdin(rest.data(), rest.size());
    if (c.read_closed) on_stdin_eof(c);
    return;
  }

  reply_error(c, "unknown command: " + cmd);
}

}  // namespace skiff::monitor
