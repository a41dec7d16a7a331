// `skiff-monitor port-proxy` (see proxy.h): one epoll loop, every socket non-blocking.
//
// TCP bytes move with splice(2) through a pipe per direction (socket -> pipe -> socket): the
// kernel hands the received pages over instead of copying them into and out of a user buffer,
// which is what made the relay slower than DNAT (58% of a direct connection with 64 KiB
// read/write buffers, bench/network.ts).
//
// TCP connection sides are edge-triggered: each side keeps "readable" / "writable" flags that an
// event sets and EAGAIN clears, so a side that is not read (its peer's pipe is full) or not
// written (nothing to send) needs no epoll_ctl, and EPOLLHUP cannot spin. A connection pumped for
// kPumpRounds moves in a row goes to the back of the line (ready_), so one fast connection
// never starves the others or the signals. The listener, the UDP sockets, the signalfd and the
// pidfd are level-triggered.
#include "monitor/proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "monitor/util.h"

namespace skiff::monitor {
namespace {

constexpr int kHandedFd = 3;
constexpr int kPipeSize = 1 << 20;         // per connection and direction, where the kernel allows it
constexpr size_t kPipePool = 16;           // empty pipes kept for the next connections
constexpr int kPumpRounds = 16;            // moves per connection before others get a turn
constexpr int kAcceptBudget = 64;          // accepts per listener event
constexpr int kDatagramBudget = 64;        // datagrams per UDP socket event
constexpr int64_t kUdpIdleMs = 90 * 1000;  // dockerd's UDPConnTrackTimeout
constexpr int64_t kTickMs = 1000;          // pid check (without pidfd), UDP expiry, paused accept

int64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

struct Spec {
  bool udp = false;
  struct sockaddr_storage upstream {};  // the container's IPv4 or (dual-stack network) IPv6 address
  socklen_t upstream_len = 0;
  std::string upstream_text;  // "ip:port", for messages
  pid_t pid = 0;
  std::string id;
};

Spec parse_spec(int argc, char** argv) {
  if (argc != 7)
    throw config_error("usage: skiff-monitor port-proxy <tcp|udp> <container ip> <container port> <pid> <id>");
  Spec s;
  std::string proto = argv[2];
  if (proto == "udp") s.udp = true;
  else if (proto != "tcp") throw config_error("port-proxy: protocol must be tcp or udp, not " + proto);
  long long port, pid;
  if (!parse_int64(argv[4], port) || port < 1 || port > 65535)
    throw config_error(std::string("port-proxy: invalid container port ") + argv[4]);
  auto* v4 = reinterpret_cast<struct sockaddr_in*>(&s.upstream);
  auto* v6 = reinterpret_cast<struct sockaddr_in6*>(&s.upstream);
  if (inet_pton(AF_INET, argv[3], &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    s.upstream_len = sizeof *v4;
  } else if (inet_pton(AF_INET6, argv[3], &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    s.upstream_len = sizeof *v6;
  } else {
    throw config_error(std::string("port-proxy: invalid container address ") + argv[3]);
  }
  if (!parse_int64(argv[5], pid) || pid < 0 || pid > INT_MAX)
    throw config_error(std::string("port-proxy: invalid pid ") + argv[5]);
  s.pid = static_cast<pid_t>(pid);
  s.id = argv[6];
  if (s.id.empty()) throw config_error("port-proxy: empty container id");
  s.upstream_text = std::string(argv[3]) + ":" + argv[4];
  return s;
}

int sock_opt(int fd, int level, int name, const char* what) {
  int v = 0;
  socklen_t len = sizeof v;
  check(getsockopt(fd, level, name, &v, &len), "getsockopt", what);
  return v;
}

// What epoll's data.ptr points at.
enum class Kind { kListener, kFront, kSignal, kPid, kSide, kFlow };
struct Handle {
  Kind kind;
  void* owner = nullptr;
};

// One direction's pipe: `pending` bytes spliced in from the source and not yet out to the
// destination (the kernel keeps them; the proxy's memory does not grow with them).
struct Pipe {
  UniqueFd r, w;
  size_t cap = 0;
  size_t pending = 0;

  // false with errno set (out of descriptors or memory)
  bool open() {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) return false;
    r.reset(fds[0]);
    w.reset(fds[1]);
    // a bigger pipe moves more per splice and per wakeup; the default (64 KiB) is kept where the
    // kernel refuses (pipe-max-size, the user's pipe pages)
    int got = fcntl(w.get(), F_SETPIPE_SZ, kPipeSize);
    if (got < 0) got = fcntl(w.get(), F_GETPIPE_SZ);
    cap = got > 0 ? static_cast<size_t>(got) : 64 * 1024;
    return true;
  }
};

struct Conn;
struct Side {
  UniqueFd fd;
  Handle h{Kind::kSide};
  bool readable = false, writable = false;
  bool eof = false;   // read returned 0: the peer sent everything
  bool shut = false;  // shutdown(SHUT_WR) done: the other side's EOF forwarded
};

struct Conn {
  Side client, up;
  Pipe to_up, to_client;
  bool connecting = true;
  bool dead = false;
  bool queued = false;
};

struct Flow {
  UniqueFd fd;
  Handle h{Kind::kFlow};
  struct sockaddr_storage client {};
  socklen_t client_len = 0;
  int64_t last = 0;
};

// A client address as a map key: family, address, port (and scope id for IPv6).
std::string flow_key(const struct sockaddr_storage& ss) {
  std::string k(1, static_cast<char>(ss.ss_family));
  if (ss.ss_family == AF_INET6) {
    auto& a = reinterpret_cast<const struct sockaddr_in6&>(ss);
    k.append(reinterpret_cast<const char*>(&a.sin6_addr), sizeof a.sin6_addr);
    k.append(reinterpret_cast<const char*>(&a.sin6_port), sizeof a.sin6_port);
    k.append(reinterpret_cast<const char*>(&a.sin6_scope_id), sizeof a.sin6_scope_id);
  } else if (ss.ss_family == AF_INET) {
    auto& a = reinterpret_cast<const struct sockaddr_in&>(ss);
    k.append(reinterpret_cast<const char*>(&a.sin_addr), sizeof a.sin_addr);
    k.append(reinterpret_cast<const char*>(&a.sin_port), sizeof a.sin_port);
  }
  return k;
}

class Proxy {
 public:
  explicit Proxy(Spec spec) : spec_(std::move(spec)) {}

  void setup() {
    // the handed-over socket first (a missing fd 3 must not be taken by the fds made below): its
    // type must be the protocol's
    int type = sock_opt(kHandedFd, SOL_SOCKET, SO_TYPE, "fd 3 SO_TYPE (the bound socket)");
    if (type != (spec_.udp ? SOCK_DGRAM : SOCK_STREAM))
      throw SysError("port-proxy", std::string("fd 3 is not a ") + (spec_.udp ? "UDP" : "TCP") + " socket", EINVAL);
    front_.reset(kHandedFd);

    // a connection holds 6 descriptors (2 sockets, 2 pipes): the soft limit (often 1024) goes up
    // to the hard one, as Go does for docker-proxy; where it cannot, fewer connections fit
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }

    ::signal(SIGPIPE, SIG_IGN);
    ::signal(SIGHUP, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    check(sigprocmask(SIG_BLOCK, &mask, nullptr), "sigprocmask", "SIG_BLOCK SIGTERM SIGINT");
    sig_.reset(check(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC), "signalfd", "SIGTERM SIGINT"));
    ep_.reset(check(epoll_create1(EPOLL_CLOEXEC), "epoll_create1", ""));
    add(sig_.get(), EPOLLIN, &sig_h_);

    check(fcntl(front_.get(), F_SETFD, FD_CLOEXEC), "fcntl F_SETFD FD_CLOEXEC", "fd 3");
    set_nonblock(front_.get());
    if (!spec_.udp && !sock_opt(front_.get(), SOL_SOCKET, SO_ACCEPTCONN, "fd 3 SO_ACCEPTCONN"))
      check(listen(front_.get(), 511), "listen", "fd 3");
    add(front_.get(), EPOLLIN, spec_.udp ? &front_h_ : &listener_h_);

    if (spec_.pid > 0) {
      int fd = static_cast<int>(syscall(SYS_pidfd_open, spec_.pid, 0));
      if (fd >= 0) {
        pidfd_.reset(fd);
        add(pidfd_.get(), EPOLLIN, &pid_h_);
      } else if (errno == ESRCH) {
        done_ = true;  // the container is gone already
      } else if (errno != ENOSYS && errno != EINVAL && errno != EPERM) {
        throw SysError("pidfd_open", "pid " + std::to_string(spec_.pid), errno);
      }
    }
  }

  void run() {
    int64_t next_tick = now_ms() + kTickMs;
    struct epoll_event evs[64];
    while (!done_) {
      int64_t wait = next_tick - now_ms();
      if (wait < 0) wait = 0;
      if (!ready_.empty()) wait = 0;
      int n = epoll_wait(ep_.get(), evs, 64, static_cast<int>(wait));
      if (n < 0 && errno != EINTR) throw SysError("epoll_wait", "", errno);
      for (int i = 0; i < n; i++) dispatch(evs[i]);
      std::vector<Conn*> again;
      again.swap(ready_);
      for (Conn* c : again) {
        c->queued = false;
        if (!c->dead) pump(*c);
      }
      graveyard_.clear();
      if (now_ms() >= next_tick) {
        tick();
        next_tick = now_ms() + kTickMs;
      }
    }
  }

 private:
  void add(int fd, uint32_t events, Handle* h) {
    struct epoll_event ev {};
    ev.events = events;
    ev.data.ptr = h;
    check(epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &ev), "epoll_ctl ADD", "fd " + std::to_string(fd));
  }

