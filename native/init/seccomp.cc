// Default seccomp policy for container processes.
//
// Shape of the policy (isolation.md):
//   * anything not listed fails with EPERM;
//   * an allowlist of the calls ordinary programs make (libc start-up, shells, coreutils,
//     language runtimes): files, memory, signals, time, sockets, processes, IPC, polling;
//   * calls that are only useful with a capability are allowed only when the process will
//     hold that capability (the kernel checks the capability too; the filter just keeps the
//     attack surface of the syscall away from processes that could never use it);
//   * some calls are never allowed (kernel keyrings, userfaultfd, io_uring, kexec, swap,
//     pivot_root, reboot, ...), not even with the matching capability;
//   * clone is allowed without namespace flags, clone3 answers ENOSYS (its flags live in
//     memory the filter cannot read, and ENOSYS makes glibc fall back to clone).
//
// The filter covers the native architecture and, on x86-64, the i386 and x32 ABIs, so 32-bit
// programs keep working. libseccomp translates each rule to every architecture in the filter;
// names that exist on only one of them (socketcall, stat64, ...) only produce rules there.
//
// A second, tiny filter is stacked on top: syscall numbers above the highest one this
// libseccomp knows (i.e. syscalls newer than the library, which the allowlist cannot name)
// fail with ENOSYS instead of EPERM, so libc wrappers take their fallback paths the same way
// they would on an older kernel.
#include "init/seccomp.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>

#include "common/error.h"
#include "common/fd.h"

