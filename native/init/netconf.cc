// `skiff-init net ...`: the network plumbing the daemon asks for, over rtnetlink, in one short
// single-threaded process (Node must never setns). One process per container start: it makes
// the veth pair on the host with its peer created straight inside the container's netns, puts
// the host end on the bridge, then joins the container's netns and configures the peer there.
//
//   skiff-init net bridge <name> <addr/prefix> <mtu> [<addr6/prefix6>]
//                                          bridge (kept if present), addresses, up
//   skiff-init net delete <ifname>         delete a link (ENODEV is fine)
//   skiff-init net attach <pid> <bridge> <host-if> <ctr-if> <addr/prefix> <mac> <gateway|-> <mtu>
//                         [<addr6/prefix6|-> <gateway6|->]
//
// IPv6 addresses are added with IFA_F_NODAD: usable at once, never "tentative". A container
// interface without an IPv6 address gets disable_ipv6=1 (as Docker does: not even fe80::).
//
// With <pid> "-" the pid is read from stdin: the daemon starts the helper while the container is
// still being created (hiding the process start-up) and writes the pid once it exists; EOF
// without a pid (the start failed) ends the helper with exit 3 and nothing done.
//
// Exit 0 on success; on failure one line "error <call> <target>: <strerror> (errno N)" on stderr.
#include "init/netconf.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"

namespace skiff {
namespace {

// A netlink request under construction: header, fixed part, then nested attributes.
class NlMsg {
 public:
  NlMsg(uint16_t type, uint16_t flags) : buf_(NLMSG_HDRLEN, 0) {
    hdr()->nlmsg_type = type;
    hdr()->nlmsg_flags = static_cast<uint16_t>(flags | NLM_F_REQUEST | NLM_F_ACK);
  }
  template <typename T>
  T* fixed() {
    size_t off = buf_.size();
    buf_.resize(off + NLMSG_ALIGN(sizeof(T)), 0);
    return reinterpret_cast<T*>(buf_.data() + off);
  }
  void attr(uint16_t type, const void* data, size_t len) {
    size_t off = buf_.size();
    buf_.resize(off + RTA_SPACE(len), 0);
    auto* rta = reinterpret_cast<rtattr*>(buf_.data() + off);
    rta->rta_type = type;
    rta->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    if (len) std::memcpy(RTA_DATA(rta), data, len);
  }
  void str(uint16_t type, const std::string& s) { attr(type, s.c_str(), s.size() + 1); }
  void u32(uint16_t type, uint32_t v) { attr(type, &v, sizeof v); }
  size_t begin(uint16_t type) {
    size_t off = buf_.size();
    attr(type, nullptr, 0);
    return off;
  }
  void end(size_t off) {
    reinterpret_cast<rtattr*>(buf_.data() + off)->rta_len = static_cast<uint16_t>(buf_.size() - off);
  }
  // Reserves room for a fixed struct inside a nested attribute (veth peer's ifinfomsg).
  template <typename T>
  T* inner() {
    return fixed<T>();
  }
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  std::vector<char>& finish() {
    hdr()->nlmsg_len = static_cast<uint32_t>(buf_.size());
    return buf_;
  }

 private:
  std::vector<char> buf_;
};

class Netlink {
 public:
  Netlink() : fd_(check(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), "socket", "NETLINK_ROUTE")) {
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    check(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), "bind", "NETLINK_ROUTE");
  }
  // Sends one request and waits for its ack; returns 0 or the negative errno the kernel gave.
  int call(NlMsg& m) {
    auto& b = m.finish();
    m.hdr()->nlmsg_seq = ++seq_;
    if (::send(fd_.get(), b.data(), b.size(), 0) < 0) throw SysError("send", "netlink", errno);
    char reply[8192];
    for (;;) {
      ssize_t n = ::recv(fd_.get(), reply, sizeof reply, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw SysError("recv", "netlink", errno);
      for (auto* h = reinterpret_cast<nlmsghdr*>(reply); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_seq != seq_) continue;
        if (h->nlmsg_type == NLMSG_ERROR) return reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
      }
    }
  }
  void must(NlMsg& m, const char* what, const std::string& target, int ok_errno = 0) {
    int rc = call(m);
    if (rc < 0 && -rc != ok_errno) throw SysError(what, target, -rc);
  }

 private:
  UniqueFd fd_;
  uint32_t seq_ = 0;
};

