// The default seccomp policy applied by skiff-init right before it drops privileges and execs
// the container's process (see native/init/seccomp.cc for what it allows and why).
#pragma once
#include <vector>

namespace skiff {

// Loads Docker's default policy: default action EPERM (SCMP_ACT_ERRNO(EPERM)), an allowlist of
// syscalls, and conditional rules that depend on the capabilities the process will hold
// (caps = CAP_* numbers). The caller must still hold CAP_SYS_ADMIN or have set no_new_privs;
// the filter itself does not set no_new_privs. Throws skiff::SysError on any failure.
void apply_default_seccomp(const std::vector<int>& caps);

}  // namespace skiff
