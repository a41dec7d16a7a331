// The container's stdio as the monitor holds it, and the start of skiff-init.
//
// Without a tty: pipes for stdout and stderr, and for stdin with --stdin (else /dev/null).
// With a tty: a pty pair; the slave becomes fds 0, 1 and 2 of skiff-init. The slave is opened
// O_NOCTTY and skiff-init is started in a new session without a controlling terminal: the
// process that execs the user's program makes the slave its controlling tty
// (setsid + TIOCSCTTY), since a terminal owned by skiff-init's session would hang up the
// container when skiff-init exits.
#pragma once
#include <sys/types.h>

#include <string>

#include "common/fd.h"

namespace skiff::monitor {

struct ContainerIo {
  bool tty = false;
  // Monitor side (non-blocking).
  UniqueFd master;    // tty only, from skiff-init's "pty" message: read output, write input, TIOCSWINSZ
  UniqueFd stdin_w;   // no tty, --stdin
  UniqueFd stdout_r;  // no tty
  UniqueFd stderr_r;  // no tty
  // Container side, closed in the monitor once skiff-init is started.
  UniqueFd child_stdin, child_stdout, child_stderr;

  static ContainerIo create(bool tty, bool open_stdin);  // throws SysError
  void close_child_ends();
};

// Where the real monitor keeps skiff-init's sealed memfd (CLOEXEC): right above the report pipe.
constexpr int kInitFd = 4;

// fork + exec `skiff-init <mode> <bundle>` from the sealed memfd at kInitFd, with io's child
// ends as 0,1,2 and sync_fd as 3; every other fd is closed. If execve fails, the child reports
// `error <json>` on the sync socket and exits 127. Returns the child pid. Throws SysError when
// fork fails.
pid_t spawn_init(const std::string& mode, const std::string& bundle, ContainerIo& io, int sync_fd);

}  // namespace skiff::monitor
