#include "init/sync.h"

#include <sys/socket.h>

#include <nlohmann/json.hpp>

namespace skiff {

void SyncChannel::send(const std::string& msg) {
  for (;;) {
    ssize_t n = ::send(fd_, msg.data(), msg.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    check(n, "send", "sync socket");
    return;
  }
}

std::string SyncChannel::recv() {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    check(n, "recv", "sync socket");
    return std::string(buf, static_cast<size_t>(n));
  }
}

void SyncChannel::send_error(const SysError& e) noexcept {
  try {
    nlohmann::json j = {{"call", e.call()}, {"target", e.target()}, {"errno", e.err()}, {"message", e.what()}};
    send("error " + j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } catch (...) {
  }
}

void SyncChannel::send_error(const std::string& message) noexcept { send_error(SysError("init", message, 0)); }

}  // namespace skiff
