#include "init/sync.h"

#include <sys/socket.h>

#include <cstring>

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

void SyncChannel::send_fd(const std::string& msg, int fd) {
  union {
    struct cmsghdr align;
    char data[CMSG_SPACE(sizeof(int))];
  } control{};
  struct iovec iov {
    const_cast<char*>(msg.data()), msg.size()
  };
  struct msghdr mh {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control.data;
  mh.msg_controllen = sizeof control.data;
  struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  for (;;) {
    ssize_t n = ::sendmsg(fd_, &mh, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    check(n, "sendmsg", "sync socket (" + msg + ")");
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
    if (dynamic_cast<const NotFoundError*>(&e)) j["notFound"] = true;
    send("error " + j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } catch (...) {
  }
}

void SyncChannel::send_error(const std::string& message) noexcept { send_error(SysError("init", message, 0)); }

}  // namespace skiff
