#include "init/copyup.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/fd.h"

namespace skiff {
namespace {

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

// A readable stream of a directory fd's entries (its own fd: the caller's keeps its offset).
DirPtr open_dir_stream(int dirfd, const std::string& what) {
  int fd = check(::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open", what);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    int err = errno;
    ::close(fd);
    throw SysError("fdopendir", what, err);
  }
  return DirPtr(d);
}

bool is_dot(const char* n) { return n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0)); }

bool dir_is_empty(int dirfd) {
  DirPtr d = open_dir_stream(dirfd, "volume");
  while (struct dirent* e = ::readdir(d.get()))
    if (!is_dot(e->d_name)) return false;
  return true;
}

// Extended attributes (security.capability, user.*...); a file system that refuses one is skipped.
void copy_xattrs(int src, int dst) {
  ssize_t n = ::flistxattr(src, nullptr, 0);
  if (n <= 0) return;
  std::vector<char> names(static_cast<size_t>(n));
  n = ::flistxattr(src, names.data(), names.size());
  if (n <= 0) return;
  std::vector<char> value;
  for (size_t off = 0; off < static_cast<size_t>(n);) {
    const char* name = names.data() + off;
    off += std::strlen(name) + 1;
    ssize_t len = ::fgetxattr(src, name, nullptr, 0);
    if (len < 0) continue;
    value.resize(static_cast<size_t>(len) + 1);
    len = ::fgetxattr(src, name, value.data(), value.size());
    if (len < 0) continue;
    ::fsetxattr(dst, name, value.data(), static_cast<size_t>(len), 0);
  }
}

// Owner first: chown clears the set-id bits that chmod then restores.
void set_meta(int fd, const struct stat& st, const std::string& what) {
  check(::fchown(fd, st.st_uid, st.st_gid), "chown", what);
  check(::fchmod(fd, st.st_mode & 07777), "chmod", what);
  struct timespec ts[2] = {st.st_atim, st.st_mtim};
  check(::futimens(fd, ts), "utimens", what);
}

void copy_data(int src, int dst, const std::string& what) {
  for (;;) {
    ssize_t n = ::copy_file_range(src, nullptr, dst, nullptr, 1 << 30, 0);
    if (n == 0) return;
    if (n > 0) continue;
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
      throw SysError("copy_file_range", what, errno);
    break;
  }
  for (;;) {
    ssize_t n = ::sendfile(dst, src, nullptr, 1 << 30);
    if (n == 0) return;
    if (n < 0 && errno != EINTR) throw SysError("sendfile", what, errno);
  }
}

class Copier {
 public:
  void copy_dir(int src, int dst, const std::string& where) {
    DirPtr d = open_dir_stream(src, where);
    while (struct dirent* e = ::readdir(d.get())) {
      if (is_dot(e->d_name)) continue;
      copy_entry(src, dst, e->d_name, where + "/" + e->d_name);
    }
  }

 private:
  // The first copy of each multiply-linked file, to link the others to.
  std::map<std::pair<dev_t, ino_t>, UniqueFd> links_;

  void copy_entry(int src, int dst, const char* name, const std::string& what) {
    struct stat st;
    check(::fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW), "stat", what);
    if (S_ISDIR(st.st_mode)) {
      check(::mkdirat(dst, name, 0700), "mkdir", what);
      UniqueFd s(check(::openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), "open", what));
      UniqueFd t(check(::openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), "open", what));
      copy_dir(s.get(), t.get(), what);
      copy_xattrs(s.get(), t.get());
      set_meta(t.get(), st, what);
    } else if (S_ISREG(st.st_mode)) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      if (st.st_nlink > 1) {
        auto it = links_.find(key);
        if (it != links_.end()) {
          if (::linkat(it->second.get(), "", dst, name, AT_EMPTY_PATH) == 0) return;
          std::string proc = "/proc/self/fd/" + std::to_string(it->second.get());
          if (::linkat(AT_FDCWD, proc.c_str(), dst, name, AT_SYMLINK_FOLLOW) == 0) return;
          // no link possible: an independent copy below
        }
      }
      UniqueFd s(check(::openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), "open", what));
      UniqueFd t(
          check(::openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600), "create", what));
      copy_data(s.get(), t.get(), what);
      copy_xattrs(s.get(), t.get());
      set_meta(t.get(), st, what);
      if (st.st_nlink > 1 && !links_.count(key)) {
        int p = ::openat(dst, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (p >= 0) links_.emplace(key, UniqueFd(p));
      }
    } else if (S_ISLNK(st.st_mode)) {
      char buf[PATH_MAX + 1];
      ssize_t n = check(::readlinkat(src, name, buf, PATH_MAX), "readlink", what);
      buf[n] = 0;
      check(::symlinkat(buf, dst, name), "symlink", what);
      check(::fchownat(dst, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW), "chown", what);
      struct timespec ts[2] = {st.st_atim, st.st_mtim};
      check(::utimensat(dst, name, ts, AT_SYMLINK_NOFOLLOW), "utimens", what);
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
      check(::mknodat(dst, name, st.st_mode, st.st_rdev), "mknod", what);
      UniqueFd t(check(::openat(dst, name, O_PATH | O_NOFOLLOW | O_CLOEXEC), "open", what));
      std::string p = "/proc/self/fd/" + std::to_string(t.get());
      check(::fchownat(t.get(), "", st.st_uid, st.st_gid, AT_EMPTY_PATH), "chown", what);
      check(::chmod(p.c_str(), st.st_mode & 07777), "chmod", what);
      struct timespec ts[2] = {st.st_atim, st.st_mtim};
      check(::utimensat(dst, name, ts, AT_SYMLINK_NOFOLLOW), "utimens", what);
    }
    // sockets are not content
  }
};

}  // namespace

bool copy_up(const std::string& path, int volume_fd) {
  UniqueFd root(check(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC), "open", "/"));
  open_how how{};
  how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, root.get(), path.c_str(), &how, sizeof how));
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;  // nothing in the image there
    throw SysError("openat2", path, errno);
  }
  UniqueFd src(fd);
  UniqueFd dst(check(::openat(volume_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open", "volume for " + path));
  if (!dir_is_empty(dst.get())) return false;
  Copier().copy_dir(src.get(), dst.get(), path);
  struct stat st;
  check(::fstat(src.get(), &st), "stat", path);
  check(::fchown(dst.get(), st.st_uid, st.st_gid), "chown", "volume for " + path);
  check(::fchmod(dst.get(), st.st_mode & 07777), "chmod", "volume for " + path);
  return true;
}

}  // namespace skiff
