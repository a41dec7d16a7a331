// overlayfs mount options that fit mount(2)'s one page, however many layers: when the layer
// paths are too long together (an image of more than ~40 layers), each layer is named by an
// O_PATH fd of the caller, "/proc/self/fd/N", which the kernel resolves at mount time. (fsconfig's
// "lowerdir+" would also do, but only from Linux 6.8.) Shared by skiff-init and the addon.
#pragma once
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"

namespace skiff {

// In a user namespace (a rootless daemon): the uid map is not the host's "0 0 4294967295".
inline bool in_user_namespace() {
  static const bool answer = [] {
    UniqueFd f(::open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC));
    if (!f.valid()) return false;
    char buf[256] = {};
    ssize_t n = ::read(f.get(), buf, sizeof buf - 1);
    unsigned long inner = 1, outer = 1, count = 0;
    if (n <= 0 || std::sscanf(buf, "%lu %lu %lu", &inner, &outer, &count) != 3) return false;
    return !(inner == 0 && outer == 0 && count == 4294967295UL);
  }();
  return answer;
}

// The mount data for lower (top-most first), and upper/work when given (both or neither). The
// fds in `hold` must stay open until mount(2) has returned.
inline std::string overlay_options(const std::vector<std::string>& lower, const std::string& upper,
                                   const std::string& work, std::vector<UniqueFd>& hold) {
  if (lower.empty()) throw config_error("overlay: no lower layer");
  std::string joined;
  for (const auto& l : lower) {
    if (l.find_first_of(":,") != std::string::npos) throw config_error("layer path contains ':' or ',': " + l);
    joined += (joined.empty() ? "" : ":") + l;
  }
  // In a user namespace overlayfs may not write its trusted.overlay.* xattrs (whiteouts of
  // folders, opaque folders): userxattr makes it use user.overlay.*, as Docker rootless does.
  const std::string rest =
      (upper.empty() ? "" : ",upperdir=" + upper + ",workdir=" + work) + (in_user_namespace() ? ",userxattr" : "");
  if (joined.size() + rest.size() < 4000) return "lowerdir=" + joined + rest;
  std::string short_lower;
  for (const auto& l : lower) {
    hold.emplace_back(check(::open(l.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC), "open", "layer " + l));
    short_lower += (short_lower.empty() ? "" : ":") + std::string("/proc/self/fd/") + std::to_string(hold.back().get());
  }
  std::string data = "lowerdir=" + short_lower + rest;
  if (data.size() >= 4000) throw config_error("too many layers for one overlay mount: " + std::to_string(lower.size()));
  return data;
}

}  // namespace skiff
