#include "init/spec.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fd.h"
#include "init/capabilities.h"

namespace skiff {
namespace {

std::string read_file(const std::string& path) {
  UniqueFd fd(check(::open(path.c_str(), O_RDONLY | O_CLOEXEC), "open", path));
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    check(n, "read", path);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (16u << 20)) throw config_error(path + " is larger than 16 MiB");
  }
  return out;
}

// A JSON value with its place in the file, so that every key looked up is noted in the KeyLog
// (when there is one): `skiff-init check-bundle` compares those with the file's keys.
class Node {
 public:
  Node(const nlohmann::json& j, std::string path, KeyLog* log) : j_(j), path_(std::move(path)), log_(log) {}

  // Looking a key up counts as reading it, found or not.
  bool contains(const char* key) const {
    note(key);
    return j_.contains(key);
  }
  // The value of a key that is there (contains() first); json::at's error otherwise.
  Node at(const char* key) const {
    note(key);
    return Node(j_.at(key), child(key), log_);
  }
  bool is_null() const { return j_.is_null(); }
  bool is_object() const { return j_.is_object(); }
  bool is_array() const { return j_.is_array(); }
  template <typename T>
  T get() const {
    return j_.get<T>();
  }
  // The items of a list of objects, each at "<path>[]".
  template <typename F>
  void each(F f) const {
    for (const auto& v : j_) f(Node(v, path_ + "[]", log_));
  }
  // A map of data (namespaces, sysctl): its keys are values, not schema keys.
  template <typename F>
  void each_entry(F f) const {
    if (log_) log_->maps.insert(path_);
    for (const auto& [k, v] : j_.items()) f(k, v);
  }
  // A list of strings (absent or null: none).
  std::vector<std::string> strings(const char* key) const {
    std::vector<std::string> out;
    if (contains(key) && !j_[key].is_null())
      for (const auto& v : j_[key]) out.push_back(v.get<std::string>());
    return out;
  }
  template <typename T>
  T get_or(const char* key, T dflt) const {
    if (!contains(key) || j_[key].is_null()) return dflt;
    return j_[key].get<T>();
  }

 private:
  std::string child(const char* key) const { return path_.empty() ? std::string(key) : path_ + "." + key; }
  void note(const char* key) const {
    if (log_) log_->read.insert(child(key));
  }
  const nlohmann::json& j_;
  std::string path_;
  KeyLog* log_;
};

ProcessSpec parse_process(const Node& p) {
  ProcessSpec ps;
  ps.args = p.strings("args");
  if (ps.args.empty()) throw config_error("process.args is empty");
  ps.env = p.strings("env");
  ps.cwd = p.get_or<std::string>("cwd", "/");
  if (ps.cwd.empty() || ps.cwd[0] != '/') throw config_error("process.cwd must be absolute: " + ps.cwd);
  ps.user = p.get_or<std::string>("user", "");
  ps.group_add = p.strings("groupAdd");
  ps.tty = p.get_or<bool>("tty", false);
  for (const auto& name : p.strings("capabilities")) ps.capabilities.push_back(capability_from_name(name));
  ps.no_new_privileges = p.get_or<bool>("noNewPrivileges", false);
  ps.seccomp = p.get_or<std::string>("seccomp", "default") != "unconfined";
  if (p.contains("rlimits") && p.at("rlimits").is_array())
    p.at("rlimits").each([&](const Node& r) {
      ps.rlimits.push_back({rlimit_from_name(r.at("type").get<std::string>()), r.at("soft").get<uint64_t>(),
                            r.at("hard").get<uint64_t>()});
    });
  if (p.contains("oomScoreAdj") && !p.at("oomScoreAdj").is_null()) {
    ps.has_oom_score_adj = true;
    ps.oom_score_adj = p.at("oomScoreAdj").get<int>();
  }
  return ps;
}

void parse_root(const Node& j, Spec& s) {
  if (!j.contains("root") || !j.at("root").is_object()) return;
  Node r = j.at("root");
  s.root.lower = r.strings("lower");
  s.root.upper = r.get_or<std::string>("upper", "");
  s.root.work = r.get_or<std::string>("work", "");
  s.root.target = r.get_or<std::string>("target", "");
  s.root.plain = r.get_or<std::string>("plain", "");
  s.root.readonly = r.get_or<bool>("readonly", false);
  s.root.idmap = r.get_or<bool>("idmap", false);
}

std::vector<IdMapping> parse_id_mappings(const Node& j, const char* key) {
  std::vector<IdMapping> out;
  if (!j.contains(key) || !j.at(key).is_array()) return out;
  j.at(key).each([&](const Node& m) {
    out.push_back({m.at("containerId").get<uint32_t>(), m.at("hostId").get<uint32_t>(), m.at("size").get<uint32_t>()});
  });
  return out;
}