namespace skiff {
namespace {

// Capability numbers (linux/capability.h), spelled out so this file does not depend on the
// installed kernel headers knowing the newest ones.
constexpr int kCapDacReadSearch = 2;
constexpr int kCapSysModule = 16;
constexpr int kCapSysRawio = 17;
constexpr int kCapSysChroot = 18;
constexpr int kCapSysPtrace = 19;
constexpr int kCapSysPacct = 20;
constexpr int kCapSysAdmin = 21;
constexpr int kCapSysNice = 23;
constexpr int kCapSysTime = 25;
constexpr int kCapSysTtyConfig = 26;
constexpr int kCapSyslog = 34;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

// The syscall tables are laid out by hand, by topic: clang-format would put a name per line.
// clang-format off
// Allowed for every container process.
const char* const kAlways[] = {
    // --- process life cycle, identity, scheduling
    "arch_prctl", "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "vfork",
    "wait4", "waitid", "waitpid", "getpid", "getppid", "gettid", "getpgid", "getpgrp", "setpgid",
    "getsid", "setsid", "getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid",
    "getegid32", "getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups", "getgroups32",
    "setuid", "setuid32", "setgid", "setgid32", "setreuid", "setreuid32", "setregid", "setregid32",
    "setresuid", "setresuid32", "setresgid", "setresgid32", "setfsuid", "setfsuid32", "setfsgid",
    "setfsgid32", "setgroups", "setgroups32", "prctl", "set_tid_address", "set_robust_list",
    "get_robust_list", "rseq", "set_thread_area", "get_thread_area", "modify_ldt", "membarrier",
    "seccomp", "restart_syscall", "getpriority", "setpriority", "sched_yield", "sched_getaffinity",
    "sched_setaffinity", "sched_getparam", "sched_setparam", "sched_getscheduler",
    "sched_setscheduler", "nice", "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_getattr", "sched_setattr", "getrlimit", "ugetrlimit",
    "setrlimit", "prlimit64", "getrusage", "times", "uname", "sysinfo", "getcpu", "ioprio_get",
    "ioprio_set", "pidfd_open", "pidfd_send_signal", "process_mrelease",
    // Debuggers and tracers (safe since Linux 4.8, where seccomp is re-checked after ptrace stops).
    "ptrace", "process_vm_readv", "process_vm_writev",

    // --- signals
    "kill", "tkill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_sigqueueinfo",
    "rt_tgsigqueueinfo", "sigaction", "sigprocmask", "sigreturn", "sigpending", "sigsuspend", "signal",
    "sigaltstack", "signalfd", "signalfd4", "pause", "alarm",

    // --- clocks and timers (adjtimex/clock_adjtime only read without CAP_SYS_TIME: the kernel
    // refuses any change of the clock without it)
    "time", "gettimeofday", "clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64",
    "clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "adjtimex", "clock_adjtime",
    "clock_adjtime64", "getitimer", "setitimer", "timer_create", "timer_delete", "timer_settime",
    "timer_settime64", "timer_gettime", "timer_gettime64", "timer_getoverrun", "timerfd_create",
    "timerfd_settime", "timerfd_settime64", "timerfd_gettime", "timerfd_gettime64",

    // --- memory
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync", "mlock",
    "mlock2", "munlock", "mlockall", "munlockall", "remap_file_pages", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "map_shadow_stack", "memfd_create",

    // --- files, directories, descriptors
    "open", "openat", "openat2", "creat", "close", "close_range", "read", "readv", "pread64", "preadv",
    "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2", "lseek", "_llseek", "dup", "dup2",
    "dup3", "fcntl", "fcntl64", "flock", "fsync", "fdatasync", "sync", "syncfs", "sync_file_range",
    "sync_file_range2", "arm_sync_file_range", "fallocate", "fadvise64", "fadvise64_64",
    "arm_fadvise64_64", "readahead", "truncate", "truncate64", "ftruncate", "ftruncate64", "stat",
    "stat64", "lstat", "lstat64", "fstat", "fstat64", "fstatat64", "newfstatat", "statx", "statfs",
    "statfs64", "fstatfs", "fstatfs64", "access", "faccessat", "faccessat2", "chmod", "fchmod",
    "fchmodat", "fchmodat2", "chown", "chown32", "lchown", "lchown32", "fchown", "fchown32",
    "fchownat", "umask", "utime", "utimes", "futimesat", "utimensat", "utimensat_time64", "link",
    "linkat", "symlink", "symlinkat", "unlink", "unlinkat", "rename", "renameat", "renameat2", "mkdir",
    "mkdirat", "rmdir", "mknod", "mknodat", "readlink", "readlinkat", "getcwd", "chdir", "fchdir",
    "getdents", "getdents64", "ioctl", "sendfile", "sendfile64", "splice", "tee", "vmsplice",
    "copy_file_range", "getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr",
    "listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr",
    "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "fanotify_mark",
    "cachestat", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",

    // --- waiting on many things, futexes, pipes, event descriptors
    "select", "_newselect", "pselect6", "pselect6_time64", "poll", "ppoll", "ppoll_time64",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "eventfd", "eventfd2", "futex", "futex_time64", "futex_waitv", "futex_wake", "futex_wait",
    "futex_requeue", "pipe", "pipe2",

    // --- Linux AIO (io_uring is not here on purpose)
    "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
    "io_pgetevents_time64",

    // --- System V and POSIX IPC (private IPC namespace)
    "ipc", "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop",
    "semtimedop_time64", "semctl", "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink",
    "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64", "mq_notify",
    "mq_getsetattr",

    // --- sockets (socket itself has its own rule below)
    "socketcall", "socketpair", "bind", "connect", "listen", "accept", "accept4", "getsockname",
    "getpeername", "sendto", "recvfrom", "send", "recv", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
    "recvmmsg_time64", "shutdown", "setsockopt", "getsockopt",

    // --- misc
    "getrandom",
    // 32-bit ARM programs on arm64 hosts (TLS setup, instruction cache flushes, debugger traps)
    "set_tls", "cacheflush", "breakpoint",
};

// Allowed only when the process will hold the capability.
struct CapGated {
  int cap;
  std::initializer_list<const char*> names;
};
const CapGated kCapGated[] = {
    {kCapSysAdmin,
     {"mount", "umount", "umount2", "mount_setattr", "move_mount", "open_tree", "fsopen", "fsconfig",
      "fsmount", "fspick", "unshare", "setns", "sethostname", "setdomainname", "bpf",
      "perf_event_open", "fanotify_init", "name_to_handle_at", "lookup_dcookie", "quotactl",
      "quotactl_fd", "syslog"}},
    {kCapBpf, {"bpf"}},
    {kCapPerfmon, {"perf_event_open"}},
    {kCapSyslog, {"syslog"}},
    {kCapSysModule, {"init_module", "finit_module", "delete_module"}},
    {kCapSysChroot, {"chroot"}},
    {kCapSysPacct, {"acct"}},
    {kCapSysPtrace, {"kcmp", "pidfd_getfd", "process_madvise"}},
    {kCapSysRawio, {"iopl", "ioperm"}},
    {kCapSysTime, {"settimeofday", "stime", "clock_settime", "clock_settime64"}},
    {kCapSysNice, {"get_mempolicy", "set_mempolicy", "set_mempolicy_home_node", "mbind", "migrate_pages",
                   "move_pages"}},
    {kCapSysTtyConfig, {"vhangup"}},
    {kCapDacReadSearch, {"open_by_handle_at"}},
};
// clang-format on
// Never allowed (listed for the reader; they simply have no rule): keyctl, add_key,
// request_key, userfaultfd, io_uring_setup, io_uring_enter, io_uring_register, kexec_load,
// kexec_file_load, swapon, swapoff, pivot_root, reboot, vm86, vm86old, uselib, _sysctl,
// nfsservctl, create_module, get_kernel_syms, query_module, memfd_secret.

// The namespace flags clone must not carry without CAP_SYS_ADMIN.
constexpr uint64_t kCloneNamespaceFlags =
    CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;
// s390 passes clone's stack pointer first and its flags second.
#if defined(__s390__) || defined(__s390x__)
constexpr unsigned kCloneFlagsArg = 1;
#else
constexpr unsigned kCloneFlagsArg = 0;
#endif

// personality(2) values allowed: the default Linux domain, the 32-bit uname flavour (used by
// setarch/linux32), UNAME26, both together, and 0xffffffff (query only).
constexpr uint64_t kPersonalities[] = {0x0, 0x0008, 0x20000, 0x20008, 0xffffffff};

// socket(2) families other than AF_VSOCK (40), which is not namespaced: [0,40), 41, [42,64).
// Matched on the low 32 bits only (the kernel ignores the high half of the int argument).
struct MaskedValue {
  uint64_t mask, value;
};
constexpr MaskedValue kSocketFamilies[] = {
    {0xffffffe0, 0},   // 0..31
    {0xfffffff8, 32},  // 32..39
    {0xffffffff, 41},  // 41
    {0xfffffffe, 42},  // 42..43
    {0xfffffffc, 44},  // 44..47
    {0xfffffff0, 48},  // 48..63
};

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

// libseccomp returns -errno.
void check_scmp(int rc, const char* call, const std::string& what) {
  if (rc < 0) throw SysError(call, what, -rc);
}

int resolve(const char* name) { return seccomp_syscall_resolve_name(name); }

void add_rule(scmp_filter_ctx ctx, uint32_t action, const char* name, std::initializer_list<scmp_arg_cmp> args) {
  int nr = resolve(name);
  if (nr == __NR_SCMP_ERROR) return;  // unknown to this libseccomp on every architecture
  int rc =
      seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(args.size()), args.size() ? args.begin() : nullptr);
  check_scmp(rc, "seccomp_rule_add", name);
}

void add_arches(scmp_filter_ctx ctx) {
  std::vector<uint32_t> extra;
  switch (seccomp_arch_native()) {
    case SCMP_ARCH_X86_64: extra = {SCMP_ARCH_X86, SCMP_ARCH_X32}; break;
    case SCMP_ARCH_AARCH64: extra = {SCMP_ARCH_ARM}; break;
    default: break;
  }
  for (uint32_t arch : extra) {
    int rc = seccomp_arch_add(ctx, arch);
    if (rc == -EEXIST) continue;
    check_scmp(rc, "seccomp_arch_add", std::to_string(arch));
  }
}

// Lowest syscall number above every number this libseccomp can name for arch (0 if none).
uint32_t first_unknown_syscall(uint32_t arch) {
  // Numbers 424 and up are shared by all architectures; anything the library knows lies below
  // 1024 on the ABIs handled here (x32's bit is not part of the number libseccomp reports).
  uint32_t first = 0;
  for (int nr = 0; nr < 1024; ++nr) {
    char* name = seccomp_syscall_resolve_num_arch(arch, nr);
    if (name) {
      first = static_cast<uint32_t>(nr) + 1;
      std::free(name);
    }
  }
  return first;
}

// Stacked filter: syscalls newer than the library answer ENOSYS instead of EPERM. The kernel
// runs every filter and keeps the strictest action; between two ERRNO results the most
// recently loaded filter wins, which is why this one is loaded after the main filter.
std::vector<sock_filter> build_enosys_filter() {
  struct Arch {
    uint32_t audit;
    uint32_t first_unknown;
    bool x32_bit;  // numbers with bit 30 set belong to x32; leave them to the main filter
  };
  std::vector<Arch> arches;
  uint32_t native = seccomp_arch_native();
  arches.push_back({native, first_unknown_syscall(native), native == SCMP_ARCH_X86_64});
  if (native == SCMP_ARCH_X86_64) arches.push_back({SCMP_ARCH_X86, first_unknown_syscall(SCMP_ARCH_X86), false});
  if (native == SCMP_ARCH_AARCH64) arches.push_back({SCMP_ARCH_ARM, first_unknown_syscall(SCMP_ARCH_ARM), false});
  arches.erase(std::remove_if(arches.begin(), arches.end(), [](const Arch& a) { return a.first_unknown == 0; }),
               arches.end());
  if (arches.empty()) return {};

  // Layout: load arch; per arch [jeq arch; load nr; (jset x32 bit); jge first_unknown];
  // then "allow" and "enosys". Jump offsets are counted from the next instruction.
  size_t len = 1;
  for (const auto& a : arches) len += a.x32_bit ? 4 : 3;
  const size_t allow = len, enosys = len + 1;
  std::vector<sock_filter> prog;
  auto off = [&](size_t target) { return static_cast<uint8_t>(target - prog.size() - 1); };
  prog.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
  for (const auto& a : arches) {
    size_t block_end = prog.size() + (a.x32_bit ? 4 : 3);
    prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, a.audit, 0, off(block_end)));
    prog.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
    if (a.x32_bit) prog.push_back(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x40000000u, off(allow), 0));
    prog.push_back(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, a.first_unknown, off(enosys), off(allow)));
  }
  prog.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  prog.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)));

  return prog;
}

