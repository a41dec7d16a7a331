#include "monitor/log_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/error.h"
#include "monitor/json.h"
#include "monitor/util.h"

namespace skiff::monitor {

void LogWriter::open(const std::string& path, int64_t max_size, int max_file) {
  path_ = path;
  max_size_ = max_size > 0 ? max_size : 0;
  max_file_ = max_file >= 1 ? max_file : 1;
  fd_.reset(check(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640), "open", path));
  struct stat st;
  check(::fstat(fd_.get(), &st), "fstat", path);
  size_ = st.st_size;
}

void LogWriter::note_error(const char* call, const std::string& what, int err) {
  write_errors_++;
  last_error_ = SysError(call, what, err).what();
}

void LogWriter::write(Stream s, const char* data, size_t len) {
  if (!enabled()) return;
  std::string& partial = partial_[s];
  while (len > 0) {
    size_t room = kMaxLine - partial.size();
    size_t scan = len < room ? len : room;
    const char* nl = static_cast<const char*>(memchr(data, '\n', scan));
    size_t take;
    if (nl) {
      take = static_cast<size_t>(nl - data) + 1;
      if (partial.empty()) {
        add_entry(s, data, take);
      } else {
        partial.append(data, take);
        add_entry(s, partial.data(), partial.size());
        partial.clear();
      }
    } else if (len >= room) {
      take = room;  // buffer full: a partial entry without '\n'
      partial.append(data, take);
      add_entry(s, partial.data(), partial.size());
      partial.clear();
    } else {
      take = len;
      partial.append(data, take);
    }
    data += take;
    len -= take;
  }
  commit();
  // Keep idle memory small: a long partial line's buffer is released once it is written.
  if (partial.empty() && partial.capacity() > 4096) std::string().swap(partial);
}

void LogWriter::flush_partial(Stream s) {
  if (!enabled()) return;
  std::string& partial = partial_[s];
  if (!partial.empty()) {
    add_entry(s, partial.data(), partial.size());
    std::string().swap(partial);
  }
  commit();
}

void LogWriter::add_entry(Stream s, const char* data, size_t len) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  std::string entry;
  entry.reserve(len + 80);
  entry += "{\"log\":";
  append_json_string(entry, data, len);
  entry += s == kStdout ? ",\"stream\":\"stdout\",\"time\":\"" : ",\"stream\":\"stderr\",\"time\":\"";
  entry += rfc3339nano(ts);
  entry += "\"}\n";

  int64_t cur = size_ + static_cast<int64_t>(pending_.size());
  if (max_size_ > 0 && cur > 0 && cur + static_cast<int64_t>(entry.size()) > max_size_) {
    commit();
    rotate();
  }
  pending_ += entry;
  if (pending_.size() >= 64 * 1024) commit();
}

void LogWriter::commit() {
  if (pending_.empty()) return;
  if (fd_.valid()) {
    if (write_all(fd_.get(), pending_.data(), pending_.size())) {
      size_ += static_cast<int64_t>(pending_.size());
    } else {
      note_error("write", path_, errno);
      struct stat st;
      if (::fstat(fd_.get(), &st) == 0) size_ = st.st_size;
    }
  }
  pending_.clear();
  if (pending_.capacity() > 64 * 1024) std::string().swap(pending_);
}

void LogWriter::rotate() {
  if (max_file_ <= 1) {
    if (::ftruncate(fd_.get(), 0) < 0) {
      note_error("ftruncate", path_, errno);
      return;
    }
    size_ = 0;
    return;
  }
  // log.<max-2> -> log.<max-1>, ..., log.1 -> log.2, then log -> log.1. rename() replaces
  // the oldest file, which drops it.
  for (int i = max_file_ - 2; i >= 1; i--) {
    std::string from = path_ + "." + std::to_string(i);
    std::string to = path_ + "." + std::to_string(i + 1);
    if (::rename(from.c_str(), to.c_str()) < 0 && errno != ENOENT) note_error("rename", from + " to " + to, errno);
  }
  std::string first = path_ + ".1";
  if (::rename(path_.c_str(), first.c_str()) < 0) {
    note_error("rename", path_ + " to " + first, errno);
    // Could not rotate: truncate rather than grow without bound.
    if (::ftruncate(fd_.get(), 0) == 0) size_ = 0;
    return;
  }
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) {
    note_error("open", path_, errno);
    // Keep writing to the renamed file rather than losing output.
    return;
  }
  fd_.reset(fd);
  size_ = 0;
}

}  // namespace skiff::monitor