void parse_cgroup_mount(const Node& j, Spec& s) {
  if (!j.contains("cgroupMount") || !j.at("cgroupMount").is_object()) return;
  Node cm = j.at("cgroupMount");
  std::string kind = cm.at("kind").get<std::string>();
  if (kind == "v2") {
    s.cgroup_mount.kind = CgroupMountSpec::V2;
  } else if (kind == "v1") {
    s.cgroup_mount.kind = CgroupMountSpec::V1;
    cm.at("controllers").each([&](const Node& c) {
      s.cgroup_mount.controllers.emplace_back(c.at("name").get<std::string>(), c.at("hostPath").get<std::string>());
    });
    if (cm.contains("symlinks") && cm.at("symlinks").is_array())
      cm.at("symlinks").each([&](const Node& l) {
        s.cgroup_mount.symlinks.emplace_back(l.at("name").get<std::string>(), l.at("target").get<std::string>());
      });
  }
}

void parse_devices(const Node& j, Spec& s) {
  if (!j.contains("devices") || !j.at("devices").is_array()) return;
  j.at("devices").each([&](const Node& d) {
    std::string type = d.at("type").get<std::string>();
    std::string path = d.at("path").get<std::string>();
    if ((type != "c" && type != "b") || path.empty() || path[0] != '/') throw config_error("bad device " + path);
    s.devices.push_back({path, type[0], d.at("major").get<unsigned>(), d.at("minor").get<unsigned>(),
                         static_cast<mode_t>(d.get_or<unsigned>("fileMode", 0666) & 07777),
                         static_cast<uid_t>(d.get_or<unsigned>("uid", 0)),
                         static_cast<gid_t>(d.get_or<unsigned>("gid", 0))});
  });
}

Spec parse_spec(const Node& j) {
  Spec s;
  s.mode = j.get_or<std::string>("mode", "create");
  parse_root(j, s);
  s.hostname = j.get_or<std::string>("hostname", "");
  s.cgroup_procs = j.strings("cgroupProcs");
  bool cgroupns = j.get_or<bool>("cgroupns", false);
  if (j.contains("namespaces") && j.at("namespaces").is_object()) {
    j.at("namespaces").each_entry([&](const std::string& type, const nlohmann::json& how) {
      s.namespaces.push_back({type, how.get<std::string>()});
    });
  } else {
    for (const char* t : {"ipc", "uts", "net", "pid", "mnt"}) s.namespaces.push_back({t, "new"});
    if (cgroupns) s.namespaces.push_back({"cgroup", "new"});
  }
  s.uid_mappings = parse_id_mappings(j, "uidMappings");
  s.gid_mappings = parse_id_mappings(j, "gidMappings");
  parse_cgroup_mount(j, s);
  if (j.contains("mounts") && j.at("mounts").is_array())
    j.at("mounts").each([&](const Node& m) {
      s.mounts.push_back({m.get_or<std::string>("source", ""), m.at("destination").get<std::string>(),
                          m.get_or<std::string>("type", "bind"), m.strings("options")});
    });
  s.masked_paths = j.strings("maskedPaths");
  s.readonly_paths = j.strings("readonlyPaths");
  s.shm_size = j.get_or<uint64_t>("shmSize", 64ull << 20);
  s.privileged = j.get_or<bool>("privileged", false);
  parse_devices(j, s);
  if (j.contains("sysctl") && j.at("sysctl").is_object())
    j.at("sysctl").each_entry(
        [&](const std::string& k, const nlohmann::json& v) { s.sysctl.emplace_back(k, v.get<std::string>()); });
  s.target_pid = j.get_or<int>("targetPid", 0);
  s.seccomp_cache = j.get_or<std::string>("seccompCache", "");
  if (!j.contains("process")) throw config_error("spec has no process");
  s.process = parse_process(j.at("process"));
  return s;
}

nlohmann::json parse_file(const std::string& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw config_error(path + ": " + e.what());
  }
}

// The keys the file holds, as KeyLog paths; the values of maps are not looked into.
void keys_in(const nlohmann::json& j, const std::string& path, const KeyLog& log, std::set<std::string>& out) {
  if (j.is_array()) {
    for (const auto& v : j) keys_in(v, path + "[]", log, out);
    return;
  }
  if (!j.is_object() || log.maps.count(path)) return;
  for (const auto& [k, v] : j.items()) {
    std::string key = path.empty() ? k : path + "." + k;
    out.insert(key);
    keys_in(v, key, log, out);
  }
}

}  // namespace

std::string Spec::ns(const std::string& type) const {
  for (const auto& n : namespaces)
    if (n.type == type) return n.how;
  return "host";
}

int rlimit_from_name(const std::string& name) {
  static const std::pair<const char*, int> table[] = {
      {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
      {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME},
  };
  for (const auto& [n, v] : table)
    if (name == n) return v;
  throw config_error("unknown rlimit " + name);
}

Spec load_spec(const std::string& path, KeyLog* log) {
  nlohmann::json j = parse_file(path);
  try {
    return parse_spec(Node(j, "", log));
  } catch (const nlohmann::json::exception& e) {
    throw config_error(path + ": " + e.what());
  }
}

int check_bundle_main(const std::string& path) {
  try {
    KeyLog log;
    load_spec(path, &log);
    std::set<std::string> present;
    keys_in(parse_file(path), "", log, present);
    nlohmann::json ignored = nlohmann::json::array();
    for (const auto& k : present)
      if (!log.read.count(k)) ignored.push_back(k);
    nlohmann::json out = {{"read", log.read}, {"ignored", ignored}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error %s\n", e.what());
    return 1;
  }
}

}  // namespace skiff
