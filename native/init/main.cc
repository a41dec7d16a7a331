// skiff-init: the single-threaded helper that makes a container process (`create`) or joins a
// running container (`exec`). It is started by the monitor with the process's stdio on fds 0-2
// and the sync socket on fd 3 (protocol: native/README.md):
//
//   monitor                skiff-init (parent)                 child (container pid 1 / exec'd process)
//      |  fork+exec  --->  opens the cgroups, setns(paths)
//      |                   clone3(CLONE_PARENT|CLONE_NEW*|  --->  writes "0" to its v1 cgroups' tasks,
//      |                          CLONE_INTO_CGROUP v2)           waits on the gate pipe
//      |                   opens the gate ----------------->   (cgroup namespace, when made late: run())
//      |                                                        rootfs, hostname, loopback (create only)
//      |                                                        (pty: "pty" + master fd)
//      |  <--- "pid N" --- exits 0
//      |  <--- "ready" ------------------------------------------------   (the monitor reports ready
//      |                                                                   once it has both)
//      |  --- "start" ----------------------------------------------->  rlimits, user, cwd, caps, seccomp
//      |  <--- EOF (execve closed fd 3) or "error {json}" -------------
//
// With a new user namespace (--userns-remap), runc's order: the parent takes everything the
// child could no longer reach or make (HostSide: the root overlay on idmapped layers, bind
// sources, host device nodes) before the clone; the child is cloned into the new user namespace
// (CLONE_NEWUSER first, so its other namespaces are owned by it: sysfs, mqueue, devpts work);
// it has no ids there until its maps exist, so it waits on the gate, which the parent opens only
// after writing them:
//
//   skiff-init (parent)                                   child
//   prepare_host_side (idmapped clones, fsmount overlay)
//   clone3(CLONE_NEWUSER|CLONE_NEW*)  ------------------>  v1 cgroups ("0" to tasks, host creds)
//   write /proc/N/uid_map, gid_map                         blocks on the gate
//   opens the gate  ------------------------------------>  setgroups([]), setresgid/uid(0): the
//                                                          namespace's root, caps only in it
//                                                          rootfs: attaches the parent's mounts
#include <fcntl.h>
#include <net/if.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <sched.h>
#include <csignal>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "common/error.h"
#include "common/fd.h"
#include "common/sealed_exe.h"
#include "init/netconf.h"
#include "init/process.h"
#include "init/rootfs.h"
#include "init/spec.h"
#include "init/sync.h"
#include "init/userns.h"

