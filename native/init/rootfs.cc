#include "init/rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/overlay.h"
#include "init/copyup.h"
#include "init/userns.h"

namespace skiff {
namespace {

void do_mount(const std::string& src, const std::string& target, const char* type, unsigned long flags,
              const std::string& data = "") {
  if (::mount(src.empty() ? nullptr : src.c_str(), target.c_str(), type, flags, data.empty() ? nullptr : data.c_str()) <
      0)
    throw SysError("mount",
                   (type ? std::string(type) + " " : std::string()) + src + " on " + target +
                       (data.empty() ? "" : " (" + data + ")"),
                   errno);
}

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

long fs_type(int fd, const std::string& what) {
  struct statfs sf {};
  check(::fstatfs(fd, &sf), "fstatfs", what);
  return static_cast<long>(sf.f_type);
}

// openat2 that follows no symlink at all (nor magic link) on the way: for the runtime's own
// paths (/dev/console, /dev/pts/ptmx, masked and read-only paths), which a container must not
// be able to redirect. extra_resolve adds RESOLVE_* flags.
int open_no_symlinks(int dirfd, const std::string& path, int flags, mode_t mode = 0, uint64_t extra_resolve = 0) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC | O_NOFOLLOW);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | extra_resolve;
  return static_cast<int>(syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how));
}

// runc's rule (CVE-2025-52881 class): nothing is mounted inside /proc, where a mount could turn
// the runtime's own procfs writes (sysctls) into writes to another file; only a few files that
// lxcfs emulates may be bound over.
// The same list as the daemon's create-time check (src/runtime/spec.ts), which is runc's.
const char* const kProcBindable[] = {"/proc/cpuinfo",
                                     "/proc/diskstats",
                                     "/proc/meminfo",
                                     "/proc/stat",
                                     "/proc/swaps",
                                     "/proc/uptime",
                                     "/proc/loadavg",
                                     "/proc/slabinfo",
                                     "/proc/net/dev",
                                     "/proc/sys/kernel/ns_last_pid",
                                     "/proc/sys/crypto/fips_enabled"};

SysError inside_proc(const std::string& dest) {
  return SysError("mount", "\"" + dest + "\" cannot be mounted because it is inside /proc", EPERM);
}

// target: the O_PATH fd of a mount destination, resolved inside the root.
void refuse_inside_proc(int target, const std::string& dest, bool is_file_bind) {
  if (fs_type(target, dest) != PROC_SUPER_MAGIC) return;
  if (is_file_bind) {
    char buf[PATH_MAX + 1];
    ssize_t n = ::readlink(fd_path(target).c_str(), buf, PATH_MAX);
    if (n > 0) {
      std::string where(buf, static_cast<size_t>(n));
      for (const char* ok : kProcBindable)
        if (where == ok) return;
    }
  }
  throw inside_proc(dest);
}

// A detached copy of the mount at path (recursive with rec): unlike an fd, it can still be
// attached after pivot_root has detached the host's tree.
int clone_tree(int dirfd, const std::string& path, bool rec) {
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (rec ? AT_RECURSIVE : 0) | (path.empty() ? AT_EMPTY_PATH : 0);
  int fd = static_cast<int>(syscall(SYS_open_tree, dirfd, path.c_str(), flags));
  if (fd < 0) throw SysError("open_tree", path.empty() ? "fd " + std::to_string(dirfd) : path, errno);
  return fd;
}

// Attaches a clone_tree() result on the target fd (an O_PATH fd from open_in_root) or path.
void attach_tree(int tree, int target_fd, const std::string& what) {
  if (syscall(SYS_move_mount, tree, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    throw SysError("move_mount", what, errno);
}

// mkdir -p, for paths we own inside the new root (after pivot_root).
void mkdir_p(const std::string& path, mode_t mode) {
  std::string cur;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    cur = path.substr(0, next);
    if (!cur.empty() && ::mkdir(cur.c_str(), mode) < 0 && errno != EEXIST) throw SysError("mkdir", cur, errno);
    pos = next + 1;
  }
}

// A standard mount point (/proc, /dev, /sys...) must be a real directory of the image, not a link.
void ensure_dir_mountpoint(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) throw SysError("mount", path + " is a symbolic link in the image", ELOOP);
    if (!S_ISDIR(st.st_mode)) throw SysError("mount", path + " is not a directory in the image", ENOTDIR);
    return;
  }
  mkdir_p(path, 0755);
}

