// The N-API surface: host-side calls that are safe from Node's multi-threaded process.
// Nothing here forks, clones or changes namespaces; that is skiff-init's job.
#include <napi.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <csignal>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "addon/device_filter.h"
#include "common/error.h"
#include "common/idmap.h"
#include "common/overlay.h"
#include "common/sealed_exe.h"

namespace {

// Throws a JS Error with .errno (number), .code (its name, "EPERM"), .syscall and .path, like
// Node's own system errors.
[[noreturn]] void throw_sys(Napi::Env env, const skiff::SysError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("errno", Napi::Number::New(env, e.err()));
  const char* name = e.err() != 0 ? ::strerrorname_np(e.err()) : nullptr;
  if (name != nullptr) err.Set("code", Napi::String::New(env, name));
  err.Set("syscall", Napi::String::New(env, e.call()));
  err.Set("path", Napi::String::New(env, e.target()));
  throw err;
}

std::string opt_string(const Napi::Value& v) { return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string(); }

// mount(source, target, fstype, flags, data)
Napi::Value Mount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[1].IsString() || !info[3].IsNumber())
    throw Napi::TypeError::New(env, "mount(source, target, fstype, flags, data?)");
  std::string src = opt_string(info[0]), target = opt_string(info[1]), type = opt_string(info[2]);
  std::string data = info.Length() > 4 ? opt_string(info[4]) : "";
  unsigned long flags = static_cast<unsigned long>(info[3].As<Napi::Number>().Int64Value());
  if (::mount(src.empty() ? nullptr : src.c_str(), target.c_str(), type.empty() ? nullptr : type.c_str(), flags,
              data.empty() ? nullptr : data.c_str()) < 0)
    throw_sys(env, skiff::SysError("mount", src + " on " + target, errno));
  return env.Undefined();
}

// mountOverlay(target, lower[], upper, work, flags): overlayfs whatever the number of layers
// (see common/overlay.h); upper and work '' for a read-only stack of lower layers.
Napi::Value MountOverlay(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsString() || !info[1].IsArray() || !info[4].IsNumber())
    throw Napi::TypeError::New(env, "mountOverlay(target, lower[], upper, work, flags)");
  std::string target = opt_string(info[0]), upper = opt_string(info[2]), work = opt_string(info[3]);
  Napi::Array arr = info[1].As<Napi::Array>();
  std::vector<std::string> lower;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsString()) throw Napi::TypeError::New(env, "mountOverlay: lower must be strings");
    lower.push_back(v.As<Napi::String>().Utf8Value());
  }
  unsigned long flags = static_cast<unsigned long>(info[4].As<Napi::Number>().Int64Value());
  try {
    std::vector<skiff::UniqueFd> hold;
    std::string data = skiff::overlay_options(lower, upper, work, hold);
    if (::mount("overlay", target.c_str(), "overlay", flags, data.c_str()) < 0)
      throw skiff::SysError("mount", "overlay on " + target, errno);
  } catch (const skiff::SysError& e) {
    throw_sys(env, e);
  }
  return env.Undefined();
}

// chroot(path): this process's root becomes path, cwd "/". Only for a child process made for
// it (the archive helper for docker cp): never call it in the daemon.
Napi::Value Chroot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "chroot(path)");
  std::string path = opt_string(info[0]);
  if (::chroot(path.c_str()) < 0) throw_sys(env, skiff::SysError("chroot", path, errno));
  if (::chdir("/") < 0) throw_sys(env, skiff::SysError("chdir", "/ in " + path, errno));
  return env.Undefined();
}

// keepCapabilities(caps[]): the calling thread keeps only these capabilities (effective and
// permitted; inheritable and ambient emptied) and can gain no more (no_new_privs). For the
// archive helper after its chroot: without CAP_SYS_PTRACE and a full permitted set, /proc's
// magic links to other processes' roots (a --pid=host container shows the host's) are closed
// to it. Threads created afterwards (libuv's pool) inherit the reduced set. The process is also
// made non-dumpable: a container that sees it (--pid=host) cannot reach its /proc/<pid>/exe
// (the host's node) or fds.
Napi::Value KeepCapabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "keepCapabilities(caps[])");
  Napi::Array arr = info[0].As<Napi::Array>();
  uint64_t mask = 0;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    int cap = v.IsNumber() ? v.As<Napi::Number>().Int32Value() : -1;
    if (cap < 0 || cap > 63) throw Napi::TypeError::New(env, "keepCapabilities: capability numbers 0-63");
    mask |= uint64_t{1} << cap;
  }
  struct __user_cap_header_struct hdr {};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  struct __user_cap_data_struct data[2]{};
  data[0].effective = data[0].permitted = static_cast<uint32_t>(mask);
  data[1].effective = data[1].permitted = static_cast<uint32_t>(mask >> 32);
  if (::syscall(SYS_capset, &hdr, data) < 0) throw_sys(env, skiff::SysError("capset", "archive helper", errno));
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    throw_sys(env, skiff::SysError("prctl", "PR_CAP_AMBIENT_CLEAR_ALL", errno));
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    throw_sys(env, skiff::SysError("prctl", "PR_SET_NO_NEW_PRIVS", errno));
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) throw_sys(env, skiff::SysError("prctl", "PR_SET_DUMPABLE", errno));
  return env.Undefined();
}

