#include "init/spec.h"

#include <fcntl.h>
#include <sys/stat.h>

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

std::vector<std::string> strings(const nlohmann::json& j, const char* key) {
  std::vector<std::string> out;
  if (j.contains(key) && !j[key].is_null())
    for (const auto& v : j[key]) out.push_back(v.get<std::string>());
  return out;
}

template <typename T>
T get_or(const nlohmann::json& j, const char* key, T dflt) {
  if (!j.contains(key) || j[key].is_null()) return dflt;
  return j[key].get<T>();
}

ProcessSpec parse_process(const nlohmann::json& p) {
  ProcessSpec ps;
  ps.args = strings(p, "args");
  if (ps.args.empty()) throw config_error("process.args is empty");
  ps.env = strings(p, "env");
  ps.cwd = get_or<std::string>(p, "cwd", "/");
  if (ps.cwd.empty() || ps.cwd[0] != '/') throw config_error("process.cwd must be absolute: " + ps.cwd);
  ps.user = get_or<std::string>(p, "user", "");
  ps.group_add = strings(p, "groupAdd");
  ps.tty = get_or<bool>(p, "tty", false);
  for (const auto& name : strings(p, "capabilities")) ps.capabilities.push_back(capability_from_name(name));
  ps.no_new_privileges = get_or<bool>(p, "noNewPrivileges", false);
  ps.seccomp = get_or<std::string>(p, "seccomp", "default") != "unconfined";
  if (p.contains("rlimits") && p["rlimits"].is_array())
    for (const auto& r : p["rlimits"])
      ps.rlimits.push_back({rlimit_from_name(r.at("type").get<std::string>()), r.at("soft").get<uint64_t>(),
                            r.at("hard").get<uint64_t>()});
  if (p.contains("oomScoreAdj") && !p["oomScoreAdj"].is_null()) {
    ps.has_oom_score_adj = true;
    ps.oom_score_adj = p["oomScoreAdj"].get<int>();
  }
  return ps;
}

}  // namespace

std::string Spec::ns(const std::string& type) const {
  for (const auto& n : namespaces)
    if (n.type == type) return n.how;
  return "host";
}

int rlimit_from_name(const std::string& name) {
  static const std::pair<const char*, int> table[] = {
      {"RLIMIT_CPU", RLIMIT_CPU},       {"RLIMIT_FSIZE", RLIMIT_FSIZE},       {"RLIMIT_DATA", RLIMIT_DATA},
      {"RLIMIT_STACK", RLIMIT_STACK},   {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_NPROC", RLIMIT_NPROC},   {"RLIMIT_NOFILE", RLIMIT_NOFILE},     {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
      {"RLIMIT_AS", RLIMIT_AS},         {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},     {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
      {"RLIMIT_RTTIME", RLIMIT_RTTIME},
  };
  for (const auto& [n, v] : table)
    if (name == n) return v;
  throw config_error("unknown rlimit " + name);
}

Spec load_spec(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw config_error(path + ": " + e.what());
  }
  try {
    Spec s;
    s.mode = get_or<std::string>(j, "mode", "create");
    if (j.contains("root") && j["root"].is_object()) {
      const auto& r = j["root"];
      s.root.lower = strings(r, "lower");
      s.root.upper = get_or<std::string>(r, "upper", "");
      s.root.work = get_or<std::string>(r, "work", "");
      s.root.target = get_or<std::string>(r, "target", "");
      s.root.plain = get_or<std::string>(r, "plain", "");
      s.root.readonly = get_or<bool>(r, "readonly", false);
    }
    s.hostname = get_or<std::string>(j, "hostname", "");
    s.cgroup_procs = strings(j, "cgroupProcs");
    bool cgroupns = get_or<bool>(j, "cgroupns", false);
    if (j.contains("namespaces") && j["namespaces"].is_object()) {
      for (const auto& [type, how] : j["namespaces"].items()) s.namespaces.push_back({type, how.get<std::string>()});
    } else {
      for (const char* t : {"ipc", "uts", "net", "pid", "mnt"}) s.namespaces.push_back({t, "new"});
      if (cgroupns) s.namespaces.push_back({"cgroup", "new"});
    }
    if (j.contains("cgroupMount") && j["cgroupMount"].is_object()) {
      const auto& cm = j["cgroupMount"];
      std::string kind = cm.at("kind").get<std::string>();
      if (kind == "v2") {
        s.cgroup_mount.kind = CgroupMountSpec::V2;
      } else if (kind == "v1") {
        s.cgroup_mount.kind = CgroupMountSpec::V1;
        for (const auto& c : cm.at("controllers"))
          s.cgroup_mount.controllers.emplace_back(c.at("name").get<std::string>(), c.at("hostPath").get<std::string>());
        if (cm.contains("symlinks") && cm["symlinks"].is_array())
          for (const auto& l : cm["symlinks"])
            s.cgroup_mount.symlinks.emplace_back(l.at("name").get<std::string>(), l.at("target").get<std::string>());
      }
    }
    if (j.contains("mounts") && j["mounts"].is_array())
      for (const auto& m : j["mounts"])
        s.mounts.push_back({get_or<std::string>(m, "source", ""), m.at("destination").get<std::string>(),
                            get_or<std::string>(m, "type", "bind"), strings(m, "options")});
    s.masked_paths = strings(j, "maskedPaths");
    s.readonly_paths = strings(j, "readonlyPaths");
    s.shm_size = get_or<uint64_t>(j, "shmSize", 64ull << 20);
    s.privileged = get_or<bool>(j, "privileged", false);
    if (j.contains("devices") && j["devices"].is_array())
      for (const auto& d : j["devices"]) {
        std::string type = d.at("type").get<std::string>();
        std::string path = d.at("path").get<std::string>();
        if ((type != "c" && type != "b") || path.empty() || path[0] != '/') throw config_error("bad device " + path);
        s.devices.push_back({path, type[0], d.at("major").get<unsigned>(), d.at("minor").get<unsigned>(),
                             static_cast<mode_t>(get_or<unsigned>(d, "fileMode", 0666) & 07777),
                             static_cast<uid_t>(get_or<unsigned>(d, "uid", 0)), static_cast<gid_t>(get_or<unsigned>(d, "gid", 0))});
      }
    if (j.contains("sysctl") && j["sysctl"].is_object())
      for (const auto& [k, v] : j["sysctl"].items()) s.sysctl.emplace_back(k, v.get<std::string>());
    s.target_pid = get_or<int>(j, "targetPid", 0);
    s.seccomp_cache = get_or<std::string>(j, "seccompCache", "");
    if (!j.contains("process")) throw config_error("spec has no process");
    s.process = parse_process(j["process"]);
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw config_error(path + ": " + e.what());
  }
}

}  // namespace skiff