// Remounts an existing mount read-only, keeping the per-mount flags it has (the kernel refuses
// to drop locked flags like nosuid on a bind remount).
void remount_ro(const std::string& target) {
  struct statvfs sv;
  check(::statvfs(target.c_str(), &sv), "statvfs", target);
  unsigned long keep = 0;
  if (sv.f_flag & ST_NOSUID) keep |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) keep |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) keep |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) keep |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) keep |= MS_RELATIME;
  do_mount("", target, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | keep);
}

void mount_overlay(const RootSpec& r) {
  std::vector<UniqueFd> hold;
  do_mount("overlay", r.target, "overlay", 0, overlay_options(r.lower, r.upper, r.work, hold));
}

void mknod_dev(const char* path, mode_t mode, unsigned maj, unsigned min) {
  if (::mknod(path, mode, makedev(maj, min)) < 0 && errno != EEXIST) throw SysError("mknod", path, errno);
  check(::chmod(path, mode & 07777), "chmod", path);
}

// A device node at path: made (mknod), or, in a user namespace where mknod is refused, the
// host's node bound on an empty file (runc does the same); the bind shows the host's owner.
void make_node(const HostSide& h, const std::string& path, mode_t mode, unsigned maj, unsigned min) {
  for (const auto& [where, tree] : h.dev_binds) {
    if (where != path) continue;
    UniqueFd f(open_no_symlinks(AT_FDCWD, path, O_CREAT | O_WRONLY, 0600));
    if (!f.valid()) throw SysError("create", path + " (to bind the host's node on)", errno);
    f.reset(check(open_no_symlinks(AT_FDCWD, path, O_PATH), "open", path));
    attach_tree(tree.get(), f.get(), "host device node on " + path);
    return;
  }
  mknod_dev(path.c_str(), mode, maj, min);
}

struct HostDevice {
  std::string name;
  mode_t mode;
  dev_t rdev;
};

// Privileged containers get the host's device nodes (top level of /dev), as Docker gives them.
std::vector<HostDevice> list_host_devices() {
  std::vector<HostDevice> out;
  DIR* d = ::opendir("/dev");
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || name == "console" || name == "ptmx" || name == "tty") continue;
    struct stat st;
    if (::fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) out.push_back({name, st.st_mode, st.st_rdev});
  }
  ::closedir(d);
  return out;
}

// Returns an O_PATH fd of the null device made here, checked by its numbers: what masks files
// (CVE-2025-31133 class), never a path a later mount or the container could have replaced.
UniqueFd setup_dev(const Spec& spec, const std::vector<HostDevice>& host_devices, const HostSide& h) {
  ensure_dir_mountpoint("/dev");
  do_mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  make_node(h, "/dev/null", S_IFCHR | 0666, 1, 3);
  UniqueFd null_dev(check(open_no_symlinks(AT_FDCWD, "/dev/null", O_PATH), "open", "/dev/null"));
  struct stat null_st;
  check(::fstat(null_dev.get(), &null_st), "fstat", "/dev/null");
  if (!S_ISCHR(null_st.st_mode) || null_st.st_rdev != makedev(1, 3))
    throw SysError("mask", "/dev/null is not the null device", EINVAL);
  make_node(h, "/dev/zero", S_IFCHR | 0666, 1, 5);
  make_node(h, "/dev/full", S_IFCHR | 0666, 1, 7);
  make_node(h, "/dev/random", S_IFCHR | 0666, 1, 8);
  make_node(h, "/dev/urandom", S_IFCHR | 0666, 1, 9);
  make_node(h, "/dev/tty", S_IFCHR | 0666, 5, 0);
  for (const auto& d : host_devices) {
    std::string p = "/dev/" + d.name;
    if (::access(p.c_str(), F_OK) == 0) continue;  // the standard ones are there
    // a node of the host's numbers, or (in a user namespace) the host's node bound
    make_node(h, p, d.mode, major(d.rdev), minor(d.rdev));
  }
  mkdir_p("/dev/pts", 0755);
  do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  check(::symlink("pts/ptmx", "/dev/ptmx"), "symlink", "/dev/ptmx");
  mkdir_p("/dev/shm", 01777);
  do_mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV,
           "mode=1777,size=" + std::to_string(spec.shm_size));
  mkdir_p("/dev/mqueue", 0755);
  do_mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NOEXEC | MS_NODEV);
  check(::symlink("/proc/self/fd", "/dev/fd"), "symlink", "/dev/fd");
  check(::symlink("/proc/self/fd/0", "/dev/stdin"), "symlink", "/dev/stdin");
  check(::symlink("/proc/self/fd/1", "/dev/stdout"), "symlink", "/dev/stdout");
  check(::symlink("/proc/self/fd/2", "/dev/stderr"), "symlink", "/dev/stderr");
  check(::symlink("/proc/kcore", "/dev/core"), "symlink", "/dev/core");
  // --device: the host node's numbers, mode and owner at the path asked for (after pivot_root:
  // the path resolves inside the container); whatever was there is replaced
  for (const auto& d : spec.devices) {
    size_t slash = d.path.rfind('/');
    if (slash > 0) mkdir_p(d.path.substr(0, slash), 0755);
    if (::unlink(d.path.c_str()) < 0 && errno != ENOENT) throw SysError("unlink", d.path, errno);
    make_node(h, d.path, (d.type == 'b' ? S_IFBLK : S_IFCHR) | d.mode, d.major, d.minor);
    // a bound host node keeps its host owner: never chowned from here
    if (h.dev_binds.empty()) check(::chown(d.path.c_str(), d.uid, d.gid), "chown", d.path);
  }
  return null_dev;
}

