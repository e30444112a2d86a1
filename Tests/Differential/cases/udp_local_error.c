// A UDP send refused for its size (EMSGSIZE) under IP_RECVERR (IPV6_RECVERR in an IPv6
// run) is also queued as a local error, as Linux's ip_local_error and ipv6_local_error do:
// no payload, the destination as the name (over IPv4 with the connected peer's port, 0
// unconnected), origin SO_EE_ORIGIN_LOCAL, the route's MTU as info, no offender; POLLERR
// while it waits, and never the socket's pending error. A datagram past IPv4's 65,527
// bytes is refused before that and not queued. An ICMP error read ahead of a local one
// leaves no pending error behind it (sock_dequeue_err_skb).
#include "../trace.h"
#include <linux/errqueue.h>

static address target;
static char big[65600];

static int discover_name(void) { return FAMILY == AF_INET6 ? IPV6_MTU_DISCOVER : IP_MTU_DISCOVER; }

static void show_poll(int fd) {
    struct pollfd p = { fd, POLLOUT, 0 };
    poll(&p, 1, 0);
    printf("poll:%s%s\n", p.revents & POLLOUT ? " POLLOUT" : "", p.revents & POLLERR ? " POLLERR" : "");
    fflush(stdout);
}

static void read_error(int fd, const address *to) {
    char bytes[64];
    union { char buffer[256]; struct cmsghdr align; } control;
    address from;
    memset(&from, 0, sizeof from);
    struct iovec iov = { bytes, sizeof bytes };
    struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = control.buffer, .msg_controllen = sizeof control.buffer };
    long r = T(recvmsg(fd, &m, MSG_ERRQUEUE));
    if (r < 0) return;
    int same = FAMILY == AF_INET6 ? memcmp(&from.in6.sin6_addr, &to->in6.sin6_addr, 16) == 0
                                  : from.in.sin_addr.s_addr == to->in.sin_addr.s_addr;
    printf("flags%s%s, name length %u, the destination %d, port %d\n", m.msg_flags & MSG_ERRQUEUE ? " MSG_ERRQUEUE" : "",
           m.msg_flags & MSG_TRUNC ? " MSG_TRUNC" : "", (unsigned)m.msg_namelen, same, port_of(&from));
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        struct sock_extended_err ee;
        memcpy(&ee, CMSG_DATA(c), sizeof ee);
        address offender;
        memcpy(&offender, CMSG_DATA(c) + sizeof ee, FAMILY == AF_INET6 ? sizeof offender.in6 : sizeof offender.in);
        printf("cmsg level %d type %d len %zu: errno %s origin %u type %u code %u info %u data %u, offender family %d\n",
               c->cmsg_level, c->cmsg_type, (size_t)c->cmsg_len, strerrorname_np((int)ee.ee_errno), ee.ee_origin,
               ee.ee_type, ee.ee_code, ee.ee_info, ee.ee_data, offender.sa.sa_family);
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    begin(argc, argv);
    target = peer(7010);
    int fd = FD(socket(FAMILY, SOCK_DGRAM, 0));
    int mode = IP_PMTUDISC_DO; // IPV6_PMTUDISC_DO is 2 as well
    T(setsockopt(fd, ip_level(), discover_name(), &mode, sizeof mode));

    // Without the option: the call fails, nothing is queued.
    T(sendto(fd, big, 2000, 0, &target.sa, ADDRLEN));
    read_error(fd, &target);
    show_poll(fd);

    // With it: a record, which is not the pending error.
    int on = 1;
    T(setsockopt(fd, ip_level(), errors_name(), &on, sizeof on));
    T(sendto(fd, big, 2000, 0, &target.sa, ADDRLEN));
    show_poll(fd);
    pending(fd);
    read_error(fd, &target);
    read_error(fd, &target);
    show_poll(fd);

    // Connected: the peer's port in the name.
    T(connect(fd, &target.sa, ADDRLEN));
    T(send(fd, big, 2000, 0));
    read_error(fd, &target);

    // Fragments allowed: only a datagram past the protocol's bound is refused and queued,
    // and over IPv4 one past 65,527 bytes is refused without a record.
    mode = IP_PMTUDISC_DONT;
    T(setsockopt(fd, ip_level(), discover_name(), &mode, sizeof mode));
    int over = FAMILY == AF_INET6 ? 65528 : 65508;
    T(send(fd, big, over, 0));
    read_error(fd, &target);
    T(send(fd, big, 65600, 0));
    read_error(fd, &target);
    T(close(fd));

    // An ICMP error (port unreachable) queued ahead of a local one: once it is read, the
    // local one behind it does not become the pending error.
    address closed = peer(7099);
    int second = FD(socket(FAMILY, SOCK_DGRAM, 0));
    T(setsockopt(second, ip_level(), errors_name(), &on, sizeof on));
    mode = IP_PMTUDISC_DO;
    T(setsockopt(second, ip_level(), discover_name(), &mode, sizeof mode));
    T(sendto(second, "x", 1, 0, &closed.sa, ADDRLEN));
    wait_error(second);
    pending(second);
    T(sendto(second, big, 2000, 0, &closed.sa, ADDRLEN));
    read_error(second, &closed);
    pending(second);
    read_error(second, &closed);
    pending(second);
    T(close(second));
    return 0;
}