  void dispatch(const struct epoll_event& ev) {
    auto* h = static_cast<Handle*>(ev.data.ptr);
    switch (h->kind) {
      case Kind::kSignal: on_signal(); break;
      case Kind::kPid: done_ = true; break;
      case Kind::kListener: accept_some(); break;
      case Kind::kFront: front_datagrams(); break;
      case Kind::kFlow: flow_datagrams(*static_cast<Flow*>(h->owner)); break;
      case Kind::kSide: {
        auto* c = static_cast<Conn*>(h->owner);
        if (c->dead) return;
        Side& s = h == &c->client.h ? c->client : c->up;
        if (ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s.readable = true;
        if (ev.events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) s.writable = true;
        if (&s == &c->up && c->connecting) {
          if (!(ev.events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) return;
          int err = 0;
          socklen_t len = sizeof err;
          if (getsockopt(s.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) return close_conn(*c);
          c->connecting = false;
        }
        if (!c->connecting) pump(*c);
        break;
      }
    }
  }

  void on_signal() {
    struct signalfd_siginfo si;
    while (read(sig_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
      if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) done_ = true;
    }
  }

  void tick() {
    if (spec_.pid > 0 && !pidfd_.valid() && ::kill(spec_.pid, 0) < 0 && errno == ESRCH) done_ = true;
    int64_t now = now_ms();
    for (auto it = flows_.begin(); it != flows_.end();) {
      if (now - it->second->last >= kUdpIdleMs) it = flows_.erase(it);
      else ++it;
    }
    if (accept_paused_) resume_accept();
  }

  // ---- TCP

  void accept_some() {
    for (int i = 0; i < kAcceptBudget; i++) {
      UniqueFd cfd(accept4(front_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!cfd.valid()) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) return pause_accept();
        continue;  // ECONNABORTED, EINTR, a network error on that one connection
      }
      open_conn(std::move(cfd));
    }
  }

  // Out of descriptors or memory: the pending connections wait in the backlog until a
  // connection closes or the next tick (level-triggered, the listener would spin meanwhile).
  void pause_accept() {
    struct epoll_event ev {};
    ev.data.ptr = &listener_h_;
    if (epoll_ctl(ep_.get(), EPOLL_CTL_MOD, front_.get(), &ev) == 0) accept_paused_ = true;
  }

  void resume_accept() {
    struct epoll_event ev {};
    ev.events = EPOLLIN;
    ev.data.ptr = &listener_h_;
    if (epoll_ctl(ep_.get(), EPOLL_CTL_MOD, front_.get(), &ev) == 0) accept_paused_ = false;
  }

  void open_conn(UniqueFd cfd) {
    UniqueFd ufd(socket(spec_.upstream.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!ufd.valid()) {
      if (errno == EMFILE || errno == ENFILE) pause_accept();
      return;  // the client's connection closes
    }
    int one = 1;
    setsockopt(cfd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(ufd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(ufd.get(), reinterpret_cast<const struct sockaddr*>(&spec_.upstream), spec_.upstream_len) < 0 &&
        errno != EINPROGRESS)
      return;
    auto c = std::make_unique<Conn>();
    if (!take_pipe(c->to_up) || !take_pipe(c->to_client)) {
      if (errno == EMFILE || errno == ENFILE) pause_accept();
      return;  // the client's connection closes (a pipe already taken closes with c)
    }
    c->client.fd = std::move(cfd);
    c->up.fd = std::move(ufd);
    c->client.h.owner = c->up.h.owner = c.get();
    const uint32_t events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    struct epoll_event ev {};
    ev.events = events;
    ev.data.ptr = &c->client.h;
    if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, c->client.fd.get(), &ev) < 0) return;
    ev.data.ptr = &c->up.h;
    if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, c->up.fd.get(), &ev) < 0) return;
    Conn* p = c.get();
    conns_.emplace(p, std::move(c));
  }

