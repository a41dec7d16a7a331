// skiff-monitor: one per container process (see native/README.md).
//
//   skiff-monitor --bundle <dir> --init <skiff-init> | --init-fd <fd> --mode create|exec [--tty] [--stdin]
//                 [--stdin-once] [--log <path> [--log-max-size BYTES] [--log-max-file N]
//                 [--log-format json|local]] [--journald-socket <path>] [--log-opts-file <path>]
//                 [--oom-file <path>]
//
// --log-opts-file: the log's attributes and journald fields (labels and env values: secrets,
// perhaps) come in a file private to root, never on the command line, which every user can read
// in /proc/<pid>/cmdline. Records "attr <len>\n<KEY=VALUE>\n" (json-file and local) and
// "journald-field <len>\n<KEY=VALUE>\n"; the file is removed once read.
//
// skiff-init runs from a sealed memfd (common/sealed_exe.h): the daemon's own copy passed as
// --init-fd, or one made here from --init. The monitor itself re-runs from a sealed copy when
// started from a path.
//
// The process the daemon spawns forks the real monitor and waits for one line from it on a
// pipe: `ready <monitorpid> <containerpid>` (printed, exit 0) or `error <json>` (printed,
// exit 1). The real monitor starts a new session, becomes a child subreaper, points its own
// stdio at /dev/null and lives until the container process has exited and is recorded.
//
//   skiff-monitor port-proxy <tcp|udp> <container ip> <container port> <container pid> <id>
//
// is something else: the userland proxy of a published port's IPv6 side (proxy.h), in this
// executable so that it too runs from the daemon's sealed copy and costs a small static
// process instead of a Node one.
#include <fcntl.h>
#include <malloc.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/error.h"
#include "common/fd.h"
#include "common/sealed_exe.h"
#include "monitor/json.h"
#include "monitor/monitor.h"
#include "monitor/proxy.h"
#include "monitor/util.h"

using skiff::check;
using skiff::SysError;
using skiff::UniqueFd;
using namespace skiff::monitor;

namespace {

std::string error_json(const std::exception& e) {
  if (auto* se = dynamic_cast<const SysError*>(&e)) {
    return "{\"call\":" + json_quote(se->call()) + ",\"target\":" + json_quote(se->target()) +
           ",\"errno\":" + std::to_string(se->err()) + ",\"message\":" + json_quote(se->what()) + "}";
  }
  return "{\"message\":" + json_quote(e.what()) + "}";
}

void print_line(const std::string& s) {
  std::string l = s;
  if (l.empty() || l.back() != '\n') l += '\n';
  write_all(1, l.data(), l.size());
}

// skiff-init as a sealed memfd at a high fd number (monitor_main moves it to kInitFd).
int sealed_init(const std::string& path, const std::string& fd_arg) {
  UniqueFd mem;
  if (!path.empty()) {
    if (access(path.c_str(), X_OK) < 0) throw SysError("access X_OK", path, errno);
    mem = skiff::sealed_copy_of(path, "skiff-init");
  } else {
    long long n;
    if (!parse_int64(fd_arg.c_str(), n) || n < 3 || n > INT_MAX)
      throw skiff::config_error("invalid --init-fd " + fd_arg);
    UniqueFd given(static_cast<int>(n));
    check(fcntl(given.get(), F_GETFD), "fcntl(F_GETFD)", "--init-fd " + fd_arg);
    if (skiff::is_sealed(given.get()))
      mem = UniqueFd(check(fcntl(given.get(), F_DUPFD_CLOEXEC, 0), "fcntl(F_DUPFD_CLOEXEC)", "--init-fd"));
    else mem = skiff::sealed_copy(given.get(), "skiff-init");
  }
  int high = check(fcntl(mem.get(), F_DUPFD_CLOEXEC, 10), "fcntl(F_DUPFD_CLOEXEC)", "skiff-init memfd");
  return high;
}

// Reads and removes the --log-opts-file (see the top of this file).
void read_log_opts(const std::string& path, Options& o) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) throw SysError("open", path, errno);
  struct stat st;
  check(fstat(fd.get(), &st), "fstat", path);
  if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0)
    throw skiff::config_error("--log-opts-file " + path + " must be a regular file only its owner can read");
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw SysError("read", path, errno);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > (64u << 20)) throw skiff::config_error("--log-opts-file " + path + " is too large");
  }
  unlink(path.c_str());
  auto bad = [&]() { return skiff::config_error("malformed --log-opts-file " + path); };
  size_t pos = 0;
  while (pos < text.size()) {
    size_t sp = text.find(' ', pos);
    size_t nl = text.find('\n', pos);
    if (sp == std::string::npos || nl == std::string::npos || sp > nl) throw bad();
    long long len;
    if (!parse_int64(text.substr(sp + 1, nl - sp - 1).c_str(), len) || len < 0) throw bad();
    size_t n = static_cast<size_t>(len);
    if (n > text.size() - nl - 1 || nl + 1 + n >= text.size() || text[nl + 1 + n] != '\n') throw bad();
    std::string kind = text.substr(pos, sp - pos);
    std::string value = text.substr(nl + 1, n);
    if (kind == "attr") o.log_attrs.push_back(std::move(value));
    else if (kind == "journald-field") o.journal_fields.push_back(std::move(value));
    else throw bad();
    pos = nl + 1 + n + 1;
  }
}

