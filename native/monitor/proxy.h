// `skiff-monitor port-proxy`: the userland proxy of a published port's IPv6 side (what
// docker-proxy is to dockerd). The kernel cannot NAT from IPv6 to a container that has IPv4
// only, so connections and datagrams to [::]:P or [::1]:P are relayed to the container's IPv4
// address by one such process per binding (src/network/port-proxies.ts starts them).
//
//   skiff-monitor port-proxy <tcp|udp> <container ip> <container port> <container pid> <container id>
//
// fd 3: the socket the daemon bound (TCP: listening or not yet; UDP: bound), handed over. The
// proxy exits 0 on SIGTERM or SIGINT (SIGHUP is ignored) and by itself within a second of the
// container's process being gone (pidfd, or kill(pid, 0) each second where pidfd_open is
// missing; pid 0 watches nothing). The container id is only there for the daemon, which finds
// its proxies again by pid and command line. A bad argument or fd: one line
// `error <call> <target>: <strerror> (errno N)` on stderr, exit 1.
//
// TCP: non-blocking relay, TCP_NODELAY both ways, half-close kept (a side's EOF becomes
// shutdown(SHUT_WR) of the other once what it sent is written), spliced through a kernel pipe
// each way (1 MiB where the kernel allows it, else 64 KiB; a side is not read while the pipe
// toward its peer is full). UDP: one connected upstream
// socket per client address, dropped after 90 s without traffic either way (dockerd's
// UDPConnTrackTimeout); replies go back from the listening socket.
#pragma once

namespace skiff::monitor {

// argv[1] is "port-proxy". Returns the process's exit status.
int port_proxy_main(int argc, char** argv);

}  // namespace skiff::monitor