void load_program(const std::vector<sock_filter>& prog, const char* what) {
  if (prog.empty()) return;
  struct sock_fprog fprog {};
  fprog.len = static_cast<unsigned short>(prog.size());
  fprog.filter = const_cast<sock_filter*>(prog.data());
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) throw SysError("seccomp", what, errno);
}

// The BPF libseccomp generates for ctx, read back through a memfd.
std::vector<sock_filter> export_bpf(scmp_filter_ctx ctx) {
  UniqueFd mem(::memfd_create("seccomp-bpf", MFD_CLOEXEC));
  if (!mem.valid()) throw SysError("memfd_create", "seccomp export", errno);
  check_scmp(seccomp_export_bpf(ctx, mem.get()), "seccomp_export_bpf", "default policy");
  off_t size = ::lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0)
    throw SysError("seccomp_export_bpf", "unexpected program size " + std::to_string(size), EINVAL);
  std::vector<sock_filter> prog(static_cast<size_t>(size) / sizeof(sock_filter));
  if (::pread(mem.get(), prog.data(), static_cast<size_t>(size), 0) != size)
    throw SysError("pread", "seccomp export", errno);
  return prog;
}

}  // namespace

void load_seccomp(const SeccompPrograms& p) {
  load_program(p.main, "load default policy");
  // Loaded second: between two ERRNO results the most recently loaded filter wins.
  load_program(p.enosys, "load ENOSYS filter for new syscalls");
}

