// The container's log, as Docker's logging drivers write it.
//
// Output is split on '\n' (an entry keeps its '\n'); a line longer than 16 KiB is cut into
// 16 KiB entries without '\n', and a trailing partial line is flushed as its own entry at EOF,
// as Docker's log copier does. Each entry goes to the enabled sinks:
//
// - a file, in one of two formats:
//   json   json-file: {"log":"<text>","stream":"stdout"|"stderr","attrs":{...},"time":"<rfc3339nano>"}
//          a line ("attrs" only when there are some, as Docker's jsonlog writes them).
//   local  Docker's `local` driver (also its "dual logging" cache): each entry is a protobuf
//          LogEntry {1 source, 2 time_nano, 3 line (without its '\n'), 4 partial,
//          5 {1 last, 2 id, 3 ordinal}, 6 attrs {1 key, 2 value}} framed by its size as a
//          big-endian uint32 before and after it (so it can be read backwards).
//   With max_size > 0 the file is rotated before an entry would make it exceed max_size:
//   log -> log.1 -> ... -> log.<max_file-1>; max_file 1 truncates in place.
// - the systemd journal (Docker's journald driver): one native-protocol datagram an entry,
//   sent without waiting (MSG_DONTWAIT): a journal that does not keep up loses entries, the
//   container never waits for it.
//
// Write errors never stop the monitor: they are counted and the entry is dropped.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/fd.h"

namespace skiff::monitor {

class LogWriter {
 public:
  enum Stream { kStdout = 0, kStderr = 1 };
  enum class Format { kJson, kLocal };
  static constexpr size_t kMaxLine = 16 * 1024;

  LogWriter() = default;
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Opens (appends to) path. max_size <= 0: no rotation. max_file >= 1. attrs ("key=value",
  // sorted by key) go with every entry, in either format. Throws SysError.
  void open(const std::string& path, int64_t max_size, int max_file, Format format = Format::kJson,
            const std::vector<std::string>& attrs = {});
  // Sends every entry to the journal socket too, with these fields ("KEY=VALUE") besides
  // MESSAGE and PRIORITY. Throws SysError when no socket can be made.
  void open_journal(const std::string& socket_path, const std::vector<std::string>& fields);
  bool enabled() const { return fd_.valid() || journal_.valid(); }

  // Feeds raw output bytes of one stream; complete lines are written at once.
  void write(Stream s, const char* data, size_t len);
  // End of a stream: the buffered partial line (if any) becomes an entry.
  void flush_partial(Stream s);

  uint64_t write_errors() const { return write_errors_; }
  const std::string& last_error() const { return last_error_; }

 private:
  enum class Kind { kLine, kCut, kEof };  // ends with '\n'; cut at kMaxLine; the rest at EOF
  void add_entry(Stream s, const char* data, size_t len, Kind kind);
  void encode_json(std::string& out, Stream s, const char* data, size_t len, const struct timespec& ts);
  void encode_local(std::string& out, Stream s, const char* data, size_t len, const struct timespec& ts, bool partial,
                    bool last, const std::string& id, int ordinal);
  void send_journal(Stream s, const char* data, size_t len, bool partial, bool last, const std::string& id,
                    int ordinal);
  void commit();  // writes pending_ to the file
  void rotate();
  void note_error(const char* call, const std::string& what, int err);

  std::string path_;
  UniqueFd fd_;
  Format format_ = Format::kJson;
  std::string attrs_;  // field 6 of every local entry, or ,"attrs":{...} of a json one; encoded once
  int64_t size_ = 0;
  int64_t max_size_ = 0;
  int max_file_ = 1;
  std::string partial_[2];
  // A line cut into several entries (Docker's PartialLogMetaData): its id and next ordinal.
  std::string cut_id_[2];
  int cut_ordinal_[2] = {0, 0};
  uint64_t cut_count_ = 0;
  std::string pending_;
  UniqueFd journal_;
  std::string journal_path_;
  std::string journal_fields_;  // encoded once
  uint64_t write_errors_ = 0;
  std::string last_error_;
};

}  // namespace skiff::monitor
