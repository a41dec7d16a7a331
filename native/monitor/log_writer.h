// Docker json-file log writer.
//
// One JSON object per line: {"log":"<text>","stream":"stdout"|"stderr","time":"<rfc3339nano>"}.
// Output is split on '\n' (the entry keeps its '\n'); a line longer than 16 KiB is cut into
// 16 KiB entries without '\n', and a trailing partial line is flushed as its own entry at EOF,
// as Docker's log copier does. With max_size > 0 the file is rotated before an entry would
// make it exceed max_size: log -> log.1 -> ... -> log.<max_file-1>; max_file 1 truncates in
// place. Write errors never stop the monitor: they are counted and the entry is dropped.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/fd.h"

namespace skiff::monitor {

class LogWriter {
 public:
  enum Stream { kStdout = 0, kStderr = 1 };
  static constexpr size_t kMaxLine = 16 * 1024;

  LogWriter() = default;
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Opens (appends to) path. max_size <= 0: no rotation. max_file >= 1. Throws SysError.
  void open(const std::string& path, int64_t max_size, int max_file);
  bool enabled() const { return fd_.valid(); }

  // Feeds raw output bytes of one stream; complete lines are written at once.
  void write(Stream s, const char* data, size_t len);
  // End of a stream: the buffered partial line (if any) becomes an entry.
  void flush_partial(Stream s);

  uint64_t write_errors() const { return write_errors_; }
  const std::string& last_error() const { return last_error_; }

 private:
  void add_entry(Stream s, const char* data, size_t len);
  void commit();  // writes pending_ to the file
  void rotate();
  void note_error(const char* call, const std::string& what, int err);

  std::string path_;
  UniqueFd fd_;
  int64_t size_ = 0;
  int64_t max_size_ = 0;
  int max_file_ = 1;
  std::string partial_[2];
  std::string pending_;
  uint64_t write_errors_ = 0;
  std::string last_error_;
};

}  // namespace skiff::monitor