SeccompPrograms default_seccomp_cached(const std::vector<int>& caps, const std::string& cache_dir) {
  if (cache_dir.empty()) return build_default_seccomp(caps);
  uint64_t mask = 0;
  for (int c : caps)
    if (c >= 0 && c < 64) mask |= 1ull << c;
  // The build stamp keys the cache to this binary: a new policy never meets an old program.
  std::string stamp = std::to_string(std::hash<std::string>{}(__DATE__ " " __TIME__));
  char name[96];
  std::snprintf(name, sizeof name, "/default-%016llx-%s.bpf", static_cast<unsigned long long>(mask), stamp.c_str());
  std::string file = cache_dir + name;

  UniqueFd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (in.valid()) {
    uint32_t lens[2];
    if (::read(in.get(), lens, sizeof lens) == sizeof lens && lens[0] > 0 && lens[0] < 65536 && lens[1] < 65536) {
      SeccompPrograms p;
      p.main.resize(lens[0]);
      p.enosys.resize(lens[1]);
      ssize_t want0 = static_cast<ssize_t>(lens[0] * sizeof(sock_filter));
      ssize_t want1 = static_cast<ssize_t>(lens[1] * sizeof(sock_filter));
      if (::read(in.get(), p.main.data(), static_cast<size_t>(want0)) == want0 &&
          (want1 == 0 || ::read(in.get(), p.enosys.data(), static_cast<size_t>(want1)) == want1))
        return p;
    }
  }
  SeccompPrograms p = build_default_seccomp(caps);
  std::string tmp = file + "." + std::to_string(::getpid()) + ".tmp";
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (out.valid()) {
    uint32_t lens[2] = {static_cast<uint32_t>(p.main.size()), static_cast<uint32_t>(p.enosys.size())};
    bool ok = ::write(out.get(), lens, sizeof lens) == sizeof lens &&
              ::write(out.get(), p.main.data(), p.main.size() * sizeof(sock_filter)) ==
                  static_cast<ssize_t>(p.main.size() * sizeof(sock_filter)) &&
              ::write(out.get(), p.enosys.data(), p.enosys.size() * sizeof(sock_filter)) ==
                  static_cast<ssize_t>(p.enosys.size() * sizeof(sock_filter));
    out.reset();
    if (!ok || ::rename(tmp.c_str(), file.c_str()) < 0) ::unlink(tmp.c_str());
  }
  return p;
}