namespace skiff {
namespace {

constexpr int kSyncFd = 3;

// Every mode runs where a container may see it (inside its namespaces, or beside it in the
// host's PID namespace): never from the host file (common/sealed_exe.h).
void run_sealed(char** argv) {
  run_from_sealed_copy(argv, "skiff-init");
  // Run from a memfd, the kernel names us after its fd number; ps should say what we are.
  ::prctl(PR_SET_NAME, "skiff-init", 0, 0, 0);
}

void bring_up_loopback() {
  UniqueFd s(check(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket", "AF_INET"));
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  check(::ioctl(s.get(), SIOCGIFFLAGS, &ifr), "ioctl(SIOCGIFFLAGS)", "lo");
  ifr.ifr_flags |= IFF_UP;
  check(::ioctl(s.get(), SIOCSIFFLAGS, &ifr), "ioctl(SIOCSIFFLAGS)", "lo");
}

struct NsKind {
  const char* type;
  int flag;
};
// Join order: user first (the others are owned by it: joining them needs its capabilities);
// cgroup after the cgroup itself is joined; mnt last, since it changes our root.
const NsKind kNamespaces[] = {{"user", CLONE_NEWUSER}, {"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC},
                              {"uts", CLONE_NEWUTS},   {"net", CLONE_NEWNET},       {"pid", CLONE_NEWPID},
                              {"mnt", CLONE_NEWNS}};

// Whether the namespace fd is our own user namespace (setns refuses to join it: EINVAL).
bool same_userns(int fd) {
  struct stat a {};
  struct stat b {};
  check(::fstat(fd, &a), "fstat", "user namespace to join");
  check(::stat("/proc/self/ns/user", &b), "stat", "/proc/self/ns/user");
  return a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

struct CgroupTargets;
void join_v1_cgroups(CgroupTargets& t);

[[noreturn]] void child_main(const Spec& spec, SyncChannel& sync, int gate, const SeccompPrograms& seccomp,
                             CgroupTargets& cgroups, bool late_cgroupns, HostSide& host) {
  try {
    join_v1_cgroups(cgroups);
    char b;
    while (::read(gate, &b, 1) < 0 && errno == EINTR) {
    }
    ::close(gate);
    // The maps exist now (the parent wrote them before opening the gate).
    if (spec.ns("user") != "host") become_userns_root();
    // Only now is the process in every one of its cgroups: a namespace made now is rooted there,
    // in each v1 hierarchy too (see run()).
    if (late_cgroupns) check(::unshare(CLONE_NEWCGROUP), "unshare", "cgroup namespace");
    if (spec.mode == "create") {
      if (spec.ns("uts") == "new" && !spec.hostname.empty())
        check(::sethostname(spec.hostname.data(), spec.hostname.size()), "sethostname", spec.hostname);
      if (spec.ns("net") == "new") bring_up_loopback();
      setup_rootfs(spec, host);
    }
    if (spec.process.tty) {
      UniqueFd master(open_container_pty(spec.mode == "create"));
      sync.send_fd("pty", master.get());
    }
    sync.send("ready");
    if (sync.recv() != "start") ::_exit(1);  // the monitor went away: never run the program
    exec_process(spec.process, seccomp);
  } catch (const SysError& e) {
    sync.send_error(e);
    ::_exit(e.call() == "exec" && e.err() == EACCES ? 126 : 127);
  } catch (const std::exception& e) {
    sync.send_error(e.what());
    ::_exit(127);
  }
}

// Where the container's process goes, opened before any namespace is joined (after setns(mnt)
// the paths would resolve in the container's filesystem).
//
// Moving a whole process through cgroup.procs takes the kernel's threadgroup rwsem for writing,
// which waits a full RCU grace period (~5 ms here). Two ways avoid it: on v2, clone3 places the
// child with CLONE_INTO_CGROUP; on v1, the child, still single-threaded, moves itself by writing
// "0" to each hierarchy's `tasks` file (a thread moving itself skips that lock).
struct CgroupTargets {
  UniqueFd v2_dir;       // O_PATH folder of the cgroup2 cgroup, for clone3
  UniqueFd v2_procs_fd;  // its cgroup.procs, when clone3 cannot be used
  std::string v2_procs;
  std::vector<UniqueFd> v1_tasks;  // written "0" by the child itself
  std::vector<std::string> v1_names;
};

CgroupTargets open_cgroup_targets(const Spec& spec) {
  CgroupTargets t;
  for (const auto& procs : spec.cgroup_procs) {
    std::string dir = procs.substr(0, procs.rfind('/'));
    UniqueFd d(check(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC), "open", dir));
    struct statfs sf {};
    check(::fstatfs(d.get(), &sf), "fstatfs", dir);
    if (sf.f_type == CGROUP2_SUPER_MAGIC) {
      if (t.v2_dir.valid()) throw config_error("two cgroup2 paths in cgroupProcs: " + t.v2_procs + ", " + procs);
      t.v2_dir = std::move(d);
      t.v2_procs = procs;
      t.v2_procs_fd = UniqueFd(check(::open(procs.c_str(), O_WRONLY | O_CLOEXEC), "open", procs));
    } else {
      std::string tasks = dir + "/tasks";
      t.v1_tasks.emplace_back(check(::open(tasks.c_str(), O_WRONLY | O_CLOEXEC), "open", tasks));
      t.v1_names.push_back(tasks);
    }
  }
  return t;
}

// Through the fd opened before any setns: the kernel checks the move against the cgroup
// namespace the file was opened in.
void join_v2_cgroup(const CgroupTargets& t, pid_t pid) {
  std::string v = std::to_string(pid);
  check(::write(t.v2_procs_fd.get(), v.data(), v.size()), "write", t.v2_procs + " <- " + v);
}

// Runs in the child before anything else: afterwards every process it makes is limited.
void join_v1_cgroups(CgroupTargets& t) {
  for (size_t i = 0; i < t.v1_tasks.size(); ++i) {
    check(::write(t.v1_tasks[i].get(), "0", 1), "write", t.v1_names[i] + " <- 0 (self)");
    t.v1_tasks[i].reset();
  }
}

// Clones the container process, into its cgroup2 cgroup when there is one. Sets *placed when
// the v2 part is done (the v1 part is always the child's own job).
// Not after joining a container's cgroup namespace (exec): clone3 then refuses a target outside
// our own cgroup's namespace (ENOENT), so the child is moved after the clone.
long clone_into_cgroup(CgroupTargets& t, unsigned long flags, bool joined_cgroupns, bool* placed) {
  *placed = !t.v2_dir.valid();
  if (!t.v2_dir.valid() || joined_cgroupns) return ::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr);
  struct clone_args args {};
  args.flags = (flags & ~0xffUL) | CLONE_INTO_CGROUP;
  // clone3 rejects an exit signal together with CLONE_PARENT (EINVAL): the child then inherits
  // ours, as the legacy clone does.
  args.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
  args.cgroup = static_cast<uint64_t>(t.v2_dir.get());
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid >= 0 || (errno != ENOSYS && errno != E2BIG)) {
    *placed = pid >= 0;
    return pid;
  }
  // An old kernel without clone3: with a private cgroup namespace join first (its root is the
  // cgroup at clone time), otherwise move the child after the clone.
  if (flags & CLONE_NEWCGROUP) {
    join_v2_cgroup(t, ::getpid());
    *placed = true;
  }
  return ::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr);
}

void run(const Spec& spec, SyncChannel& sync) {
  // Compiled here, before any namespace is joined, so the cache folder is reachable.
  SeccompPrograms seccomp;
  if (spec.process.seccomp) seccomp = default_seccomp_cached(spec.process.capabilities, spec.seccomp_cache);

  // Open every namespace to join before joining any: after setns(mnt) the paths would resolve
  // in the container's filesystem.
  CgroupTargets cgroups = open_cgroup_targets(spec);
  std::vector<std::pair<UniqueFd, int>> joins;
  unsigned long flags = CLONE_PARENT | SIGCHLD;
  for (const auto& k : kNamespaces) {
    std::string how = spec.ns(k.type);
    if (how == "new") {
      flags |= static_cast<unsigned long>(k.flag);
    } else if (how != "host") {
      UniqueFd fd(::open(how.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) throw SysError("open namespace", how, errno);
      joins.emplace_back(std::move(fd), k.flag);
    }
  }
  // The OOM score is inherited at clone: set it on ourselves, through the host's /proc, before
  // any namespace or container mount could redirect the write (CVE-2025-52881 class).
  if (spec.process.has_oom_score_adj) {
    UniqueFd f(check(::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC), "open", "/proc/self/oom_score_adj"));
    std::string v = std::to_string(spec.process.oom_score_adj);
    check(::write(f.get(), v.data(), v.size()), "write", "/proc/self/oom_score_adj");
  }
  // With a user namespace (new, or another container's joined: they share its network, IPC or
  // PID namespace), what the container's root may not reach or make is taken now, before any
  // setns takes our host capabilities (rootfs.h: HostSide).
  bool new_userns = (flags & CLONE_NEWUSER) != 0;
  HostSide host;
  if (spec.ns("user") != "host" && spec.mode == "create") host = prepare_host_side(spec, true);
  for (auto& [fd, flag] : joins) {
    // another container in the host's user namespace (--userns=host): nothing to join
    if (flag == CLONE_NEWUSER && same_userns(fd.get())) continue;
    check(::setns(fd.get(), flag), "setns", std::to_string(flag));
  }
  joins.clear();

  // A cgroup namespace is rooted at the cgroups its first process is in when it is made. clone3
  // places the child in its cgroup2 cgroup at clone time, but v1 hierarchies have no such thing:
  // the child joins them itself, after the clone. With v1 hierarchies the namespace is therefore
  // made by the child once it has joined them; rooted at the clone, it would show (and let a
  // process with CAP_SYS_ADMIN mount) each hierarchy's root, release_agent included
  // (CVE-2022-0492 class).
  bool late_cgroupns = (flags & CLONE_NEWCGROUP) && !cgroups.v1_tasks.empty();
  if (late_cgroupns) flags &= ~static_cast<unsigned long>(CLONE_NEWCGROUP);

  int gate[2];
  check(::pipe2(gate, O_CLOEXEC), "pipe2", "gate");
  bool placed = false;
  std::string cgroupns = spec.ns("cgroup");
  long pid = clone_into_cgroup(cgroups, flags, cgroupns != "new" && cgroupns != "host", &placed);
  if (pid < 0) throw SysError("clone", "container process", errno);
  if (pid == 0) {
    ::close(gate[1]);
    child_main(spec, sync, gate[0], seccomp, cgroups, late_cgroupns, host);
  }
  host = HostSide();
  cgroups.v1_tasks.clear();
  ::close(gate[0]);
  try {
    if (new_userns) write_id_maps(static_cast<pid_t>(pid), spec);
    // The late namespace must be made after this move: move first, then open the gate.
    if (!placed && late_cgroupns) join_v2_cgroup(cgroups, static_cast<pid_t>(pid));
    check(::write(gate[1], "g", 1), "write", "gate");
    ::close(gate[1]);
    if (!placed && !late_cgroupns) join_v2_cgroup(cgroups, static_cast<pid_t>(pid));
  } catch (...) {
    ::kill(static_cast<pid_t>(pid), SIGKILL);  // never leave a process outside its limits
    throw;
  }
  // Only now may the monitor report the process ready: it waits for this message.
  sync.send("pid " + std::to_string(pid));
}

}  // namespace
}  // namespace skiff

