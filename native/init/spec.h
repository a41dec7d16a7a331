// The container/exec spec skiff-init reads from <bundle>/config.json (format: native/README.md).
#pragma once
#include <sys/types.h>
#include <sys/resource.h>

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace skiff {

struct MountSpec {
  std::string source, destination, type;
  std::vector<std::string> options;
};

struct RlimitSpec {
  int resource;
  uint64_t soft, hard;
};

struct ProcessSpec {
  std::vector<std::string> args, env;
  std::string cwd = "/";
  std::string user;
  std::vector<std::string> group_add;  // --group-add: group names or gids, added to the user's groups
  bool tty = false;
  std::vector<int> capabilities;
  bool no_new_privileges = false;
  bool seccomp = true;
  std::vector<RlimitSpec> rlimits;
  bool has_oom_score_adj = false;
  int oom_score_adj = 0;
};

struct RootSpec {
  std::vector<std::string> lower;  // top-most layer first (overlay's lowerdir order)
  std::string upper, work, target, plain;
  bool readonly = false;
  bool idmap = false;  // lower layers mounted idmapped into the user namespace's ranges
};

// One line of a user namespace's uid_map or gid_map.
struct IdMapping {
  uint32_t container_id, host_id, size;
};

struct CgroupMountSpec {
  enum Kind { None, V1, V2 } kind = None;
  std::vector<std::pair<std::string, std::string>> controllers;  // v1: name -> host dir
  std::vector<std::pair<std::string, std::string>> symlinks;     // v1: name -> co-mounted dir
};

// How each namespace is obtained: "new" (created), "host" (shared), or a path to join.
struct NamespaceSpec {
  std::string type;  // user, ipc, uts, net, pid, mnt, cgroup
  std::string how;
};

// A device node made in the container's /dev (--device): what the host's node is, where it goes.
struct DeviceSpec {
  std::string path;  // absolute, inside the container
  char type;         // 'c' or 'b'
  unsigned major, minor;
  mode_t mode;  // permission bits
  uid_t uid;
  gid_t gid;
};

struct Spec {
  std::string mode;
  RootSpec root;
  std::string hostname;
  std::vector<std::string> cgroup_procs;
  std::vector<NamespaceSpec> namespaces;
  std::vector<IdMapping> uid_mappings, gid_mappings;  // namespaces.user "new" only
  CgroupMountSpec cgroup_mount;
  std::vector<MountSpec> mounts;
  std::vector<std::string> masked_paths, readonly_paths;
  uint64_t shm_size = 64ull << 20;
  bool privileged = false;
  std::vector<DeviceSpec> devices;
  std::vector<std::pair<std::string, std::string>> sysctl;
  int target_pid = 0;
  std::string seccomp_cache;  // folder for compiled seccomp programs ("" = no cache)
  ProcessSpec process;

  // "new", "host" or a path for the namespace type; "host" when absent.
  std::string ns(const std::string& type) const;
};

// The keys load_spec looked up, found or not (paths: "process.rlimits[].soft"), and the keys whose
// values are maps of data (namespaces, sysctl): what `skiff-init check-bundle` reports.
struct KeyLog {
  std::set<std::string> read, maps;
};

Spec load_spec(const std::string& path, KeyLog* log = nullptr);

// `skiff-init check-bundle <config.json>`: parses the file as `create` would and prints
// {"read":[keys looked up],"ignored":[keys in the file never looked up]}; exit 1 on a parse error.
int check_bundle_main(const std::string& path);
int rlimit_from_name(const std::string& name);

}  // namespace skiff
