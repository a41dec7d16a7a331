// The default seccomp policy applied by skiff-init right before it drops privileges and execs
// the container's process (see native/init/seccomp.cc for what it allows and why).
#pragma once
#include <linux/filter.h>

#include <string>
#include <vector>

namespace skiff {

// The default policy as raw BPF: the main filter and a small second one that makes syscalls
// newer than libseccomp answer ENOSYS. Building them costs ~15 ms (three ABIs); loading ~0.1 ms.
struct SeccompPrograms {
  std::vector<sock_filter> main, enosys;
};

SeccompPrograms build_default_seccomp(const std::vector<int>& caps);
void load_seccomp(const SeccompPrograms& programs);

// build_default_seccomp, cached in cache_dir (one file per capability set and skiff-init build,
// written atomically); an unreadable or missing cache only costs the build.
SeccompPrograms default_seccomp_cached(const std::vector<int>& caps, const std::string& cache_dir);

// Loads Docker's default policy: default action EPERM (SCMP_ACT_ERRNO(EPERM)), an allowlist of
// syscalls, and conditional rules that depend on the capabilities the process will hold
// (caps = CAP_* numbers). The caller must still hold CAP_SYS_ADMIN or have set no_new_privs;
// the filter itself does not set no_new_privs. Throws skiff::SysError on any failure.
void apply_default_seccomp(const std::vector<int>& caps);

}  // namespace skiff