int main(int argc, char** argv) {
  using namespace skiff;
  // Network plumbing for the daemon (no sync socket): native/init/netconf.cc.
  if (argc >= 2 && std::strcmp(argv[1], "net") == 0) {
    try {
      run_sealed(argv);
    } catch (const SysError& e) {
      std::fprintf(stderr, "error %s\n", e.what());
      return 1;
    }
    return net_main(argc, argv);
  }
  // `hold <daemon pid>`: keeps the daemon's sealed copy executing for as long as the daemon
  // lives. The kernel refuses to open a file for writing while it is executed (ETXTBSY), so no
  // process that reaches the copy through a helper's /proc/<pid>/exe can hold it open for
  // writing, which would make every later exec of it fail (a denial of service: the seals
  // already stop the writes themselves).
  if (argc == 3 && std::strcmp(argv[1], "hold") == 0) {
    ::prctl(PR_SET_NAME, "skiff-init", 0, 0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (std::to_string(::getppid()) != argv[2]) return 0;  // the daemon is already gone
    for (;;) ::pause();
  }
  if (argc >= 2 && std::strcmp(argv[1], "userns-hold") == 0) {
    try {
      run_sealed(argv);
    } catch (const SysError& e) {
      std::fprintf(stderr, "error %s\n", e.what());
      return 1;
    }
    return userns_hold_main(argc, argv);
  }
  // Parse-only: which keys of a config.json skiff-init reads (the bundle schema's test).
  if (argc == 3 && std::strcmp(argv[1], "check-bundle") == 0) return check_bundle_main(argv[2]);
  if (argc != 3 || (std::strcmp(argv[1], "create") != 0 && std::strcmp(argv[1], "exec") != 0)) {
    std::fprintf(stderr, "usage: skiff-init create|exec <bundle> | check-bundle <config.json>\n");
    return 2;
  }
  if (::fcntl(kSyncFd, F_GETFD) < 0) {
    std::fprintf(stderr, "skiff-init: fd 3 (sync socket) is not open\n");
    return 2;
  }
  SyncChannel sync(kSyncFd);
  try {
    run_sealed(argv);
    std::string mode = argv[1];
    if (mode == "exec") {
      // Until execve, /proc/<pid> of this process is closed to the container's processes.
      check(::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)");
    }
    check(::fcntl(kSyncFd, F_SETFD, FD_CLOEXEC), "fcntl", "sync fd");
    // Only stdio and the sync socket may reach the container process.
    check(::close_range(kSyncFd + 1, ~0U, 0), "close_range");
    Spec spec = load_spec(std::string(argv[2]) + "/config.json");
    if (spec.mode != mode) throw config_error("config.json mode is " + spec.mode + ", not " + mode);
    run(spec, sync);
  } catch (const SysError& e) {
    sync.send_error(e);
    return 127;
  } catch (const std::exception& e) {
    sync.send_error(e.what());
    return 127;
  }
  return 0;
}
