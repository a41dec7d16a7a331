#include "init/process.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "common/error.h"
#include "common/fd.h"
#include "init/capabilities.h"
#include "init/rootfs.h"
#include "init/seccomp.h"
#include "init/user.h"

namespace skiff {
namespace {

std::string env_value(const std::vector<std::string>& env, const std::string& key) {
  for (const auto& e : env)
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=')
      return e.substr(key.size() + 1);
  return "";
}

bool has_env(const std::vector<std::string>& env, const std::string& key) {
  for (const auto& e : env)
    if (e.compare(0, key.size() + 1, key + "=") == 0) return true;
  return false;
}

bool is_executable_file(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

// execvp's lookup, against the container's PATH rather than ours. Messages are Docker's; a
// program that is not there is a NotFoundError (the daemon's exit code 127, start-failure.ts).
std::string find_executable(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) {
    struct stat st;
    if (::stat(name.c_str(), &st) < 0)
      throw NotFoundError("exec", "\"" + name + "\": stat " + name + ": no such file or directory", ENOENT);
    if (S_ISDIR(st.st_mode)) throw SysError("exec", "\"" + name + "\": is a directory: permission denied", EACCES);
    return name;
  }
  std::string path = env_value(env, "PATH");
  if (path.empty()) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (size_t s = 0, e; s <= path.size(); s = e + 1) {
    e = path.find(':', s);
    if (e == std::string::npos) e = path.size();
    std::string dir = path.substr(s, e - s);
    if (dir.empty()) dir = ".";
    std::string cand = dir + "/" + name;
    if (is_executable_file(cand)) return cand;
  }
  throw NotFoundError("exec", "\"" + name + "\": executable file not found in $PATH", ENOENT);
}

void enter_workdir(const std::string& cwd) {
  // Resolve inside the root (no magic links, so /proc/self/fd/N cannot lead out), create it
  // like Docker does, then make sure the kernel agrees we are below our root.
  UniqueFd dir(open_in_root(cwd, true, true));
  check(::fchdir(dir.get()), "chdir", cwd);
  char buf[PATH_MAX];
  if (!::getcwd(buf, sizeof buf)) throw SysError("getcwd", cwd, errno);
  if (buf[0] != '/') throw SysError("chdir", cwd + " is outside the container's root", EPERM);
}

}  // namespace

void exec_process(const ProcessSpec& p, const SeccompPrograms& seccomp) {
  if (::setsid() < 0 && errno != EPERM) throw SysError("setsid", "", errno);
  if (p.tty) check(::ioctl(0, TIOCSCTTY, 0), "ioctl(TIOCSCTTY)", "stdin");

  for (const auto& r : p.rlimits) {
    struct rlimit rl {
      static_cast<rlim_t>(r.soft), static_cast<rlim_t>(r.hard)
    };
    check(::setrlimit(r.resource, &rl), "setrlimit", std::to_string(r.resource));
  }
  // oom_score_adj: set by skiff-init on itself before the clone (main.cc), inherited.

  ResolvedUser user = resolve_user(p.user);
  for (gid_t g : additional_groups(p.group_add))
    if (std::find(user.groups.begin(), user.groups.end(), g) == user.groups.end()) user.groups.push_back(g);
  std::vector<std::string> env = p.env;
  if (!has_env(env, "HOME")) env.push_back("HOME=" + user.home);
  enter_workdir(p.cwd);
  std::string path = find_executable(p.args[0], env);

  std::vector<char*> argv, envp;
  for (const auto& a : p.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  drop_bounding_set(p.capabilities);
  check(::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)");
  if (p.no_new_privileges) check(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)");
  // Loaded while we still hold CAP_SYS_ADMIN (needed without no_new_privs); the policy allows
  // the few calls left: setgroups, setresgid, setresuid, capset, prctl, execve.
  if (p.seccomp) load_seccomp(seccomp);
  check(::setgroups(user.groups.size(), user.groups.data()), "setgroups");
  check(::setresgid(user.gid, user.gid, user.gid), "setresgid", std::to_string(user.gid));
  check(::setresuid(user.uid, user.uid, user.uid), "setresuid", std::to_string(user.uid));
  set_process_capabilities(p.capabilities);
  check(::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)");

  ::execve(path.c_str(), argv.data(), envp.data());
  int err = errno;
  if (err == EACCES) throw SysError("exec", "\"" + p.args[0] + "\": permission denied", err);
  throw SysError("exec", "\"" + p.args[0] + "\"", err);
}

}  // namespace skiff