Options parse_args(int argc, char** argv) {
  Options o;
  bool have_size = false, have_files = false;
  std::string init_path, init_fd_arg, log_opts_file;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw skiff::config_error("option " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--bundle") o.bundle = value();
    else if (a == "--init") init_path = value();
    else if (a == "--init-fd") init_fd_arg = value();
    else if (a == "--mode") o.mode = value();
    else if (a == "--tty") o.tty = true;
    else if (a == "--stdin") o.open_stdin = true;
    else if (a == "--stdin-once") o.stdin_once = true;
    else if (a == "--log") o.log_path = value();
    else if (a == "--oom-file") o.oom_file = value();
    else if (a == "--journald-socket") o.journal_socket = value();
    else if (a == "--log-opts-file") log_opts_file = value();
    else if (a == "--log-format") {
      std::string f = value();
      if (f == "json") o.log_format = LogWriter::Format::kJson;
      else if (f == "local") o.log_format = LogWriter::Format::kLocal;
      else throw skiff::config_error("invalid --log-format " + f);
    } else if (a == "--log-max-size") {
      long long v;
      std::string s = value();
      if (!parse_int64(s.c_str(), v) || v < 0) throw skiff::config_error("invalid --log-max-size " + s);
      o.log_max_size = v;
      have_size = true;
    } else if (a == "--log-max-file") {
      long long v;
      std::string s = value();
      if (!parse_int64(s.c_str(), v) || v < 1 || v > 10000) throw skiff::config_error("invalid --log-max-file " + s);
      o.log_max_file = static_cast<int>(v);
      have_files = true;
    } else {
      throw skiff::config_error("unknown option " + a);
    }
  }
  if (o.bundle.empty()) throw skiff::config_error("--bundle is required");
  if (init_path.empty() == init_fd_arg.empty()) throw skiff::config_error("one of --init and --init-fd is required");
  if (o.mode != "create" && o.mode != "exec") throw skiff::config_error("--mode must be create or exec");
  if ((have_size || have_files) && o.log_path.empty())
    throw skiff::config_error("--log-max-size/--log-max-file need --log");
  if (!log_opts_file.empty()) read_log_opts(log_opts_file, o);
  // Paths must survive chdir("/").
  char buf[PATH_MAX];
  if (!realpath(o.bundle.c_str(), buf)) throw SysError("realpath", o.bundle, errno);
  o.bundle = buf;
  o.init_fd = sealed_init(init_path, init_fd_arg);
  if (!o.log_path.empty() && o.log_path[0] != '/') {
    if (!getcwd(buf, sizeof buf)) throw SysError("getcwd", "", errno);
    o.log_path = std::string(buf) + "/" + o.log_path;
  }
  if (!o.oom_file.empty() && o.oom_file[0] != '/') throw skiff::config_error("--oom-file must be absolute");
  return o;
}