// umount(target, flags)
Napi::Value Umount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "umount(target, flags?)");
  std::string target = opt_string(info[0]);
  int flags = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  if (::umount2(target.c_str(), flags) < 0) throw_sys(env, skiff::SysError("umount2", target, errno));
  return env.Undefined();
}

// fsType(path): statfs f_type, to tell cgroup2 from tmpfs/cgroup v1 and overlay from others.
Napi::Value FsType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "fsType(path)");
  std::string path = opt_string(info[0]);
  struct statfs st;
  if (::statfs(path.c_str(), &st) < 0) throw_sys(env, skiff::SysError("statfs", path, errno));
  return Napi::Number::New(env, static_cast<double>(static_cast<unsigned long>(st.f_type)));
}

// pidfdSignal(pid, signal): a signal that cannot hit a recycled pid once the pidfd is open.
Napi::Value PidfdSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "pidfdSignal(pid, signal)");
  int pid = info[0].As<Napi::Number>().Int32Value(), sig = info[1].As<Napi::Number>().Int32Value();
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) throw_sys(env, skiff::SysError("pidfd_open", std::to_string(pid), errno));
  int rc = static_cast<int>(::syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0));
  int err = errno;
  ::close(fd);
  if (rc < 0) throw_sys(env, skiff::SysError("pidfd_send_signal", std::to_string(pid), err));
  return env.Undefined();
}

// deviceFilter(cgroupDir, rules): the v2 device allowlist ("c 1:3 rwm" ...), an eBPF program
// attached to the cgroup (native/addon/device_filter.h).
Napi::Value DeviceFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray())
    throw Napi::TypeError::New(env, "deviceFilter(cgroupDir, rules)");
  std::string dir = opt_string(info[0]);
  Napi::Array arr = info[1].As<Napi::Array>();
  std::vector<skiff::DeviceRule> rules;
  try {
    for (uint32_t i = 0; i < arr.Length(); ++i) rules.push_back(skiff::parse_device_rule(opt_string(arr.Get(i))));
  } catch (const std::invalid_argument& e) {
    throw Napi::TypeError::New(env, e.what());
  }
  try {
    skiff::attach_device_filter(dir, rules);
  } catch (const skiff::SysError& e) {
    throw_sys(env, e);
  }
  return env.Undefined();
}

// sealedExecutable(path) -> fd: a sealed memfd copy of the executable (common/sealed_exe.h),
// O_CLOEXEC and numbered from 100 up, so that a child's stdio mapping never lands on it.
// The daemon runs its helpers as /proc/self/fd/<fd>: the path resolves in the forked child
// before the kernel closes the fd at exec.
Napi::Value SealedExecutable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "sealedExecutable(path)");
  std::string path = opt_string(info[0]);
  try {
    std::string name = path.substr(path.rfind('/') + 1);
    skiff::UniqueFd mem = skiff::sealed_copy_of(path, name);
    int high = skiff::check(::fcntl(mem.get(), F_DUPFD_CLOEXEC, 100), "fcntl(F_DUPFD_CLOEXEC)", path);
    return Napi::Number::New(env, high);
  } catch (const skiff::SysError& e) {
    throw_sys(env, e);
  }
}

// mknod(path, mode, major, minor): device nodes, fifos and overlay whiteouts (0:0 character
// devices) for the layer unpacker. mknod never follows a symlink in the last component: an
// existing name fails with EEXIST.
// idmappedClone(path, usernsFd): a detached idmapped clone of the folder (common/idmap.h), as an
// fd (O_CLOEXEC) the caller names as /proc/self/fd/<fd> in a mount and closes with closeFd.
Napi::Value IdmappedClone(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "idmappedClone(path, usernsFd)");
  try {
    return Napi::Number::New(
        env, skiff::idmapped_clone(opt_string(info[0]), info[1].As<Napi::Number>().Int32Value()).release());
  } catch (const skiff::SysError& e) {
    throw_sys(env, e);
  }
}