  // An empty pipe from the pool, or a new one: a connection of a few bytes then costs no
  // pipe2/fcntl calls (the connection rate).
  bool take_pipe(Pipe& p) {
    if (!pipes_.empty()) {
      p = std::move(pipes_.back());
      pipes_.pop_back();
      return true;
    }
    return p.open();
  }

  // Only an empty pipe can serve another connection; one with bytes left in it is closed.
  void give_pipe(Pipe& p) {
    if (p.r.valid() && p.pending == 0 && pipes_.size() < kPipePool) pipes_.push_back(std::move(p));
    p.r.reset();
    p.w.reset();
  }

  // Moves what it can both ways; false on a socket error (the connection is then closed).
  static bool move(Side& src, Side& dst, Pipe& pipe, bool& progress) {
    constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
    if (!src.eof && src.readable && pipe.pending < pipe.cap) {
      ssize_t n = splice(src.fd.get(), nullptr, pipe.w.get(), nullptr, pipe.cap - pipe.pending, kFlags);
      if (n > 0) {
        pipe.pending += static_cast<size_t>(n);
        progress = true;
      } else if (n == 0) {
        src.eof = true;
        progress = true;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // EAGAIN is also a pipe whose slots are full below its byte capacity (one page per
        // packet): the socket counts as drained only when the pipe was empty
        if (pipe.pending == 0) src.readable = false;
      } else if (errno != EINTR) {
        return false;
      }
    }
    if (pipe.pending > 0 && dst.writable) {
      ssize_t n = splice(pipe.r.get(), nullptr, dst.fd.get(), nullptr, pipe.pending, kFlags);
      if (n > 0) {
        pipe.pending -= static_cast<size_t>(n);
        progress = true;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        dst.writable = false;  // the pipe has bytes: the socket's send buffer is full
      } else if (n < 0 && errno != EINTR) {
        return false;
      }
    }
    if (src.eof && pipe.pending == 0 && !dst.shut) {
      // half-close: the peer learns that this side is done sending, and may still answer
      if (shutdown(dst.fd.get(), SHUT_WR) < 0) return false;
      dst.shut = true;
    }
    return true;
  }