struct Cidr {
  in_addr addr{};
  int prefix = 0;
};

Cidr parse_cidr(const std::string& s) {
  Cidr c;
  auto slash = s.find('/');
  if (slash == std::string::npos) throw config_error("address without prefix: " + s);
  if (::inet_pton(AF_INET, s.substr(0, slash).c_str(), &c.addr) != 1) throw config_error("bad IPv4 address: " + s);
  c.prefix = std::stoi(s.substr(slash + 1));
  if (c.prefix < 0 || c.prefix > 32) throw config_error("bad prefix: " + s);
  return c;
}

struct Cidr6 {
  in6_addr addr{};
  int prefix = 0;
};

Cidr6 parse_cidr6(const std::string& s) {
  Cidr6 c;
  auto slash = s.find('/');
  if (slash == std::string::npos) throw config_error("address without prefix: " + s);
  if (::inet_pton(AF_INET6, s.substr(0, slash).c_str(), &c.addr) != 1) throw config_error("bad IPv6 address: " + s);
  std::string p = s.substr(slash + 1);
  if (p.empty() || p.find_first_not_of("0123456789") != std::string::npos || p.size() > 3)
    throw config_error("bad prefix: " + s);
  c.prefix = std::stoi(p);
  if (c.prefix > 128) throw config_error("bad prefix: " + s);
  return c;
}

std::vector<uint8_t> parse_mac(const std::string& s) {
  unsigned v[6];
  if (std::sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
    throw config_error("bad MAC address: " + s);
  return {static_cast<uint8_t>(v[0]), static_cast<uint8_t>(v[1]), static_cast<uint8_t>(v[2]),
          static_cast<uint8_t>(v[3]), static_cast<uint8_t>(v[4]), static_cast<uint8_t>(v[5])};
}

int ifindex(const std::string& name) {
  unsigned i = ::if_nametoindex(name.c_str());
  if (i == 0) throw SysError("if_nametoindex", name, errno);
  return static_cast<int>(i);
}

void add_address(Netlink& nl, int index, const Cidr& c, const std::string& what) {
  NlMsg m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifa = m.fixed<ifaddrmsg>();
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = static_cast<uint8_t>(c.prefix);
  ifa->ifa_index = static_cast<uint32_t>(index);
  m.attr(IFA_LOCAL, &c.addr, 4);
  m.attr(IFA_ADDRESS, &c.addr, 4);
  if (c.prefix < 31) {
    uint32_t mask = c.prefix == 0 ? 0 : htonl(~((1u << (32 - c.prefix)) - 1));
    in_addr brd{};
    brd.s_addr = c.addr.s_addr | ~mask;
    m.attr(IFA_BROADCAST, &brd, 4);
  }
  nl.must(m, "add address", what, EEXIST);
}

// No DAD: the address is usable at once, never "tentative" for a second or more.
void add_address6(Netlink& nl, int index, const Cidr6& c, const std::string& what) {
  NlMsg m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifa = m.fixed<ifaddrmsg>();
  ifa->ifa_family = AF_INET6;
  ifa->ifa_prefixlen = static_cast<uint8_t>(c.prefix);
  ifa->ifa_flags = IFA_F_NODAD;
  ifa->ifa_index = static_cast<uint32_t>(index);
  m.attr(IFA_LOCAL, &c.addr, sizeof c.addr);
  m.attr(IFA_ADDRESS, &c.addr, sizeof c.addr);
  m.u32(IFA_FLAGS, IFA_F_NODAD);
  nl.must(m, "add address", what, EEXIST);
}

// Writes a /proc/sys file; the net/ ones belong to the netns this process is in at open().
void write_sysctl(const std::string& path, const char* value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) throw SysError("open", path, errno);
  size_t len = std::strlen(value);
  if (::write(fd.get(), value, len) != static_cast<ssize_t>(len)) throw SysError("write", path, errno);
}

bool have_ipv6() { return ::access("/proc/sys/net/ipv6", F_OK) == 0; }

void set_link(Netlink& nl, int index, bool up, int master, int mtu, const std::string& what) {
  NlMsg m(RTM_NEWLINK, 0);
  auto* ifi = m.fixed<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  if (up) {
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
  }
  if (master > 0) m.u32(IFLA_MASTER, static_cast<uint32_t>(master));
  if (mtu > 0) m.u32(IFLA_MTU, static_cast<uint32_t>(mtu));
  nl.must(m, "set link", what);
}

