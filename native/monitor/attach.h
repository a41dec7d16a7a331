// Connections on the monitor socket `ms`: a line command, then either one JSON reply or,
// for `attach`, the stream (Docker's multiplexed frames without a tty, raw bytes with one).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/fd.h"

namespace skiff::monitor {

// Outgoing bytes of one connection. Bounded: push() fails instead of growing past limit,
// so a slow attach client cannot make the monitor (or the container) wait or grow.
class OutQueue {
 public:
  bool push(const char* data, size_t len, size_t limit);
  bool empty() const { return off_ == buf_.size(); }
  size_t size() const { return buf_.size() - off_; }
  enum class Flush { kDone, kAgain, kError };
  // Writes as much as the socket takes (non-blocking, MSG_NOSIGNAL).
  Flush flush(int fd, int* err);

 private:
  std::string buf_;
  size_t off_ = 0;
};

struct Client {
  enum class Kind {
    kCommand,  // reading the command line
    kWait,     // `wait`: reply at exit
    kStart,    // `start`: reply when the exec succeeded or failed
    kAttach,   // streaming
    kClosing,  // reply queued; close once flushed
  };
  static constexpr size_t kMaxCommand = 4096;
  // Per attach client, on top of the socket buffer. Sized for the 2 MB resident budget.
  static constexpr size_t kMaxQueued = 512 * 1024;
  // A holding client after the process exited: what is left in the pipe is queued whole (it is
  // never dropped; the bound only guards against a writer that outlived the process).
  static constexpr size_t kMaxHeld = 8 << 20;

  explicit Client(int fd) : fd(fd) {}
  UniqueFd fd;
  Kind kind = Kind::kCommand;
  std::string in;  // command line being read
  OutQueue out;
  bool want_stdin = false, want_stdout = false, want_stderr = false;
  // `attach … hold`: the daemon's own reader (a build's RUN). While the process runs, its output
  // waits for this client instead of dropping it when it falls behind.
  bool holds_output = false;
  bool read_closed = false;  // peer shut down its write side
  bool dead = false;         // to be removed from the loop
};

// Attach frame for non-tty output: header [stream,0,0,0,len BE32] then the bytes.
// stream: 1 stdout, 2 stderr. Returns false when the client's queue would exceed its bound.
bool queue_frame(Client& c, int stream, const char* data, size_t len, size_t limit = Client::kMaxQueued);
// Raw output (tty). Same bound.
bool queue_raw(Client& c, const char* data, size_t len, size_t limit = Client::kMaxQueued);

// Parses "attach <0|1> <0|1> <0|1>" arguments into the client. False on bad syntax.
bool parse_attach_args(Client& c, const std::string& a, const std::string& b, const std::string& d);

}  // namespace skiff::monitor
