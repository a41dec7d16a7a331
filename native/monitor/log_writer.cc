#include "monitor/log_writer.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/error.h"
#include "monitor/json.h"
#include "monitor/util.h"

namespace skiff::monitor {

namespace {

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void put_bytes_field(std::string& out, int field, const char* data, size_t len) {
  out += static_cast<char>((field << 3) | 2);
  put_varint(out, len);
  out.append(data, len);
}

void put_be32(std::string& out, uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16);
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}

// One field of the journal's native protocol; values with a newline take the binary form.
void put_journal_field(std::string& out, const char* key, size_t klen, const char* value, size_t vlen) {
  if (memchr(value, '\n', vlen) == nullptr) {
    out.append(key, klen);
    out += '=';
    out.append(value, vlen);
    out += '\n';
    return;
  }
  out.append(key, klen);
  out += '\n';
  uint64_t n = vlen;
  for (int i = 0; i < 8; i++) out += static_cast<char>((n >> (8 * i)) & 0xff);
  out.append(value, vlen);
  out += '\n';
}

void put_journal_pair(std::string& out, const std::string& kv) {
  size_t eq = kv.find('=');
  if (eq == std::string::npos || eq == 0) return;
  put_journal_field(out, kv.data(), eq, kv.data() + eq + 1, kv.size() - eq - 1);
}

}  // namespace

void LogWriter::open(const std::string& path, int64_t max_size, int max_file, Format format,
                     const std::vector<std::string>& attrs) {
  path_ = path;
  format_ = format;
  max_size_ = max_size > 0 ? max_size : 0;
  max_file_ = max_file >= 1 ? max_file : 1;
  attrs_.clear();
  for (const auto& kv : attrs) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    if (format == Format::kJson) {
      // Go's json.Marshal of a map[string]string: {"k":"v",...}, keys sorted (the daemon's order)
      attrs_ += attrs_.empty() ? ",\"attrs\":{" : ",";
      append_json_string(attrs_, kv.data(), eq);
      attrs_ += ':';
      append_json_string(attrs_, kv.data() + eq + 1, kv.size() - eq - 1);
      continue;
    }
    std::string attr;
    put_bytes_field(attr, 1, kv.data(), eq);
    put_bytes_field(attr, 2, kv.data() + eq + 1, kv.size() - eq - 1);
    put_bytes_field(attrs_, 6, attr.data(), attr.size());
  }
  if (format == Format::kJson && !attrs_.empty()) attrs_ += '}';
  fd_.reset(check(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640), "open", path));
  struct stat st;
  check(::fstat(fd_.get(), &st), "fstat", path);
  size_ = st.st_size;
}

void LogWriter::open_journal(const std::string& socket_path, const std::vector<std::string>& fields) {
  struct sockaddr_un addr;
  if (socket_path.size() >= sizeof addr.sun_path) throw SysError("socket", socket_path, ENAMETOOLONG);
  journal_.reset(check(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), "socket", "AF_UNIX datagram"));
  journal_path_ = socket_path;
  journal_fields_.clear();
  for (const auto& kv : fields) put_journal_pair(journal_fields_, kv);
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
        add_entry(s, data, take, Kind::kLine);
      } else {
        partial.append(data, take);
        add_entry(s, partial.data(), partial.size(), Kind::kLine);
        partial.clear();
      }
    } else if (len >= room) {
      take = room;  // buffer full: a partial entry without '\n'
      partial.append(data, take);
      add_entry(s, partial.data(), partial.size(), Kind::kCut);
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
    add_entry(s, partial.data(), partial.size(), Kind::kEof);
    std::string().swap(partial);
  }
  commit();
}

