// The sync channel with the monitor: fd 3, a SOCK_SEQPACKET socket (protocol: native/README.md).
#pragma once
#include <string>

#include "common/error.h"

namespace skiff {

class SyncChannel {
 public:
  explicit SyncChannel(int fd) : fd_(fd) {}
  void send(const std::string& msg);
  // Sends msg with fd attached (SCM_RIGHTS).
  void send_fd(const std::string& msg, int fd);
  // Blocks for the next message; "" on EOF.
  std::string recv();
  // Reports an error as `error <json>`; never throws.
  void send_error(const SysError& e) noexcept;
  void send_error(const std::string& message) noexcept;
  int fd() const { return fd_; }

 private:
  int fd_;
};

}  // namespace skiff
