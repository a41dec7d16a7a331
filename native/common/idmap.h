// Idmapped mounts (Linux >= 5.12): a detached clone of a folder whose ids are shifted through a
// user namespace's maps. Shared by skiff-init (the container's lower layers) and the addon (the
// daemon's view of a stopped container for docker cp).
#pragma once
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "common/error.h"
#include "common/fd.h"

namespace skiff {

// open_tree(OPEN_TREE_CLONE) of path, then mount_setattr(MOUNT_ATTR_IDMAP) with the namespace:
// host uid 0 then shows as the namespace's first host id, as the container sees its files.
inline UniqueFd idmapped_clone(const std::string& path, int userns_fd) {
  UniqueFd tree(
      static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
  if (!tree.valid()) throw SysError("open_tree", path + " (clone for an idmapped mount)", errno);
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
    throw SysError("mount_setattr", path + " (MOUNT_ATTR_IDMAP, userns fd " + std::to_string(userns_fd) + ")", errno);
  return tree;
}

}  // namespace skiff
