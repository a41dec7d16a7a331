// Fills a new, empty volume with what the image has at its mount point (Docker's copy-up), as
// skiff-init builds the rootfs: the image side is read inside the container's root, the volume
// side only through fds made here, so no symlink in either can lead outside.
#pragma once
#include <string>

namespace skiff {

// Copies the tree at `path` (absolute, resolved inside the current root; a missing path or a
// non-directory copies nothing) into the directory `volume_fd` (an fd to the volume's root,
// e.g. an open_tree() clone) when that directory is empty: files, directories, symlinks,
// device nodes, fifos, hard links, owners, modes, times and xattrs; the volume's root takes the
// owner and mode of the image's directory. Returns whether it copied.
bool copy_up(const std::string& path, int volume_fd);

}  // namespace skiff
