// The container's filesystem view, built inside its own (private) mount namespace: overlay root,
// pivot_root, /proc /dev /sys /sys/fs/cgroup as Docker mounts them, user mounts, masked and
// read-only paths. Nothing here is visible in the host's mount namespace, so nothing can leak.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "init/spec.h"

namespace skiff {

// What the container's mounts come from on the host, taken while the host's tree is still ours
// to reach: bind sources and cgroup folders as detached clones (open_tree). Without a user
// namespace the child takes them itself (setup_rootfs does). In a new user namespace the child
// may not reach the data root's folders nor make device nodes or idmapped mounts, so the parent
// takes them all before the clone (the child inherits the fds): the root as a detached mount
// (overlay on idmapped lower layers, or the plain folder) and the host's
// device nodes to bind (mknod is refused in a user namespace).
struct HostSide {
  bool prepared = false;
  std::vector<UniqueFd> hold;
  std::vector<int> source_of;                               // per spec.mounts: a clone, or -1
  std::vector<std::pair<std::string, int>> cgroup_fds;      // v1 controller name -> clone
  UniqueFd root_tree;                                       // userns: the root, detached
  std::vector<std::pair<std::string, UniqueFd>> dev_binds;  // userns: container path -> host node clone
};

// userns: the container gets a new user namespace (the parent calls this before the clone);
// with root.idmap the lower layers are idmapped with the spec's maps.
HostSide prepare_host_side(const Spec& spec, bool userns);

void setup_rootfs(const Spec& spec, HostSide& host);

// Opens a pty from the current root's /dev/ptmx (the container's own devpts), makes the slave
// fds 0-2 and, with console, binds it on /dev/console. Returns the master (for the monitor).
int open_container_pty(bool console);

// Opens path (absolute, inside the current root) without following symlinks out of it and
// without magic links; creates missing components (dirs, and the last one as a dir or an
// empty file) when create is set. Returns an O_PATH fd.
int open_in_root(const std::string& path, bool create, bool last_is_dir);

}  // namespace skiff