// closeFd(fd): an fd the addon handed out.
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "closeFd(fd)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (::close(fd) < 0) throw_sys(env, skiff::SysError("close", "fd " + std::to_string(fd), errno));
  return env.Undefined();
}

Napi::Value Mknod(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber())
    throw Napi::TypeError::New(env, "mknod(path, mode, major, minor)");
  std::string path = opt_string(info[0]);
  auto mode = static_cast<mode_t>(info[1].As<Napi::Number>().Uint32Value());
  auto major = info[2].As<Napi::Number>().Uint32Value(), minor = info[3].As<Napi::Number>().Uint32Value();
  if (::mknod(path.c_str(), mode, makedev(major, minor)) < 0) throw_sys(env, skiff::SysError("mknod", path, errno));
  return env.Undefined();
}

// lsetxattr(path, name, value): on the file itself, a symlink included (never its target).
Napi::Value Lsetxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsBuffer())
    throw Napi::TypeError::New(env, "lsetxattr(path, name, value: Buffer)");
  std::string path = opt_string(info[0]), name = opt_string(info[1]);
  auto value = info[2].As<Napi::Buffer<uint8_t>>();
  if (::lsetxattr(path.c_str(), name.c_str(), value.Data(), value.Length(), 0) < 0)
    throw_sys(env, skiff::SysError("lsetxattr", name + " on " + path, errno));
  return env.Undefined();
}

// lgetxattr(path, name) -> Buffer, or undefined when the file has no such attribute (ENODATA)
// or its file system none at all (ENOTSUP). The size is asked first; an attribute that grew
// meanwhile (ERANGE) is asked again.
Napi::Value Lgetxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString())
    throw Napi::TypeError::New(env, "lgetxattr(path, name)");
  std::string path = opt_string(info[0]), name = opt_string(info[1]);
  for (;;) {
    ssize_t size = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (size >= 0) {
      std::vector<char> buf(static_cast<size_t>(size));
      ssize_t got = ::lgetxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
      if (got >= 0) return Napi::Buffer<char>::Copy(env, buf.data(), static_cast<size_t>(got));
    }
    if (errno == ERANGE) continue;
    if (errno == ENODATA || errno == ENOTSUP) return env.Undefined();
    throw_sys(env, skiff::SysError("lgetxattr", name + " on " + path, errno));
  }
}

// llistxattr(path) -> the attribute names ([] where the file system has none: ENOTSUP).
Napi::Value Llistxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "llistxattr(path)");
  std::string path = opt_string(info[0]);
  std::vector<char> buf;
  for (;;) {
    ssize_t size = ::llistxattr(path.c_str(), nullptr, 0);
    if (size >= 0) {
      buf.resize(static_cast<size_t>(size));
      ssize_t got = size == 0 ? 0 : ::llistxattr(path.c_str(), buf.data(), buf.size());
      if (got >= 0) {
        buf.resize(static_cast<size_t>(got));
        break;
      }
    }
    if (errno == ERANGE) continue;
    if (errno == ENOTSUP) {
      buf.clear();
      break;
    }
    throw_sys(env, skiff::SysError("llistxattr", path, errno));
  }
  // the names, each NUL-terminated, one after the other
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (size_t at = 0; at < buf.size();) {
    size_t len = ::strnlen(buf.data() + at, buf.size() - at);
    out.Set(n++, Napi::String::New(env, buf.data() + at, len));
    at += len + 1;
  }
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("sealedExecutable", Napi::Function::New(env, SealedExecutable));
  exports.Set("mount", Napi::Function::New(env, Mount));
  exports.Set("mountOverlay", Napi::Function::New(env, MountOverlay));
  exports.Set("umount", Napi::Function::New(env, Umount));
  exports.Set("chroot", Napi::Function::New(env, Chroot));
  exports.Set("keepCapabilities", Napi::Function::New(env, KeepCapabilities));
  exports.Set("fsType", Napi::Function::New(env, FsType));
  exports.Set("pidfdSignal", Napi::Function::New(env, PidfdSignal));
  exports.Set("deviceFilter", Napi::Function::New(env, DeviceFilter));
  exports.Set("mknod", Napi::Function::New(env, Mknod));
  exports.Set("idmappedClone", Napi::Function::New(env, IdmappedClone));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("lsetxattr", Napi::Function::New(env, Lsetxattr));
  exports.Set("lgetxattr", Napi::Function::New(env, Lgetxattr));
  exports.Set("llistxattr", Napi::Function::New(env, Llistxattr));
  return exports;
}

}  // namespace

NODE_API_MODULE(skiff_native, Init)