void LogWriter::add_entry(Stream s, const char* data, size_t len, Kind kind) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  // Docker's partial-message metadata: a cut line's pieces share an id; the piece that ends the
  // line is the last. What is left at EOF stays partial (no '\n' is added when it is read).
  bool partial = false, last = false;
  int ordinal = 0;
  std::string id;
  if (kind == Kind::kCut || kind == Kind::kEof || !cut_id_[s].empty()) {
    if (cut_id_[s].empty()) {
      char buf[64];
      snprintf(buf, sizeof buf, "%016llx%08x%016llx",
               static_cast<unsigned long long>(ts.tv_sec) * 1000000000ULL + ts.tv_nsec, static_cast<unsigned>(getpid()),
               static_cast<unsigned long long>(++cut_count_));
      cut_id_[s] = buf;
      cut_ordinal_[s] = 1;
    }
    partial = true;
    last = kind == Kind::kLine;
    id = cut_id_[s];
    ordinal = cut_ordinal_[s]++;
    if (kind != Kind::kCut) cut_id_[s].clear();
  }
  size_t text_len = kind == Kind::kLine && len > 0 ? len - 1 : len;  // without its '\n'

  if (journal_.valid()) send_journal(s, data, text_len, partial, last, id, ordinal);
  if (!fd_.valid()) return;

  std::string entry;
  if (format_ == Format::kLocal) encode_local(entry, s, data, text_len, ts, partial, last, id, ordinal);
  else encode_json(entry, s, data, len, ts);

  int64_t cur = size_ + static_cast<int64_t>(pending_.size());
  if (max_size_ > 0 && cur > 0 && cur + static_cast<int64_t>(entry.size()) > max_size_) {
    commit();
    rotate();
  }
  pending_ += entry;
  if (pending_.size() >= 64 * 1024) commit();
}

void LogWriter::encode_json(std::string& entry, Stream s, const char* data, size_t len, const struct timespec& ts) {
  entry.reserve(len + 80 + attrs_.size());
  entry += "{\"log\":";
  append_json_string(entry, data, len);
  entry += s == kStdout ? ",\"stream\":\"stdout\"" : ",\"stream\":\"stderr\"";
  entry += attrs_;
  entry += ",\"time\":\"";
  entry += rfc3339nano(ts);
  entry += "\"}\n";
}

void LogWriter::encode_local(std::string& entry, Stream s, const char* data, size_t len, const struct timespec& ts,
                             bool partial, bool last, const std::string& id, int ordinal) {
  std::string msg;
  msg.reserve(len + 64 + attrs_.size() + id.size());
  put_bytes_field(msg, 1, s == kStdout ? "stdout" : "stderr", 6);
  msg += static_cast<char>(2 << 3);
  put_varint(msg, static_cast<uint64_t>(static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec));
  if (len > 0) put_bytes_field(msg, 3, data, len);
  if (partial) {
    msg += static_cast<char>(4 << 3);
    msg += '\x01';
    std::string md;
    if (last) {
      md += static_cast<char>(1 << 3);
      md += '\x01';
    }
    put_bytes_field(md, 2, id.data(), id.size());
    md += static_cast<char>(3 << 3);
    put_varint(md, static_cast<uint64_t>(ordinal));
    put_bytes_field(msg, 5, md.data(), md.size());
  }
  msg += attrs_;
  entry.reserve(msg.size() + 8);
  put_be32(entry, static_cast<uint32_t>(msg.size()));
  entry += msg;
  put_be32(entry, static_cast<uint32_t>(msg.size()));
}

void LogWriter::send_journal(Stream s, const char* data, size_t len, bool partial, bool last, const std::string& id,
                             int ordinal) {
  std::string dg;
  dg.reserve(journal_fields_.size() + len + 128);
  put_journal_field(dg, "MESSAGE", 7, data, len);
  dg += s == kStdout ? "PRIORITY=6\n" : "PRIORITY=3\n";
  dg += journal_fields_;
  if (partial) {
    put_journal_field(dg, "CONTAINER_PARTIAL_ID", 20, id.data(), id.size());
    std::string ord = std::to_string(ordinal);
    put_journal_field(dg, "CONTAINER_PARTIAL_ORDINAL", 25, ord.data(), ord.size());
    dg += last ? "CONTAINER_PARTIAL_LAST=true\n" : "CONTAINER_PARTIAL_LAST=false\nCONTAINER_PARTIAL_MESSAGE=true\n";
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, journal_path_.c_str(), journal_path_.size() + 1);
  for (;;) {
    ssize_t n = ::sendto(journal_.get(), dg.data(), dg.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                         reinterpret_cast<struct sockaddr*>(&addr), sizeof addr);
    if (n >= 0) return;
    if (errno == EINTR) continue;
    // EAGAIN (the journal is behind), ECONNREFUSED/ENOENT (it is gone): dropped, never waited for.
    note_error("sendto", journal_path_, errno);
    return;
  }
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