  void pump(Conn& c) {
    for (int round = 0; round < kPumpRounds; round++) {
      bool progress = false;
      if (!move(c.client, c.up, c.to_up, progress) || !move(c.up, c.client, c.to_client, progress))
        return close_conn(c);
      if (c.client.shut && c.up.shut) return close_conn(c);  // both EOFs forwarded: done
      if (!progress) return;
    }
    if (!c.queued) {
      c.queued = true;
      ready_.push_back(&c);
    }
  }

  void close_conn(Conn& c) {
    c.dead = true;
    c.client.fd.reset();  // closing removes them from the epoll set
    c.up.fd.reset();
    give_pipe(c.to_up);
    give_pipe(c.to_client);
    auto it = conns_.find(&c);
    if (it != conns_.end()) {
      graveyard_.push_back(std::move(it->second));  // freed after this round of events
      conns_.erase(it);
    }
    if (accept_paused_) resume_accept();
  }

  // ---- UDP

  void front_datagrams() {
    for (int i = 0; i < kDatagramBudget; i++) {
      struct sockaddr_storage from {};
      socklen_t len = sizeof from;
      ssize_t n = recvfrom(front_.get(), dgram_, sizeof dgram_, 0, reinterpret_cast<struct sockaddr*>(&from), &len);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;  // EAGAIN, or an error queued on the socket (consumed by this call)
      }
      std::string key = flow_key(from);
      auto it = flows_.find(key);
      if (it == flows_.end()) {
        auto f = open_flow(from, len);
        if (!f) continue;  // out of descriptors: dropped, as a full queue would
        it = flows_.emplace(std::move(key), std::move(f)).first;
      }
      Flow& f = *it->second;
      f.last = now_ms();
      send(f.fd.get(), dgram_, static_cast<size_t>(n), MSG_NOSIGNAL);  // a full queue drops it
    }
  }

