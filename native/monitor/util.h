// Small system helpers for the monitor: time stamps, atomic file writes, fd flags.
#pragma once
#include <ctime>
#include <string>

namespace skiff::monitor {

// RFC 3339 in UTC with a fixed 9-digit fraction ("2026-11-23T12:34:56.123456789Z"), the
// format of Docker's json-file log and of its state times.
std::string rfc3339nano(const struct timespec& ts);
std::string now_rfc3339nano();

// Writes dir/name atomically: temp file in dir, fsync, rename over name, fsync dir.
// Throws SysError.
// temp file + rename, + fsync of file and folder when durable. The bundle files (pid, state,
// exit record) live in the exec root, which is tmpfs and only matters while this boot lasts.
void atomic_write(const std::string& dir, const std::string& name, const std::string& data, bool durable = true);

// Reads up to max bytes of a (small) file. False when it cannot be opened or read.
bool read_small_file(const std::string& path, std::string& out, size_t max = 64 * 1024);

// Value N of the first line "<key> N" in a file like memory.events; -1 if absent/unreadable.
long long read_keyed_counter(const std::string& path, const char* key);

void set_nonblock(int fd);  // throws SysError

// Decimal parse of the whole string; false on junk, empty or overflow.
bool parse_int64(const char* s, long long& out);

// Writes all of data to a blocking fd (EINTR-safe); false on error.
bool write_all(int fd, const char* data, size_t len);

}  // namespace skiff::monitor
