#include "init/userns.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "common/error.h"

namespace skiff {
namespace {

std::string map_text(const std::vector<IdMapping>& maps) {
  std::string out;
  for (const auto& m : maps)
    out += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " + std::to_string(m.size) + "\n";
  return out;
}

void write_map(pid_t pid, const char* file, const std::vector<IdMapping>& maps) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  if (maps.empty()) throw config_error(std::string("a user namespace without ") + file + " entries");
  std::string text = map_text(maps);
  UniqueFd f(check(::open(path.c_str(), O_WRONLY | O_CLOEXEC), "open", path));
  if (::write(f.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    throw SysError("write", path + " <- " + text.substr(0, text.find('\n')) + (maps.size() > 1 ? " ..." : ""), errno);
}

}  // namespace

void write_id_maps(pid_t pid, const Spec& spec) {
  write_map(pid, "uid_map", spec.uid_mappings);
  write_map(pid, "gid_map", spec.gid_mappings);
}

UniqueFd mapped_userns(const Spec& spec) {
  int p[2];
  check(::pipe2(p, O_CLOEXEC), "pipe2", "userns holder");
  UniqueFd rd(p[0]), wr(p[1]);
  long pid = ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) throw SysError("clone", "user namespace for idmapped layers", errno);
  if (pid == 0) {
    // Only waits (EOF when the parent is done or gone), then goes: the fd keeps the namespace.
    wr.reset();
    char b;
    while (::read(rd.get(), &b, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  UniqueFd ns;
  try {
    write_id_maps(static_cast<pid_t>(pid), spec);
    std::string path = "/proc/" + std::to_string(pid) + "/ns/user";
    ns.reset(check(::open(path.c_str(), O_RDONLY | O_CLOEXEC), "open", path));
  } catch (...) {
    wr.reset();
    ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
    throw;
  }
  wr.reset();
  while (::waitpid(static_cast<pid_t>(pid), nullptr, 0) < 0 && errno == EINTR) {
  }
  return ns;
}

namespace {

// "c:h:s,c:h:s" (the daemon's argument) -> map lines
std::vector<IdMapping> parse_map_arg(const std::string& arg) {
  std::vector<IdMapping> out;
  size_t pos = 0;
  while (pos < arg.size()) {
    size_t end = arg.find(',', pos);
    if (end == std::string::npos) end = arg.size();
    unsigned long c = 0, h = 0, n = 0;
    if (std::sscanf(arg.substr(pos, end - pos).c_str(), "%lu:%lu:%lu", &c, &h, &n) != 3)
      throw config_error("bad id map " + arg + " (want container:host:size,...)");
    out.push_back({static_cast<uint32_t>(c), static_cast<uint32_t>(h), static_cast<uint32_t>(n)});
    pos = end + 1;
  }
  return out;
}

}  // namespace

int userns_hold_main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: skiff-init userns-hold <uid maps> <gid maps>\n");
    return 2;
  }
  UniqueFd ns;  // held until we exit
  try {
    Spec spec;
    spec.uid_mappings = parse_map_arg(argv[2]);
    spec.gid_mappings = parse_map_arg(argv[3]);
    ns = mapped_userns(spec);
    std::printf("%d\n", ns.get());
    std::fflush(stdout);
  } catch (const SysError& e) {
    std::fprintf(stderr, "error %s\n", e.what());
    return 1;
  }
  // Held until the daemon has opened /proc/<pid>/fd/<fd> and closes our stdin.
  char b[64];
  for (;;) {
    ssize_t n = ::read(0, b, sizeof b);
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
  return 0;
}

void become_userns_root() {
  check(::setgroups(0, nullptr), "setgroups", "[] (in the user namespace)");
  check(::setresgid(0, 0, 0), "setresgid", "0 (in the user namespace)");
  check(::setresuid(0, 0, 0), "setresuid", "0 (in the user namespace)");
}

}  // namespace skiff
