// Ancillary data on received datagrams, as DNS, QUIC and ping-like programs ask for it:
// IP_PKTINFO, IP_RECVTTL, IP_RECVTOS, IP_RECVORIGDSTADDR and SO_TIMESTAMP(NS) on an IPv4
// socket, IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT and IPV6_RECVTCLASS on an IPv6 one: each
// option's value read back, then every control message of a reply from the echo peer in
// the order Linux puts them, with what can be compared (addresses against our own,
// timestamps against the clock); a control buffer too small is MSG_CTRUNC.
#include "../trace.h"
static address own; // our address toward the peer
static int own_port;

static void set_on(int fd, int level, int name, const char *what) {
    int on = 1;
    errno = 0;
    int r = setsockopt(fd, level, name, &on, sizeof on);
    int value = -1;
    socklen_t length = sizeof value;
    getsockopt(fd, level, name, &value, &length);
    printf("set %s = %d %s, reads %d\n", what, r, r < 0 ? strerrorname_np(errno) : "", value);
}
#define ON(fd, level, name) set_on(fd, level, name, #name)

static void show(struct msghdr *m) {
    printf("flags%s%s\n", m->msg_flags & MSG_CTRUNC ? " MSG_CTRUNC" : "", m->msg_flags & MSG_TRUNC ? " MSG_TRUNC" : "");
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        printf("cmsg level %d type %d len %zu:", c->cmsg_level, c->cmsg_type, (size_t)c->cmsg_len);
        unsigned char *data = CMSG_DATA(c);
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo info;
            memcpy(&info, data, sizeof info);
            printf(" ifindex>0 %d, addr ours %d, spec_dst ours %d", info.ipi_ifindex > 0,
                   info.ipi_addr.s_addr == own.in.sin_addr.s_addr, info.ipi_spec_dst.s_addr == own.in.sin_addr.s_addr);
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) {
            int ttl;
            memcpy(&ttl, data, sizeof ttl);
            printf(" ttl %d", ttl);
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) {
            printf(" tos %d", data[0]);
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_ORIGDSTADDR) {
            struct sockaddr_in to;
            memcpy(&to, data, sizeof to);
            printf(" family %d, addr ours %d, port ours %d", to.sin_family, to.sin_addr.s_addr == own.in.sin_addr.s_addr,
                   ntohs(to.sin_port) == own_port);
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMP) {
            struct timeval tv, now;
            memcpy(&tv, data, sizeof tv);
            gettimeofday(&now, NULL);
            long long ago = (now.tv_sec - tv.tv_sec) * 1000000LL + (now.tv_usec - tv.tv_usec);
            printf(" within a second %d", ago >= 0 && ago < 1000000);
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts, now;
            memcpy(&ts, data, sizeof ts);
            clock_gettime(CLOCK_REALTIME, &now);
            long long ago = (now.tv_sec - ts.tv_sec) * 1000000000LL + (now.tv_nsec - ts.tv_nsec);
            printf(" within a second %d", ago >= 0 && ago < 1000000000LL);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo info;
            memcpy(&info, data, sizeof info);
            printf(" ifindex>0 %d, addr ours %d", info.ipi6_ifindex > 0, memcmp(&info.ipi6_addr, &own.in6.sin6_addr, 16) == 0);
        } else if (c->cmsg_level == IPPROTO_IPV6 && (c->cmsg_type == IPV6_HOPLIMIT || c->cmsg_type == IPV6_TCLASS)) {
            int value;
            memcpy(&value, data, sizeof value);
            printf(" %s %d", c->cmsg_type == IPV6_HOPLIMIT ? "hoplimit" : "tclass", value);
        }
        printf("\n");
    }
    fflush(stdout);
}

static void exchange(int fd, size_t control_size) {
    address a = peer(7010);
    T(sendto(fd, "ping", 4, 0, &a.sa, ADDRLEN));
    struct pollfd p = { fd, POLLIN, 0 };
    T(poll(&p, 1, 5000));
    char bytes[64];
    union { char buffer[512]; struct cmsghdr align; } control;
    memset(&control, 0, sizeof control);
    struct iovec iov = { bytes, sizeof bytes };
    address from;
    struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = control.buffer, .msg_controllen = control_size };
    T(recvmsg(fd, &m, 0));
    note("controllen", (long)m.msg_controllen);
    show(&m);
}

int main(int argc, char **argv) {
    begin(argc, argv);
    // Our own address toward the peer: a connected socket's name.
    int probe = FD(socket(FAMILY, SOCK_DGRAM, 0));
    address a = peer(7010);
    T(connect(probe, &a.sa, ADDRLEN));
    socklen_t length = sizeof own;
    T(getsockname(probe, &own.sa, &length));
    T(close(probe));

    int fd = FD(socket(FAMILY, SOCK_DGRAM, 0));
    address any = wildcard(0);
    T(bind(fd, &any.sa, ADDRLEN));
    address name;
    length = sizeof name;
    T(getsockname(fd, &name.sa, &length));
    own_port = port_of(&name);
    printf("nothing asked:\n");
    exchange(fd, 512);
    if (family == AF_INET) {
        ON(fd, SOL_SOCKET, SO_TIMESTAMP);
        ON(fd, IPPROTO_IP, IP_PKTINFO);
        ON(fd, IPPROTO_IP, IP_RECVTTL);
        ON(fd, IPPROTO_IP, IP_RECVTOS);
        ON(fd, IPPROTO_IP, IP_RECVORIGDSTADDR);
    } else {
        ON(fd, SOL_SOCKET, SO_TIMESTAMP);
        ON(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO);
        ON(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT);
        ON(fd, IPPROTO_IPV6, IPV6_RECVTCLASS);
    }
    printf("all asked:\n");
    exchange(fd, 512);
    ON(fd, SOL_SOCKET, SO_TIMESTAMPNS);
    int value = -1;
    length = sizeof value;
    T(getsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &value, &length));
    note("SO_TIMESTAMP after SO_TIMESTAMPNS", value);
    printf("nanoseconds:\n");
    exchange(fd, 512);
    printf("room for one:\n");
    exchange(fd, CMSG_SPACE(sizeof(struct timespec)) + 4);
    printf("no room:\n");
    exchange(fd, 0);
    T(close(fd));
    return 0;
}
