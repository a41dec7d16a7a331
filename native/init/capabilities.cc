#include "init/capabilities.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "common/error.h"

namespace skiff {
namespace {

// clang-format off (a table laid out in columns)
// Index = capability number (linux/capability.h).
const char* const kNames[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};
// clang-format on
constexpr int kKnown = sizeof kNames / sizeof kNames[0];

// The kernel's highest capability, asked of the kernel itself (PR_CAPBSET_READ fails with
// EINVAL past it), never read from /proc: an exec runs this inside the container's mount
// namespace, where a mount over /proc/sys/kernel/cap_last_cap could make us keep the whole
// bounding set (CVE-2025-52881 class).
int last_cap() {
  static int cached = -1;
  if (cached >= 0) return cached;
  int c = 0;
  while (c < 64 && prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0) ++c;
  cached = c - 1;
  return cached;
}

}  // namespace

int capability_from_name(const std::string& name) {
  for (int i = 0; i < kKnown; ++i)
    if (name == kNames[i]) return i;
  throw config_error("unknown capability " + name);
}

bool has_capability(const std::vector<int>& caps, int cap) {
  return std::find(caps.begin(), caps.end(), cap) != caps.end();
}

void drop_bounding_set(const std::vector<int>& caps) {
  for (int c = 0; c <= last_cap(); ++c) {
    if (has_capability(caps, c)) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
      throw SysError("prctl(PR_CAPBSET_DROP)", c < kKnown ? kNames[c] : std::to_string(c), errno);
  }
}

void set_process_capabilities(const std::vector<int>& caps) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int c : caps) {
    if (c > last_cap()) continue;  // the kernel does not know it: nothing to grant
    data[c / 32].effective |= 1u << (c % 32);
    data[c / 32].permitted |= 1u << (c % 32);
  }
  check(static_cast<int>(syscall(SYS_capset, &hdr, data)), "capset");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    throw SysError("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", "", errno);
}

}  // namespace skiff