void setup_sys(const Spec& spec, const std::vector<std::pair<std::string, int>>& cgroup_fds, int sys_tree) {
  ensure_dir_mountpoint("/sys");
  unsigned long ro = spec.privileged ? 0 : MS_RDONLY;
  if (sys_tree >= 0) {
    UniqueFd target(open_in_root("/sys", false, true));
    attach_tree(sys_tree, target.get(), "sysfs on /sys");
  } else {
    do_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV | ro);
  }
  switch (spec.cgroup_mount.kind) {
    case CgroupMountSpec::None: return;
    case CgroupMountSpec::V2:
      do_mount("cgroup", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RELATIME | ro);
      return;
    case CgroupMountSpec::V1:
      do_mount("tmpfs", "/sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, "mode=755");
      for (const auto& [name, target] : spec.cgroup_mount.symlinks) {
        if (name.find('/') != std::string::npos || target.find('/') != std::string::npos)
          throw config_error("bad cgroup symlink " + name + " -> " + target);
        check(::symlink(target.c_str(), ("/sys/fs/cgroup/" + name).c_str()), "symlink", "/sys/fs/cgroup/" + name);
      }
      for (const auto& [name, fd] : cgroup_fds) {
        if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
          throw config_error("bad cgroup controller name " + name);
        std::string dst = "/sys/fs/cgroup/" + name;
        check(::mkdir(dst.c_str(), 0755), "mkdir", dst);
        UniqueFd target(open_in_root(dst, false, true));
        attach_tree(fd, target.get(), "cgroup on " + dst);
        // As Docker mounts them: never a way to run or open devices from a cgroup folder.
        do_mount("", dst, nullptr, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC | ro);
      }
      if (ro) do_mount("", "/sys/fs/cgroup", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC | MS_NODEV);
      return;
  }
}

struct MountFlags {
  unsigned long flags = 0, propagation = 0;
  bool readonly = false;
  bool copyup = false;  // fill an empty volume from the image first (copyup.h)
  // read-only rbind: submounts read-only too where the kernel can (Docker's default); "ro-nonrec"
  // leaves them as they are, "ro-forcerec" fails where the kernel cannot
  enum class RoDepth { Auto, NonRecursive, Force } ro_depth = RoDepth::Auto;
  std::string data;
};

MountFlags parse_options(const std::vector<std::string>& opts) {
  MountFlags m;
  for (const auto& o : opts) {
    if (o == "ro") m.readonly = true;
    else if (o == "rw") m.readonly = false;
    else if (o == "bind") m.flags |= MS_BIND;
    else if (o == "rbind") m.flags |= MS_BIND | MS_REC;
    else if (o == "nosuid") m.flags |= MS_NOSUID;
    else if (o == "nodev") m.flags |= MS_NODEV;
    else if (o == "noexec") m.flags |= MS_NOEXEC;
    else if (o == "suid") m.flags &= ~MS_NOSUID;
    else if (o == "dev") m.flags &= ~MS_NODEV;
    else if (o == "exec") m.flags &= ~MS_NOEXEC;
    else if (o == "copyup") m.copyup = true;
    else if (o == "ro-nonrec") m.ro_depth = MountFlags::RoDepth::NonRecursive;
    else if (o == "ro-forcerec") m.ro_depth = MountFlags::RoDepth::Force;
    else if (o == "private") m.propagation = MS_PRIVATE;
    else if (o == "rprivate") m.propagation = MS_PRIVATE | MS_REC;
    else if (o == "slave") m.propagation = MS_SLAVE;
    else if (o == "rslave") m.propagation = MS_SLAVE | MS_REC;
    else if (o == "shared") m.propagation = MS_SHARED;
    else if (o == "rshared") m.propagation = MS_SHARED | MS_REC;
    else m.data += (m.data.empty() ? "" : ",") + o;
  }
  return m;
}