void close_from(unsigned lo, unsigned hi) {
  if (lo > hi) return;
  if (syscall(SYS_close_range, lo, hi, 0U) == 0) return;
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 1 << 20) max = 1 << 20;
  for (long fd = lo; fd < max && fd <= static_cast<long>(hi); fd++) close(static_cast<int>(fd));
}

// The real monitor: never returns.
[[noreturn]] void monitor_main(Options opts, int report_w) {
  // Own stdio -> /dev/null at once, so the daemon's pipes see EOF when the first process
  // exits; nothing of the daemon's survives in this process but the report pipe.
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) {
    for (int fd = 0; fd < 3; fd++) dup2(devnull, fd);
    if (devnull > 2) close(devnull);
  }
  if (report_w != 3) {
    if (dup2(report_w, 3) < 0) _exit(1);
    close(report_w);
    report_w = 3;
  }
  fcntl(report_w, F_SETFD, FD_CLOEXEC);
  if (dup3(opts.init_fd, kInitFd, O_CLOEXEC) < 0) {
    std::string line = "error " + error_json(SysError("dup3", "skiff-init memfd to fd 4", errno)) + "\n";
    write_all(report_w, line.data(), line.size());
    _exit(1);
  }
  opts.init_fd = kInitFd;
  close_from(kInitFd + 1, ~0U);

  // Fixed thresholds (no dynamic growth): buffers of attach bursts are mmap'ed and given
  // back when freed, so an idle monitor returns to its small resident size.
  mallopt(M_MMAP_THRESHOLD, 64 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);

  UniqueFd report(report_w);
  auto fail = [&](const std::exception& e) {
    std::string line = "error " + error_json(e) + "\n";
    write_all(report.get(), line.data(), line.size());
    _exit(1);
  };
  try {
    check(setsid(), "setsid", "monitor");
    check(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl", "PR_SET_CHILD_SUBREAPER");
    check(chdir("/"), "chdir", "/");
    umask(022);
  } catch (const std::exception& e) {
    fail(e);
  }

  Monitor m(std::move(opts));
  try {
    m.start(std::move(report));
  } catch (const std::exception& e) {
    // start() owns the report fd now; its failure is reported on the same pipe (fd 3).
    std::string line = "error " + error_json(e) + "\n";
    write_all(3, line.data(), line.size());
    _exit(1);
  }
  try {
    m.run();
  } catch (const std::exception&) {
    _exit(1);
  }
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  try {
    skiff::run_from_sealed_copy(argv, "skiff-monitor");
    // Run from a memfd, the kernel names us after its fd number; ps should say what we are.
    prctl(PR_SET_NAME, "skiff-monitor", 0, 0, 0);
    if (argc >= 2 && std::string(argv[1]) == "port-proxy") return port_proxy_main(argc, argv);
    opts = parse_args(argc, argv);
  } catch (const std::exception& e) {
    print_line("error " + error_json(e));
    return 1;
  }

  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    print_line("error " + error_json(SysError("pipe2", "report pipe", errno)));
    return 1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    print_line("error " + error_json(SysError("fork", "monitor", errno)));
    return 1;
  }
  if (pid == 0) {
    close(p[0]);
    monitor_main(std::move(opts), p[1]);
  }

  // First process: relay the monitor's one line.
  close(p[1]);
  std::string line;
  char buf[4096];
  for (;;) {
    ssize_t n = read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  close(p[0]);
  size_t nl = line.find('\n');
  if (nl != std::string::npos) line.resize(nl);
  if (line.compare(0, 6, "ready ") == 0) {
    print_line(line);
    return 0;
  }
  if (line.compare(0, 6, "error ") == 0) {
    print_line(line);
    return 1;
  }
  // The monitor died without a word: collect its status for the message.
  int status = 0;
  std::string why = "monitor exited before reporting";
  if (waitpid(pid, &status, WNOHANG) == pid) {
    if (WIFEXITED(status)) why += " (status " + std::to_string(WEXITSTATUS(status)) + ")";
    else if (WIFSIGNALED(status)) why += " (signal " + std::to_string(WTERMSIG(status)) + ")";
  }
  print_line("error {\"message\":" + json_quote(why) + "}");
  return 1;
}
