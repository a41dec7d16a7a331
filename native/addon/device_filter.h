// The device allowlist of a container on cgroup v2: v2 has no devices.allow file, so, as runc
// and crun do, an eBPF program of type CGROUP_DEVICE is attached to the container's cgroup.
// The rules are the v1 syntax the daemon already uses ("c 1:3 rwm", "b *:* m", "a").
#pragma once

#include <linux/bpf.h>

#include <string>
#include <vector>

namespace skiff {

struct DeviceRule {
  char type;        // 'a', 'b' or 'c'
  long major = -1;  // -1: any
  long minor = -1;
  unsigned access;  // BPF_DEVCG_ACC_* bits
};

// Parses "c 1:3 rwm"; throws std::invalid_argument on anything else.
DeviceRule parse_device_rule(const std::string& text);

// The program: the first rule that matches the device and covers every requested access allows;
// nothing matching denies. Pure: testable without the kernel.
std::vector<bpf_insn> compile_device_filter(const std::vector<DeviceRule>& rules);

// Loads the program and attaches it to the cgroup folder (BPF_F_ALLOW_MULTI, so the programs of
// parent cgroups still apply). Throws SysError with what failed.
void attach_device_filter(const std::string& cgroup_dir, const std::vector<DeviceRule>& rules);

}  // namespace skiff
