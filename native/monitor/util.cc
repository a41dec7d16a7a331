#include "monitor/util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/error.h"
#include "common/fd.h"

namespace skiff::monitor {

std::string rfc3339nano(const struct timespec& ts) {
  struct tm tm;
  time_t secs = ts.tv_sec;
  gmtime_r(&secs, &tm);
  char buf[48];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long>(ts.tv_nsec));
  return buf;
}

std::string now_rfc3339nano() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return rfc3339nano(ts);
}

bool write_all(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

void atomic_write(const std::string& dir, const std::string& name, const std::string& data, bool durable) {
  std::string final_path = dir + "/" + name;
  std::string tmp_path = dir + "/." + name + ".tmp";
  {
    UniqueFd fd(check(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), "open", tmp_path));
    if (!write_all(fd.get(), data.data(), data.size())) throw SysError("write", tmp_path, errno);
    if (durable) check(::fsync(fd.get()), "fsync", tmp_path);
    int rc = ::close(fd.release());
    if (rc < 0 && errno != EINTR) throw SysError("close", tmp_path, errno);
  }
  if (::rename(tmp_path.c_str(), final_path.c_str()) < 0) {
    int err = errno;
    ::unlink(tmp_path.c_str());
    throw SysError("rename", tmp_path + " to " + final_path, err);
  }
  if (!durable) return;
  UniqueFd dfd(check(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open", dir));
  check(::fsync(dfd.get()), "fsync", dir);
}

bool read_small_file(const std::string& path, std::string& out, size_t max) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return false;
  out.clear();
  char buf[4096];
  while (out.size() < max) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return true;
}

long long read_keyed_counter(const std::string& path, const char* key) {
  std::string text;
  if (path.empty() || !read_small_file(path, text)) return -1;
  size_t klen = strlen(key);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.size() > klen + 1 && line.compare(0, klen, key) == 0 && line[klen] == ' ') {
      long long v;
      if (parse_int64(line.c_str() + klen + 1, v)) return v;
    }
  }
  return -1;
}

void set_nonblock(int fd) {
  int flags = check(::fcntl(fd, F_GETFL), "fcntl F_GETFL", "fd " + std::to_string(fd));
  check(::fcntl(fd, F_SETFL, flags | O_NONBLOCK), "fcntl F_SETFL O_NONBLOCK", "fd " + std::to_string(fd));
}

bool parse_int64(const char* s, long long& out) {
  if (!s || !*s) return false;
  errno = 0;
  char* end = nullptr;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || end == s) return false;
  while (*end == ' ' || *end == '\t' || *end == '\r') end++;  // tolerate trailing blanks
  if (*end != '\0') return false;
  out = v;
  return true;
}

}  // namespace skiff::monitor
