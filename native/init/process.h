// The last steps before the user's program runs, shared by create and exec: session and
// controlling tty, rlimits, oom score, user and groups, working directory, capabilities,
// seccomp, then execve. Only fds 0-2 survive into the program.
#pragma once
#include "init/seccomp.h"
#include "init/spec.h"

namespace skiff {

// seccomp: the programs to load when p.seccomp is set (built before clone, in the parent).
[[noreturn]] void exec_process(const ProcessSpec& p, const SeccompPrograms& seccomp);

}  // namespace skiff
