// User namespaces (--userns-remap): the id maps the parent writes for the child, a throwaway
// namespace with the same maps for idmapped mounts, and the child's switch to the namespace's root.
#pragma once
#include <sys/types.h>

#include <string>

#include "common/fd.h"
#include "common/idmap.h"
#include "init/spec.h"

namespace skiff {

// Writes /proc/<pid>/uid_map and gid_map (one write each, as the kernel wants) from the spec.
// Only a process in the parent user namespace with CAP_SETUID/CAP_SETGID there may do it: the
// parent side, before the child is let through its gate.
void write_id_maps(pid_t pid, const Spec& spec);

// A user namespace with the spec's maps, for mount_setattr(MOUNT_ATTR_IDMAP): made by a
// short-lived child that only waits until its maps are written; its fd keeps it alive.
UniqueFd mapped_userns(const Spec& spec);

// `skiff-init userns-hold <uid maps> <gid maps>` (maps as "container:host:size,..."): makes a user
// namespace with those maps for the daemon (which cannot clone: Node is multi-threaded), prints
// the fd that holds it, and keeps it until stdin closes; the daemon opens /proc/<pid>/fd/<fd>.
int userns_hold_main(int argc, char** argv);

// In the new (or joined) user namespace, the process still carries the host's ids, unmapped
// there: files it made would fail with EOVERFLOW. It becomes the namespace's root (uid and gid
// 0 must be mapped) and drops the host's supplementary groups.
void become_userns_root();

}  // namespace skiff