void user_mount(const MountSpec& m, int source_fd) {
  MountFlags f = parse_options(m.options);
  bool is_bind = m.type == "bind" || (f.flags & MS_BIND);
  bool dir = true;
  if (is_bind) {
    struct stat st;
    check(::fstat(source_fd, &st), "stat", m.source);
    dir = S_ISDIR(st.st_mode);
  }
  UniqueFd target(open_in_root(m.destination, true, dir));
  refuse_inside_proc(target.get(), m.destination, is_bind && !dir);
  if (is_bind && f.copyup && dir) copy_up(m.destination, source_fd);
  std::string tpath = fd_path(target.get());
  if (is_bind) {
    attach_tree(source_fd, target.get(), m.source + " on " + m.destination);
    // Re-resolve: the mount now sits on top of the fd's location.
    target.reset(open_in_root(m.destination, false, dir));
    tpath = fd_path(target.get());
    unsigned long extra = f.flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
    if (f.readonly || extra) do_mount("", tpath, nullptr, MS_BIND | MS_REMOUNT | extra | (f.readonly ? MS_RDONLY : 0));
    // A read-only rbind is read-only all the way down (Docker >= 25), where the kernel can.
    if (f.readonly && (f.flags & MS_REC) && f.ro_depth != MountFlags::RoDepth::NonRecursive) {
      struct mount_attr attr {};
      attr.attr_set = MOUNT_ATTR_RDONLY;
      if (syscall(SYS_mount_setattr, target.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0 &&
          (errno != ENOSYS || f.ro_depth == MountFlags::RoDepth::Force))
        throw SysError("mount_setattr", "recursive read-only " + m.destination, errno);
    }
    // Docker's default for binds and volumes: rprivate. The source was cloned before the
    // namespace went private, so shared/slave keep (or follow) the host's peer group.
    if (!f.propagation) f.propagation = MS_PRIVATE | MS_REC;
  } else {
    do_mount(m.source.empty() ? m.type : m.source, tpath, m.type.c_str(), f.flags | (f.readonly ? MS_RDONLY : 0),
             f.data);
    target.reset(open_in_root(m.destination, false, dir));
    tpath = fd_path(target.get());
  }
  if (f.propagation) do_mount("", tpath, nullptr, f.propagation);
}

std::vector<std::string> expand(const std::string& pattern) {
  if (pattern.find_first_of("*?[") == std::string::npos) return {pattern};
  std::vector<std::string> out;
  glob_t g{};
  if (::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  ::globfree(&g);
  return out;
}

// Masked and read-only paths are the runtime's own (/proc, /sys): resolved with no symlink on
// the way, so that nothing the container made can turn a mask into a bind of another file.
// Returns an O_PATH fd, or -1 when there is nothing to hide.
int open_system_path(const std::string& p) {
  int fd = open_no_symlinks(AT_FDCWD, p, O_PATH);
  if (fd < 0 && errno == ENOENT) return -1;
  if (fd < 0 && errno == ELOOP)
    throw SysError("open", p + ": a symbolic link on the way (masked and read-only paths follow none)", ELOOP);
  return check(fd, "openat2", p);
}

void mask_paths(const std::vector<std::string>& paths, int null_dev) {
  for (const auto& pattern : paths) {
    for (const auto& p : expand(pattern)) {
      UniqueFd target(open_system_path(p));
      if (!target.valid()) continue;
      struct stat st;
      check(::fstat(target.get(), &st), "fstat", p);
      if (S_ISDIR(st.st_mode)) do_mount("tmpfs", fd_path(target.get()), "tmpfs", MS_RDONLY, "size=0");
      else do_mount(fd_path(null_dev), fd_path(target.get()), nullptr, MS_BIND);
    }
  }
}

void readonly_paths(const std::vector<std::string>& paths) {
  for (const auto& pattern : paths) {
    for (const auto& p : expand(pattern)) {
      UniqueFd target(open_system_path(p));
      if (!target.valid()) continue;
      std::string tpath = fd_path(target.get());
      do_mount(tpath, tpath, nullptr, MS_BIND | MS_REC);
      // The bind now sits on top of the fd's location: reopen to reach it.
      target.reset(open_system_path(p));
      if (!target.valid()) throw SysError("open", p + " vanished", ENOENT);
      remount_ro(fd_path(target.get()));
    }
  }
}

// Sysctls through a procfs fd taken right after /proc was mounted, before any user mount exists,
// and opened beneath it with no symlink and no other filesystem on the way (CVE-2025-52881
// class): the write lands on the procfs file it names, whatever the container mounts later.
void write_sysctls(const Spec& spec, int proc) {
  for (const auto& [key, value] : spec.sysctl) {
    std::string rel = "sys/" + key;
    for (size_t k = 4; k < rel.size(); ++k)
      if (rel[k] == '.') rel[k] = '/';
    std::string shown = "/proc/" + rel;
    UniqueFd f(open_no_symlinks(proc, rel, O_WRONLY, 0, RESOLVE_BENEATH | RESOLVE_NO_XDEV));
    if (!f.valid()) throw SysError("open sysctl", shown, errno);
    if (fs_type(f.get(), shown) != PROC_SUPER_MAGIC) throw SysError("open sysctl", shown + " is not on procfs", EXDEV);
    if (::write(f.get(), value.data(), value.size()) < 0) throw SysError("write sysctl", shown + "=" + value, errno);
  }
}

// A mount over /dev may bring the container's own /dev/null, /dev/console or /dev/pts: a
// symbolic link there would send what the container and the runtime write to another file.
void refuse_linked_devices() {
  for (const char* p : {"/dev/null", "/dev/console", "/dev/pts"}) {
    struct stat st;
    if (::lstat(p, &st) == 0 && S_ISLNK(st.st_mode))
      throw SysError("mount", std::string(p) + " is a symbolic link (a mount over /dev must not replace it with one)",
                     ELOOP);
  }
}

}  // namespace

namespace {
int open_in_root_at(const std::string& path, bool create, bool last_is_dir, int links_left);
}

int open_in_root(const std::string& path, bool create, bool last_is_dir) {
  return open_in_root_at(path, create, last_is_dir, 40);
}

namespace {
int open_in_root_at(const std::string& path, bool create, bool last_is_dir, int links_left) {
  if (path.empty() || path[0] != '/') throw config_error("mount destination must be absolute: " + path);
  UniqueFd root(check(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC), "open", "/"));
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(syscall(SYS_openat2, root.get(), path.c_str(), &how, sizeof how));
  if (fd >= 0 || errno != ENOENT || !create) return check(fd, "openat2", path);

  // Walk the components, creating what is missing; every step is resolved inside the root.
  UniqueFd cur(check(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC), "open", "/"));
  std::vector<std::string> parts;
  for (size_t s = 0, e; s < path.size(); s = e + 1) {
    e = path.find('/', s);
    if (e == std::string::npos) e = path.size();
    if (e > s) parts.push_back(path.substr(s, e - s));
  }
  std::string sofar;
  for (size_t i = 0; i < parts.size(); ++i) {
    sofar += "/" + parts[i];
    bool last = i + 1 == parts.size();
    int next = static_cast<int>(syscall(SYS_openat2, root.get(), sofar.c_str(), &how, sizeof how));
    if (next < 0 && errno == ENOENT) {
      // A dangling symlink (say /data -> /host/dir): what it names is made inside the root,
      // as if the link were followed from there (runc's MkdirAllInRoot does the same).
      struct stat st;
      if (::fstatat(cur.get(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        if (links_left <= 0) throw SysError("openat2", path, ELOOP);
        char buf[PATH_MAX + 1];
        ssize_t n = check(::readlinkat(cur.get(), parts[i].c_str(), buf, PATH_MAX), "readlink", sofar);
        buf[n] = 0;
        std::string target(buf);
        std::string parent = sofar.substr(0, sofar.size() - parts[i].size());
        std::string rest;
        for (size_t k = i + 1; k < parts.size(); ++k) rest += "/" + parts[k];
        std::string next_path = (target.empty() || target[0] != '/' ? parent : std::string()) + target + rest;
        if (next_path.empty() || next_path[0] != '/') next_path = "/" + next_path;
        return open_in_root_at(next_path, create, last_is_dir, links_left - 1);
      }
      // Create relative to the parent we already resolved safely (an O_PATH dirfd); never on
      // procfs (a mount destination there is refused, whatever symlink led to it).
      if (fs_type(cur.get(), sofar) == PROC_SUPER_MAGIC) throw inside_proc(path);
      if (!last || last_is_dir) {
        if (::mkdirat(cur.get(), parts[i].c_str(), 0755) < 0 && errno != EEXIST) throw SysError("mkdir", sofar, errno);
      } else {
        int f = ::openat(cur.get(), parts[i].c_str(), O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (f < 0 && errno != EEXIST) throw SysError("create", sofar, errno);
        if (f >= 0) ::close(f);
      }
      next = static_cast<int>(syscall(SYS_openat2, root.get(), sofar.c_str(), &how, sizeof how));
    }
    cur.reset(check(next, "openat2", sofar));
  }
  return cur.release();
}
}  // namespace

int open_container_pty(bool console) {
  // The container's own devpts instance, reached without any symlink (not even /dev/ptmx's) and
  // checked to be devpts: a mount over /dev cannot hand us another file.
  UniqueFd master(check(open_no_symlinks(AT_FDCWD, "/dev/pts/ptmx", O_RDWR | O_NOCTTY), "open", "/dev/pts/ptmx"));
  if (fs_type(master.get(), "/dev/pts/ptmx") != DEVPTS_SUPER_MAGIC)
    throw SysError("open", "/dev/pts/ptmx is not on a devpts file system", EXDEV);
  int unlock = 0;
  check(::ioctl(master.get(), TIOCSPTLCK, &unlock), "ioctl(TIOCSPTLCK)", "/dev/ptmx");
  // TIOCGPTPEER opens the slave through the master: no path lookup that could be raced.
  UniqueFd slave(check(::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY), "ioctl(TIOCGPTPEER)", "/dev/ptmx"));
  if (console) {
    // CVE-2025-52565 class: the bind goes on the file we made or checked, never through a link.
    // Pinned with O_PATH (never opened: a device or FIFO a mount put there could block us);
    // made, as an empty file, only when missing.
    UniqueFd f(open_no_symlinks(AT_FDCWD, "/dev/console", O_PATH));
    if (!f.valid() && errno == ENOENT) {
      UniqueFd made(open_no_symlinks(AT_FDCWD, "/dev/console", O_CREAT | O_EXCL | O_WRONLY, 0600));
      if (!made.valid() && errno != EEXIST) throw SysError("create", "/dev/console", errno);
      f.reset(open_no_symlinks(AT_FDCWD, "/dev/console", O_PATH));
    }
    if (!f.valid() && errno == ELOOP) throw SysError("create", "/dev/console is a symbolic link", ELOOP);
    check(f.get(), "open", "/dev/console");
    struct stat st;
    check(::fstat(f.get(), &st), "fstat", "/dev/console");
    if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) throw SysError("create", "/dev/console is not a file", EINVAL);
    do_mount(fd_path(slave.get()), fd_path(f.get()), nullptr, MS_BIND);
  }
  for (int i = 0; i < 3; ++i) check(::dup2(slave.get(), i), "dup2", "pty slave to fd " + std::to_string(i));
  return master.release();
}

