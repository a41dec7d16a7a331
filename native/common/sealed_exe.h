// Sealed in-memory copies of the runtime's own executables (the CVE-2019-5736 class).
//
// A process that runs where a container can see it (container init before its execve, an exec's
// helper, the monitor, `skiff-init net`) exposes /proc/<pid>/exe. A container process that
// opens that link, waits for the helper to exit and reopens it for writing would write the host
// binary that every later container start runs as root. Running from a memfd sealed against
// writes, growth and shrinking means /proc/<pid>/exe names that memfd, never the host file, and
// no write through it can succeed.
//
// The daemon makes one sealed copy of skiff-init and of skiff-monitor at start and runs every
// helper from them (shared pages, nothing copied per container); a helper started from a plain
// path (tests, hand use) re-runs itself from a private sealed copy first.
#pragma once
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "common/error.h"
#include "common/fd.h"

extern char** environ;

namespace skiff {

constexpr int kExeSeals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U  // Linux 6.3 (glibc headers may predate it)
#endif

// True when fd is a memfd that can never be written again.
inline bool is_sealed(int fd) {
  int seals = ::fcntl(fd, F_GET_SEALS);
  return seals >= 0 && (seals & kExeSeals) == kExeSeals;
}

// A sealed memfd (O_CLOEXEC) holding the whole content of src.
inline UniqueFd sealed_copy(int src, const std::string& name) {
  struct stat st;
  check(::fstat(src, &st), "fstat", name);
  if (!S_ISREG(st.st_mode)) throw SysError("sealed copy", name + " is not a regular file", EINVAL);
  // MFD_EXEC: with vm.memfd_noexec=1 (Linux >= 6.3) a memfd is otherwise made non-executable;
  // older kernels refuse the flag (EINVAL) and every memfd is executable there.
  int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (fd < 0 && errno == EINVAL) fd = ::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  UniqueFd mem(check(fd, "memfd_create", name + " (with vm.memfd_noexec=2 no executable memfd can be made)"));
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = ::sendfile(mem.get(), src, &off, static_cast<size_t>(st.st_size - off));
    if (n < 0 && errno == EINTR) continue;
    check(n, "sendfile", "copy of " + name);
    if (n == 0) throw SysError("sendfile", name + " shrank while it was copied", EIO);
  }
  check(::fcntl(mem.get(), F_ADD_SEALS, kExeSeals), "fcntl(F_ADD_SEALS)", name);
  return mem;
}

// A sealed copy of the executable at path (the daemon's copies; the monitor's --init path).
inline UniqueFd sealed_copy_of(const std::string& path, const std::string& name) {
  UniqueFd src(check(::open(path.c_str(), O_RDONLY | O_CLOEXEC), "open", path));
  if (is_sealed(src.get())) {
    // Already a sealed copy (say /proc/self/fd/N of the daemon's): share it.
    return UniqueFd(check(::fcntl(src.get(), F_DUPFD_CLOEXEC, 0), "fcntl(F_DUPFD_CLOEXEC)", path));
  }
  return sealed_copy(src.get(), name);
}

// Returns when this process runs from a sealed copy; otherwise re-executes itself (same argv and
// environment) from one and never returns.
inline void run_from_sealed_copy(char** argv, const std::string& name) {
  UniqueFd self(check(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC), "open", "/proc/self/exe"));
  if (is_sealed(self.get())) return;
  UniqueFd mem = sealed_copy(self.get(), name);
  self.reset();
  ::syscall(SYS_execveat, mem.get(), "", argv, environ, AT_EMPTY_PATH);
  throw SysError("execveat", "sealed copy of " + name, errno);
}

}  // namespace skiff