  std::unique_ptr<Flow> open_flow(const struct sockaddr_storage& from, socklen_t len) {
    auto f = std::make_unique<Flow>();
    f->fd.reset(socket(spec_.upstream.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!f->fd.valid()) return nullptr;
    if (connect(f->fd.get(), reinterpret_cast<const struct sockaddr*>(&spec_.upstream), spec_.upstream_len) < 0)
      return nullptr;
    f->client = from;
    f->client_len = len;
    f->h.owner = f.get();
    struct epoll_event ev {};
    ev.events = EPOLLIN;
    ev.data.ptr = &f->h;
    if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, f->fd.get(), &ev) < 0) return nullptr;
    return f;
  }

  void flow_datagrams(Flow& f) {
    for (int i = 0; i < kDatagramBudget; i++) {
      ssize_t n = recv(f.fd.get(), dgram_, sizeof dgram_, 0);
      if (n < 0) {
        // ECONNREFUSED: an ICMP error for an earlier datagram (nothing listens in the
        // container yet); the flow stays
        if (errno == EINTR || errno == ECONNREFUSED) continue;
        return;
      }
      f.last = now_ms();
      sendto(front_.get(), dgram_, static_cast<size_t>(n), 0, reinterpret_cast<const struct sockaddr*>(&f.client),
             f.client_len);
    }
  }

  Spec spec_;
  UniqueFd ep_, sig_, front_, pidfd_;
  Handle listener_h_{Kind::kListener}, front_h_{Kind::kFront}, sig_h_{Kind::kSignal}, pid_h_{Kind::kPid};
  bool done_ = false;
  bool accept_paused_ = false;
  std::unordered_map<Conn*, std::unique_ptr<Conn>> conns_;
  std::vector<std::unique_ptr<Conn>> graveyard_;
  std::vector<Conn*> ready_;
  std::vector<Pipe> pipes_;  // empty, for the next connections
  std::map<std::string, std::unique_ptr<Flow>> flows_;
  char dgram_[65536];
};

}  // namespace

int port_proxy_main(int argc, char** argv) {
  prctl(PR_SET_NAME, "skiff-proxy", 0, 0, 0);
  // bigger allocations are mmap'ed and given back when freed, so an idle proxy returns to its
  // small resident size (the relayed bytes stay in the kernel's pipes)
  mallopt(M_MMAP_THRESHOLD, 64 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
  try {
    if (chdir("/") < 0) throw SysError("chdir", "/", errno);
    auto proxy = std::make_unique<Proxy>(parse_spec(argc, argv));
    proxy->setup();
    proxy->run();
  } catch (const std::exception& e) {
    std::string line = std::string("error ") + e.what() + "\n";
    write_all(2, line.data(), line.size());
    return 1;
  }
  return 0;
}

}  // namespace skiff::monitor