namespace {

// fsopen + fsconfig + fsmount: a detached mount of a new file system instance. Its privilege
// checks are made here, with our credentials: the overlay by the parent (host root, so the data
// root's folders are reachable), proc and sysfs by the child in its user namespace while the
// host's /proc and /sys are still in its tree (the kernel refuses a proc or sysfs mount in a user
// namespace where no full one is visible).
class FsBuilder {
 public:
  explicit FsBuilder(const char* type) : type_(type), fs_(static_cast<int>(syscall(SYS_fsopen, type, FSOPEN_CLOEXEC))) {
    if (!fs_.valid()) throw SysError("fsopen", type, errno);
    set("source", type);  // what /proc/mounts shows, as mount(2) callers name them
  }
  void set(const char* key, const std::string& value) {
    if (syscall(SYS_fsconfig, fs_.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) < 0)
      throw SysError("fsconfig", type_ + " " + key + "=" + value, errno);
  }
  UniqueFd mount(unsigned attrs) {
    if (syscall(SYS_fsconfig, fs_.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0)
      throw SysError("fsconfig", type_ + " (create)", errno);
    int m = static_cast<int>(syscall(SYS_fsmount, fs_.get(), FSMOUNT_CLOEXEC, attrs));
    if (m < 0) throw SysError("fsmount", type_, errno);
    return UniqueFd(m);
  }

 private:
  std::string type_;
  UniqueFd fs_;
};

// The container's root overlay as a detached mount. Each lower layer is named by an fd
// ("lowerdir+", one at a time: no page limit), idmapped into the user namespace when asked, so
// image files owned by host root show as the container's root; upper and work are the range
// root's (the daemon chowns them).
UniqueFd overlay_tree(const RootSpec& r, int userns, std::vector<UniqueFd>& hold) {
  FsBuilder fs("overlay");
  std::string joined;  // before Linux 6.8 (no "lowerdir+"): one "lowerdir", at most 256 bytes
  bool plus = true;
  for (const auto& l : r.lower) {
    if (r.idmap) hold.push_back(idmapped_clone(l, userns));
    else hold.emplace_back(check(::open(l.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC), "open", "layer " + l));
    std::string p = fd_path(hold.back().get());
    if (plus) {
      try {
        fs.set("lowerdir+", p);
        continue;
      } catch (const SysError& e) {
        if (e.err() != EINVAL || &l != &r.lower.front()) throw;
        plus = false;
      }
    }
    joined += (joined.empty() ? "" : ":") + p;
  }
  if (!joined.empty()) fs.set("lowerdir", joined);
  if (!r.upper.empty()) {
    fs.set("upperdir", r.upper);
    fs.set("workdir", r.work);
  }
  return fs.mount(0);
}

bool is_node(const std::string& path, const DeviceSpec& d) {
  struct stat st;
  if (::stat(path.c_str(), &st) < 0) return false;
  return (d.type == 'b' ? S_ISBLK(st.st_mode) : S_ISCHR(st.st_mode)) && st.st_rdev == makedev(d.major, d.minor);
}

// The host's node for a --device, found by its numbers: udev's /dev/char, /dev/block links, else
// the first such node in /dev or one folder below it (hosts without udev).
std::string host_node_path(const DeviceSpec& d) {
  std::string link = std::string(d.type == 'b' ? "/dev/block/" : "/dev/char/") + std::to_string(d.major) + ":" +
                     std::to_string(d.minor);
  if (is_node(link, d)) return link;
  std::vector<std::string> dirs{"/dev"};
  for (size_t i = 0; i < dirs.size(); ++i) {
    DIR* dir = ::opendir(dirs[i].c_str());
    if (!dir) continue;
    std::string found;
    while (struct dirent* e = ::readdir(dir)) {
      std::string name = e->d_name, p = dirs[i] + "/" + name;
      if (name == "." || name == ".." || e->d_type == DT_LNK) continue;
      if (e->d_type == DT_DIR) {
        if (i == 0 && name != "pts" && name != "shm" && name != "mqueue") dirs.push_back(p);
      } else if (is_node(p, d)) {
        found = p;
        break;
      }
    }
    ::closedir(dir);
    if (!found.empty()) return found;
  }
  throw SysError("open",
                 "the host's device node " + std::string(1, d.type) + " " + std::to_string(d.major) + ":" +
                     std::to_string(d.minor) + " for " + d.path + " (to bind it: mknod is refused in a user namespace)",
                 ENOENT);
}

}  // namespace

HostSide prepare_host_side(const Spec& spec, bool userns) {
  HostSide h;
  h.prepared = true;
  // Host-side sources are cloned before pivot_root (and before the namespace goes private, so
  // a clone of a shared mount stays in the host's peer group for shared/slave propagation;
  // each user mount gets its own propagation once attached, rprivate by default).
  h.source_of.assign(spec.mounts.size(), -1);
  for (size_t i = 0; i < spec.mounts.size(); ++i) {
    const auto& m = spec.mounts[i];
    if (m.type != "bind") continue;
    bool rec = false;
    for (const auto& o : m.options) rec |= o == "rbind";
    int fd = clone_tree(AT_FDCWD, m.source, rec);
    h.source_of[i] = fd;
    h.hold.emplace_back(fd);
  }
  for (const auto& [name, host] : spec.cgroup_mount.controllers) {
    int fd = clone_tree(AT_FDCWD, host, false);
    h.hold.emplace_back(fd);
    // Cloned before our namespace went private: a clone of a shared mount would still be the
    // host's peer; the container's cgroup folders propagate nothing either way.
    struct mount_attr attr {};
    attr.propagation = MS_PRIVATE;
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
      throw SysError("mount_setattr", "private propagation of the clone of " + host, errno);
    h.cgroup_fds.emplace_back(name, fd);
  }
  if (!userns) return h;
  const RootSpec& r = spec.root;
  if (r.target.empty()) throw config_error("root.target is empty");
  if (!r.plain.empty()) {
    h.root_tree.reset(clone_tree(AT_FDCWD, r.plain, true));
  } else {
    UniqueFd ns;
    if (r.idmap) ns = mapped_userns(spec);
    h.root_tree = overlay_tree(r, ns.get(), h.hold);
  }
  for (const char* n : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"})
    h.dev_binds.emplace_back(n, UniqueFd(clone_tree(AT_FDCWD, n, false)));
  for (const auto& d : spec.devices)
    h.dev_binds.emplace_back(d.path, UniqueFd(clone_tree(AT_FDCWD, host_node_path(d), false)));
  return h;
}

void setup_rootfs(const Spec& spec, HostSide& h) {
  const RootSpec& r = spec.root;
  if (r.target.empty()) throw config_error("root.target is empty");
  if (!h.prepared) h = prepare_host_side(spec, false);
  // a user namespace of the container's own (--userns-remap: its root comes made), or the one a
  // rootless daemon lives in: either way mknod is refused and proc/sysfs mount only while the
  // daemon's own are still visible
  const bool new_userns = h.root_tree.valid();
  const bool userns = new_userns || in_user_namespace();
  // Nothing we mount may propagate back to the host.
  do_mount("", "/", nullptr, MS_REC | MS_PRIVATE);
  std::vector<HostDevice> host_devices;
  if (spec.privileged && !new_userns) host_devices = list_host_devices();
  if (userns && !new_userns) {
    // rootless: the daemon's own nodes, cloned now, are bound where mknod would make them
    for (const char* n : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"})
      h.dev_binds.emplace_back(n, UniqueFd(clone_tree(AT_FDCWD, n, false)));
    for (const auto& d : host_devices) {
      std::string p = "/dev/" + d.name;
      // a node the daemon may not open is skipped
      UniqueFd fd(static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, p.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
      if (fd.valid()) h.dev_binds.emplace_back(p, std::move(fd));
    }
  }
  UniqueFd proc_tree, sys_tree;
  if (new_userns) {
    // The root comes made, as a detached mount. Its target folder is the data root's, which the
    // user namespace's root may not traverse (and the parent's fd of it names the host's mount,
    // not our copy), so it is stacked on our own "/" and entered through its fd: pivot_root then
    // swaps it in as with any other new root.
    UniqueFd slash(check(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC), "open", "/"));
    attach_tree(h.root_tree.get(), slash.get(), "root (" + r.target + ") on /");
    check(::fchdir(h.root_tree.get()), "fchdir", r.target);
    h.root_tree.reset();
  } else {
    if (!r.plain.empty()) do_mount(r.plain, r.target, nullptr, MS_BIND | MS_REC);
    else mount_overlay(r);
    check(::chdir(r.target.c_str()), "chdir", r.target);
  }
  if (userns) {
    // made now, while the daemon's own proc and sysfs are still in sight (mount_too_revealing)
    proc_tree = FsBuilder("proc").mount(MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV);
    unsigned sys_attrs =
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV | (spec.privileged ? 0 : MOUNT_ATTR_RDONLY);
    try {
      sys_tree = FsBuilder("sysfs").mount(sys_attrs);
    } catch (const SysError& e) {
      // sysfs needs a network namespace of this user namespace; with a joined one, the host's
      // /sys is bound (read-only all the way down) as runc does.
      if (e.err() != EPERM) throw;
      sys_tree.reset(clone_tree(AT_FDCWD, "/sys", true));
      struct mount_attr attr {};
      attr.attr_set = sys_attrs;
      if (syscall(SYS_mount_setattr, sys_tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
        throw SysError("mount_setattr", "host /sys bound read-only", errno);
    }
  }

  // pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only the container's.
  check(static_cast<int>(syscall(SYS_pivot_root, ".", ".")), "pivot_root", r.target);
  check(::umount2(".", MNT_DETACH), "umount2", "old root");
  check(::chdir("/"), "chdir", "/");

  ensure_dir_mountpoint("/proc");
  if (proc_tree.valid()) {
    UniqueFd target(open_in_root("/proc", false, true));
    attach_tree(proc_tree.get(), target.get(), "proc on /proc");
    proc_tree.reset();
  } else {
    do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV);
  }
  {
    UniqueFd proc(check(open_no_symlinks(AT_FDCWD, "/proc", O_PATH | O_DIRECTORY), "open", "/proc"));
    if (fs_type(proc.get(), "/proc") != PROC_SUPER_MAGIC) throw SysError("mount", "/proc is not procfs", EXDEV);
    write_sysctls(spec, proc.get());
  }
  UniqueFd null_dev = setup_dev(spec, host_devices, h);
  setup_sys(spec, h.cgroup_fds, sys_tree.get());
  sys_tree.reset();
  for (size_t i = 0; i < spec.mounts.size(); ++i) user_mount(spec.mounts[i], h.source_of[i]);
  h.hold.clear();
  h.dev_binds.clear();
  if (!spec.mounts.empty()) refuse_linked_devices();

  // Read-only first, as runc: a mask that lands inside a read-only path stays read-only.
  readonly_paths(spec.readonly_paths);
  mask_paths(spec.masked_paths, null_dev.get());
  if (r.readonly) remount_ro("/");
}

}  // namespace skiff
