#include "monitor/container_io.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/error.h"
#include "monitor/util.h"

namespace skiff::monitor {

namespace {

struct Pipe {
  UniqueFd r, w;
};

Pipe make_pipe(const char* what) {
  int fds[2];
  check(::pipe2(fds, O_CLOEXEC), "pipe2", what);
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace

ContainerIo ContainerIo::create(bool tty, bool open_stdin) {
  ContainerIo io;
  io.tty = tty;
  if (tty) {
    // The pty must come from the container's own devpts (so ttyname() works inside): skiff-init
    // opens it there and sends us the master over the sync socket ("pty" + SCM_RIGHTS).
    io.child_stdin.reset(check(::open("/dev/null", O_RDWR | O_CLOEXEC), "open", "/dev/null"));
    return io;
  }
  Pipe out = make_pipe("container stdout");
  Pipe err = make_pipe("container stderr");
  io.stdout_r = std::move(out.r);
  io.child_stdout = std::move(out.w);
  io.stderr_r = std::move(err.r);
  io.child_stderr = std::move(err.w);
  set_nonblock(io.stdout_r.get());
  set_nonblock(io.stderr_r.get());
  if (open_stdin) {
    Pipe in = make_pipe("container stdin");
    io.child_stdin = std::move(in.r);
    io.stdin_w = std::move(in.w);
    set_nonblock(io.stdin_w.get());
  } else {
    io.child_stdin.reset(check(::open("/dev/null", O_RDONLY | O_CLOEXEC), "open", "/dev/null"));
  }
  return io;
}

void ContainerIo::close_child_ends() {
  child_stdin.reset();
  child_stdout.reset();
  child_stderr.reset();
}

pid_t spawn_init(const std::string& mode, const std::string& bundle, ContainerIo& io, int sync_fd) {
  // Everything the child needs is prepared before fork.
  const char* argv[] = {"skiff-init", mode.c_str(), bundle.c_str(), nullptr};
  int src[4];
  src[0] = io.child_stdin.get();
  src[1] = io.tty ? io.child_stdin.get() : io.child_stdout.get();
  src[2] = io.tty ? io.child_stdin.get() : io.child_stderr.get();
  src[3] = sync_fd;
  std::string exec_error_prefix = "error {\"call\":\"execve\",\"target\":\"skiff-init\",\"errno\":";

  pid_t pid = ::fork();
  if (pid < 0) throw SysError("fork", "skiff-init", errno);
  if (pid > 0) return pid;

  // Child: single-threaded copy of the monitor; only plain syscalls from here on.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  setsid();
  // Move the sources out of the way of 0..3 first: a source may already sit at its target
  // number (dup2 onto itself would keep O_CLOEXEC) or at another target number.
  int hi[4];
  for (int k = 0; k < 4; k++) {
    hi[k] = ::fcntl(src[k], F_DUPFD, 100);
    if (hi[k] < 0) _exit(127);
  }
  for (int k = 0; k < 4; k++) {
    if (::dup2(hi[k], k) < 0) _exit(127);
  }
  // kInitFd stays (CLOEXEC): the kernel closes it once it has loaded the program.
  if (::syscall(SYS_close_range, kInitFd + 1U, ~0U, 0U) < 0) {
    long max = ::sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 1 << 20) max = 1 << 20;
    for (long fd = kInitFd + 1; fd < max; fd++) ::close(static_cast<int>(fd));
  }
  ::syscall(SYS_execveat, kInitFd, "", const_cast<char* const*>(argv), environ, AT_EMPTY_PATH);
  int err = errno;
  char msg[1024];
  // strerror texts are plain ASCII without quotes or backslashes.
  int n = snprintf(msg, sizeof msg, "%s%d,\"message\":\"execve %s: %s\"}", exec_error_prefix.c_str(), err, "skiff-init",
                   strerror(err));
  if (n > 0)
    ::send(3, msg, static_cast<size_t>(n) < sizeof msg ? static_cast<size_t>(n) : sizeof msg - 1, MSG_NOSIGNAL);
  _exit(127);
}

}  // namespace skiff::monitor
