// Errors for the native layer: every failed syscall carries the call, what it was
// applied to and errno, so a message reads "mount /proc on /x/proc: Permission denied (errno 13)".
#pragma once
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace skiff {

class SysError : public std::runtime_error {
 public:
  SysError(std::string call, std::string what, int err)
      : std::runtime_error(format(call, what, err)), call_(std::move(call)), what_(std::move(what)), errno_(err) {}
  const std::string& call() const { return call_; }
  const std::string& target() const { return what_; }
  int err() const { return errno_; }

 private:
  static std::string format(const std::string& call, const std::string& what, int err) {
    std::string s = call;
    if (!what.empty()) s += " " + what;
    if (err != 0) s += ": " + std::string(strerror(err)) + " (errno " + std::to_string(err) + ")";
    return s;
  }
  std::string call_, what_;
  int errno_;
};

// A lookup that found nothing: the program to run is not there (Docker's exit code 127). errno
// alone cannot tell it: execve's own ENOENT (a missing interpreter) is another failure.
class NotFoundError : public SysError {
 public:
  using SysError::SysError;
};

// Throws SysError(call, what, errno) when rc < 0; returns rc otherwise.
template <typename T>
inline T check(T rc, const char* call, const std::string& what = "") {
  if (rc < 0) throw SysError(call, what, errno);
  return rc;
}

// A logic/config error that has no errno (bad spec, missing user, ...).
inline SysError config_error(const std::string& what) { return SysError("config", what, 0); }

}  // namespace skiff
