// The container's filesystem view, built inside its own (private) mount namespace: overlay root,
// pivot_root, /proc /dev /sys /sys/fs/cgroup as Docker mounts them, user mounts, masked and
// read-only paths. Nothing here is visible in the host's mount namespace, so nothing can leak.
#pragma once
#include "init/spec.h"

namespace skiff {

void setup_rootfs(const Spec& spec);

// Opens a pty from the current root's /dev/ptmx (the container's own devpts), makes the slave
// fds 0-2 and, with console, binds it on /dev/console. Returns the master (for the monitor).
int open_container_pty(bool console);

// Opens path (absolute, inside the current root) without following symlinks out of it and
// without magic links; creates missing components (dirs, and the last one as a dir or an
// empty file) when create is set. Returns an O_PATH fd.
int open_in_root(const std::string& path, bool create, bool last_is_dir);

}  // namespace skiff