void apply_default_seccomp(const std::vector<int>& caps) { load_seccomp(build_default_seccomp(caps)); }

SeccompPrograms build_default_seccomp(const std::vector<int>& caps) {
  auto has = [&](int cap) { return std::find(caps.begin(), caps.end(), cap) != caps.end(); };

  Ctx owner(seccomp_init(SCMP_ACT_ERRNO(EPERM)));
  if (!owner) throw SysError("seccomp_init", "default policy", errno ? errno : ENOMEM);
  scmp_filter_ctx ctx = owner.get();

  // The caller decides about no_new_privs; it loads the filter while holding CAP_SYS_ADMIN.
  check_scmp(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0), "seccomp_attr_set", "CTL_NNP");
  // Kill the whole process, not one thread, on an architecture outside the filter.
  (void)seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 5)
  // Binary search over syscall numbers instead of a linear chain; real errnos from seccomp_load.
  (void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  (void)seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
#endif
  add_arches(ctx);

  std::set<std::string> allowed(std::begin(kAlways), std::end(kAlways));
  for (const auto& g : kCapGated)
    if (has(g.cap)) allowed.insert(g.names.begin(), g.names.end());
  for (const auto& name : allowed) add_rule(ctx, SCMP_ACT_ALLOW, name.c_str(), {});

  if (has(kCapSysAdmin)) {
    add_rule(ctx, SCMP_ACT_ALLOW, "clone", {});
    add_rule(ctx, SCMP_ACT_ALLOW, "clone3", {});
  } else {
    add_rule(ctx, SCMP_ACT_ALLOW, "clone", {SCMP_CMP(kCloneFlagsArg, SCMP_CMP_MASKED_EQ, kCloneNamespaceFlags, 0)});
    add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", {});
  }
  for (uint64_t p : kPersonalities)
    add_rule(ctx, SCMP_ACT_ALLOW, "personality", {SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffff, p)});
  for (const auto& f : kSocketFamilies)
    add_rule(ctx, SCMP_ACT_ALLOW, "socket", {SCMP_A0(SCMP_CMP_MASKED_EQ, f.mask, f.value)});

  return {export_bpf(ctx), build_enosys_filter()};
}

}  // namespace skiff