void add_default_route(Netlink& nl, int index, const in_addr& gw, const std::string& what) {
  NlMsg m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  auto* rt = m.fixed<rtmsg>();
  rt->rtm_family = AF_INET;
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = RTPROT_BOOT;
  rt->rtm_scope = RT_SCOPE_UNIVERSE;
  rt->rtm_type = RTN_UNICAST;
  m.attr(RTA_GATEWAY, &gw, 4);
  m.u32(RTA_OIF, static_cast<uint32_t>(index));
  nl.must(m, "add default route via", what, EEXIST);
}

void add_default_route6(Netlink& nl, int index, const in6_addr& gw, const std::string& what) {
  NlMsg m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  auto* rt = m.fixed<rtmsg>();
  rt->rtm_family = AF_INET6;
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = RTPROT_BOOT;
  rt->rtm_scope = RT_SCOPE_UNIVERSE;
  rt->rtm_type = RTN_UNICAST;
  m.attr(RTA_GATEWAY, &gw, sizeof gw);
  m.u32(RTA_OIF, static_cast<uint32_t>(index));
  nl.must(m, "add default route via", what, EEXIST);
}

int cmd_bridge(Netlink& nl, const std::string& name, const std::string& cidr, int mtu, const std::string& cidr6) {
  Cidr c = parse_cidr(cidr);
  bool v6 = !cidr6.empty() && cidr6 != "-";
  Cidr6 c6;
  if (v6) c6 = parse_cidr6(cidr6);
  if (v6 && !have_ipv6()) throw config_error("IPv6 address " + cidr6 + " asked but the kernel has no IPv6");
  {
    NlMsg m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    auto* ifi = m.fixed<ifinfomsg>();
    ifi->ifi_family = AF_UNSPEC;
    m.str(IFLA_IFNAME, name);
    if (mtu > 0) m.u32(IFLA_MTU, static_cast<uint32_t>(mtu));
    size_t li = m.begin(IFLA_LINKINFO);
    m.str(IFLA_INFO_KIND, "bridge");
    m.end(li);
    nl.must(m, "create bridge", name, EEXIST);
  }
  int index = ifindex(name);
  add_address(nl, index, c, name + " " + cidr);
  if (v6) {
    // The host may default new links to disable_ipv6=1; the address needs it off.
    write_sysctl("/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6", "0");
    add_address6(nl, index, c6, name + " " + cidr6);
  }
  set_link(nl, index, true, 0, 0, name);
  return 0;
}

int cmd_delete(Netlink& nl, const std::string& name) {
  unsigned index = ::if_nametoindex(name.c_str());
  if (index == 0) return 0;
  NlMsg m(RTM_DELLINK, 0);
  auto* ifi = m.fixed<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = static_cast<int>(index);
  nl.must(m, "delete link", name, ENODEV);
  return 0;
}

