// The last steps before the user's program runs, shared by create and exec: session and
// controlling tty, rlimits, oom score, user and groups, working directory, capabilities,
// seccomp, then execve. Only fds 0-2 survive into the program.
#pragma once
#include "init/spec.h"
#include "init/sync.h"

namespace skiff {

[[noreturn]] void exec_process(const ProcessSpec& p);

}  // namespace skiff
