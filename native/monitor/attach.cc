#include "monitor/attach.h"

#include <sys/socket.h>

#include <cerrno>

namespace skiff::monitor {

bool OutQueue::push(const char* data, size_t len, size_t limit) {
  if (size() + len > limit) return false;
  if (off_ > 0 && off_ == buf_.size()) {
    buf_.clear();
    off_ = 0;
  } else if (off_ > 64 * 1024 && off_ * 2 > buf_.size()) {
    buf_.erase(0, off_);
    off_ = 0;
  }
  buf_.append(data, len);
  return true;
}

OutQueue::Flush OutQueue::flush(int fd, int* err) {
  while (off_ < buf_.size()) {
    ssize_t n = ::send(fd, buf_.data() + off_, buf_.size() - off_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Flush::kAgain;
      if (err) *err = errno;
      return Flush::kError;
    }
    off_ += static_cast<size_t>(n);
  }
  buf_.clear();
  off_ = 0;
  // Return memory after a burst, so an idle attach client costs next to nothing.
  if (buf_.capacity() > 64 * 1024) std::string().swap(buf_);
  return Flush::kDone;
}

bool queue_frame(Client& c, int stream, const char* data, size_t len, size_t limit) {
  char hdr[8] = {static_cast<char>(stream),
                 0,
                 0,
                 0,
                 static_cast<char>((len >> 24) & 0xFF),
                 static_cast<char>((len >> 16) & 0xFF),
                 static_cast<char>((len >> 8) & 0xFF),
                 static_cast<char>(len & 0xFF)};
  if (c.out.size() + sizeof hdr + len > limit) return false;
  c.out.push(hdr, sizeof hdr, limit);
  c.out.push(data, len, limit);
  return true;
}

bool queue_raw(Client& c, const char* data, size_t len, size_t limit) { return c.out.push(data, len, limit); }

static bool flag(const std::string& s, bool& out) {
  if (s == "0") out = false;
  else if (s == "1") out = true;
  else return false;
  return true;
}

bool parse_attach_args(Client& c, const std::string& a, const std::string& b, const std::string& d) {
  return flag(a, c.want_stdin) && flag(b, c.want_stdout) && flag(d, c.want_stderr);
}

}  // namespace skiff::monitor