int cmd_attach(Netlink& host, const std::string& pid, const std::string& bridge, const std::string& host_if,
               const std::string& ctr_if, const std::string& cidr, const std::string& mac, const std::string& gw,
               int mtu, const std::string& cidr6, const std::string& gw6) {
  Cidr c = parse_cidr(cidr);
  in_addr gateway{};
  bool has_gw = gw != "-" && !gw.empty();
  if (has_gw && ::inet_pton(AF_INET, gw.c_str(), &gateway) != 1) throw config_error("bad gateway: " + gw);
  bool v6 = cidr6 != "-" && !cidr6.empty();
  Cidr6 c6;
  if (v6) c6 = parse_cidr6(cidr6);
  in6_addr gateway6{};
  bool has_gw6 = v6 && gw6 != "-" && !gw6.empty();
  if (!v6 && gw6 != "-" && !gw6.empty()) throw config_error("IPv6 gateway without an IPv6 address: " + gw6);
  if (has_gw6 && ::inet_pton(AF_INET6, gw6.c_str(), &gateway6) != 1) throw config_error("bad IPv6 gateway: " + gw6);
  // Checked before anything is made (a kernel without IPv6 has no /proc/sys/net/ipv6 anywhere).
  if (v6 && !have_ipv6()) throw config_error("IPv6 address " + cidr6 + " asked but the kernel has no IPv6");
  std::string target = pid;
  if (target == "-") {
    char buf[32];
    size_t n = 0;
    while (n < sizeof buf - 1) {
      ssize_t r = ::read(0, buf + n, sizeof buf - 1 - n);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      n += static_cast<size_t>(r);
      if (std::memchr(buf, '\n', n)) break;
    }
    buf[n] = 0;
    target = std::string(buf, std::strcspn(buf, "\n"));
    if (target.empty()) return 3;
    if (target.find_first_not_of("0123456789") != std::string::npos) throw config_error("bad pid on stdin: " + target);
  }
  std::string ns_path = target.find('/') == std::string::npos ? "/proc/" + target + "/ns/net" : target;
  UniqueFd ns(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) throw SysError("open", ns_path, errno);
  int br = ifindex(bridge);
  {
    // The peer is born inside the container's netns under its final name: no rename, no move.
    NlMsg m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    auto* ifi = m.fixed<ifinfomsg>();
    ifi->ifi_family = AF_UNSPEC;
    m.str(IFLA_IFNAME, host_if);
    if (mtu > 0) m.u32(IFLA_MTU, static_cast<uint32_t>(mtu));
    size_t li = m.begin(IFLA_LINKINFO);
    m.str(IFLA_INFO_KIND, "veth");
    size_t data = m.begin(IFLA_INFO_DATA);
    size_t peer = m.begin(VETH_INFO_PEER);
    auto* pifi = m.inner<ifinfomsg>();
    pifi->ifi_family = AF_UNSPEC;
    m.str(IFLA_IFNAME, ctr_if);
    if (mtu > 0) m.u32(IFLA_MTU, static_cast<uint32_t>(mtu));
    if (!mac.empty() && mac != "-") {
      auto bytes = parse_mac(mac);
      m.attr(IFLA_ADDRESS, bytes.data(), bytes.size());
    }
    m.u32(IFLA_NET_NS_FD, static_cast<uint32_t>(ns.get()));
    m.end(peer);
    m.end(data);
    m.end(li);
    host.must(m, "create veth", host_if + " <-> " + ctr_if + " in " + ns_path);
  }
  // The host socket stays bound to the host's netns after setns: cleanup goes through it.
  int host_index = ifindex(host_if);
  try {
    set_link(host, host_index, true, br, 0, host_if + " master " + bridge);
    check(::setns(ns.get(), CLONE_NEWNET), "setns", ns_path);
    Netlink inside;
    int index = ifindex(ctr_if);
    // Before the link is up: once up, an enabled interface gets its fe80:: address.
    std::string conf = "/proc/sys/net/ipv6/conf/";
    if (v6) {
      write_sysctl(conf + ctr_if + "/disable_ipv6", "0");
      // Docker's containers with an IPv6 endpoint have ::1 on lo.
      write_sysctl(conf + "lo/disable_ipv6", "0");
    } else if (have_ipv6()) {
      write_sysctl(conf + ctr_if + "/disable_ipv6", "1");
    }
    add_address(inside, index, c, ctr_if + " " + cidr);
    if (v6) add_address6(inside, index, c6, ctr_if + " " + cidr6);
    set_link(inside, index, true, 0, 0, ctr_if);
    if (has_gw) add_default_route(inside, index, gateway, gw);
    if (has_gw6) add_default_route6(inside, index, gateway6, gw6);
  } catch (...) {
    // Leave nothing half-made: deleting the host end deletes the pair.
    NlMsg m(RTM_DELLINK, 0);
    auto* ifi = m.fixed<ifinfomsg>();
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = host_index;
    host.call(m);
    throw;
  }
  return 0;
}

}  // namespace

int net_main(int argc, char** argv) {
  std::vector<std::string> a(argv + 2, argv + argc);
  try {
    Netlink nl;
    if ((a.size() == 4 || a.size() == 5) && a[0] == "bridge")
      return cmd_bridge(nl, a[1], a[2], std::stoi(a[3]), a.size() == 5 ? a[4] : "");
    if (a.size() == 2 && a[0] == "delete") return cmd_delete(nl, a[1]);
    if ((a.size() == 9 || a.size() == 11) && a[0] == "attach")
      return cmd_attach(nl, a[1], a[2], a[3], a[4], a[5], a[6], a[7], std::stoi(a[8]), a.size() == 11 ? a[9] : "-",
                        a.size() == 11 ? a[10] : "-");
    std::fprintf(stderr, "usage: skiff-init net bridge|delete|attach ...\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error %s\n", e.what());
    return 1;
  }
}

}  // namespace skiff
