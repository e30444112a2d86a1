// sendmsg's control messages on a UDP socket, as traceroute-like programs and DNS servers
// use them: IP_TTL and IP_TOS (int or byte) for one datagram, over the socket's options
// and not after; IP_PKTINFO naming our address or another's; and what Linux's
// ip_cmsg_send refuses (a TTL of 0, a wrong length, an unknown IP-level type, a UDP-level
// one, a SOL_SOCKET option that is none, a header running past the buffer) or lets pass
// (SCM_RIGHTS). The peer (peer.py 7011) answers 'mark ...' with the TTL and TOS it saw.
// An IPv6 run does the same over IPv6 with 7012 (IPV6_HOPLIMIT, IPV6_TCLASS,
// IPV6_PKTINFO), after the IPv4 part at the peer's IPv4 address (10.N.0.1 for fdN::1).
#include "../trace.h"

static union { char buffer[256]; struct cmsghdr align; } control;
static size_t used;

static void add(int level, int type, const void *data, size_t length) {
    struct cmsghdr *c = (struct cmsghdr *)(control.buffer + used);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(length);
    memcpy(CMSG_DATA(c), data, length);
    used += CMSG_SPACE(length);
}

static void add_int(int level, int type, int value) { add(level, type, &value, sizeof value); }

// Sends 'mark <what>' with the control messages added so far (then clears them); prints
// the result and what the peer saw.
static void mark(int fd, struct sockaddr *to, socklen_t to_length, const char *what) {
    char text[64];
    int n = snprintf(text, sizeof text, "mark %s", what);
    struct iovec iov = { text, (size_t)n };
    struct msghdr m = { .msg_name = to, .msg_namelen = to_length, .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = used ? control.buffer : NULL, .msg_controllen = used };
    errno = 0;
    long r = sendmsg(fd, &m, 0);
    printf("sendmsg %s = %ld %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
    used = 0;
    memset(&control, 0, sizeof control);
    if (r < 0) { fflush(stdout); return; }
    struct pollfd p = { fd, POLLIN, 0 };
    char reply[128] = { 0 };
    if (poll(&p, 1, 3000) == 1 && recv(fd, reply, sizeof reply - 1, 0) > 0) printf("  peer saw: %s\n", reply);
    else printf("  no answer\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    begin(argc, argv);
    char peer4[32];
    if (family == AF_INET6) snprintf(peer4, sizeof peer4, "10.%d.0.1", atoi(peer_address + 2));
    else snprintf(peer4, sizeof peer4, "%s", peer_address);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(7011) };
    inet_pton(AF_INET, peer4, &to.sin_addr);
    int fd = FD(socket(AF_INET, SOCK_DGRAM, 0));
    T(connect(fd, (struct sockaddr *)&to, sizeof to));
    struct sockaddr_in own;
    socklen_t length = sizeof own;
    getsockname(fd, (struct sockaddr *)&own, &length);
    struct sockaddr *name = (struct sockaddr *)&to;

    mark(fd, name, sizeof to, "plain");
    add_int(IPPROTO_IP, IP_TTL, 7);
    mark(fd, name, sizeof to, "ttl 7");
    add_int(IPPROTO_IP, IP_TOS, 0x28);
    mark(fd, name, sizeof to, "tos 0x28");
    unsigned char byte = 0x10;
    add(IPPROTO_IP, IP_TOS, &byte, 1);
    mark(fd, name, sizeof to, "tos 0x10 as a byte");
    add_int(IPPROTO_IP, IP_TTL, 200);
    add_int(IPPROTO_IP, IP_TOS, 0x08);
    mark(fd, NULL, 0, "both, connected");
    int ttl = 33;
    T(setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl));
    add_int(IPPROTO_IP, IP_TTL, 9);
    mark(fd, name, sizeof to, "ttl 9 over the option's 33");
    mark(fd, name, sizeof to, "the option's again");
    add_int(IPPROTO_IP, IP_TTL, 0);
    mark(fd, name, sizeof to, "ttl 0");
    add(IPPROTO_IP, IP_TTL, &byte, 1);
    mark(fd, name, sizeof to, "ttl as a byte");
    add_int(IPPROTO_IP, IP_TOS, 256);
    mark(fd, name, sizeof to, "tos 256");
    add_int(IPPROTO_IP, IP_RECVERR, 1);
    mark(fd, name, sizeof to, "an IP-level type sendmsg does not take");
    add_int(IPPROTO_UDP, 99, 1);
    mark(fd, name, sizeof to, "a UDP-level type that is none");
    add_int(SOL_SOCKET, SO_RCVBUF, 1);
    mark(fd, name, sizeof to, "a SOL_SOCKET type that is none");
    int descriptor = 0;
    add(SOL_SOCKET, SCM_RIGHTS, &descriptor, sizeof descriptor);
    mark(fd, name, sizeof to, "SCM_RIGHTS");
    struct in_pktinfo info = { .ipi_spec_dst = own.sin_addr };
    add(IPPROTO_IP, IP_PKTINFO, &info, sizeof info);
    mark(fd, name, sizeof to, "pktinfo from our address");
    inet_pton(AF_INET, "10.99.99.99", &info.ipi_spec_dst);
    add(IPPROTO_IP, IP_PKTINFO, &info, sizeof info);
    mark(fd, name, sizeof to, "pktinfo from another's address");
    add_int(IPPROTO_IP, IP_TTL, 5);
    ((struct cmsghdr *)control.buffer)->cmsg_len = 200;
    mark(fd, name, sizeof to, "a header longer than the buffer");
    T(close(fd));

    if (family != AF_INET6) return 0;
    address to6 = peer(7012);
    int fd6 = FD(socket(AF_INET6, SOCK_DGRAM, 0));
    T(connect(fd6, &to6.sa, ADDRLEN));
    struct sockaddr_in6 own6;
    length = sizeof own6;
    getsockname(fd6, (struct sockaddr *)&own6, &length);
    mark(fd6, &to6.sa, ADDRLEN, "plain");
    add_int(IPPROTO_IPV6, IPV6_HOPLIMIT, 5);
    mark(fd6, &to6.sa, ADDRLEN, "hop limit 5");
    add_int(IPPROTO_IPV6, IPV6_TCLASS, 0x20);
    mark(fd6, &to6.sa, ADDRLEN, "traffic class 0x20");
    add_int(IPPROTO_IPV6, IPV6_HOPLIMIT, -1);
    add_int(IPPROTO_IPV6, IPV6_TCLASS, -1);
    mark(fd6, &to6.sa, ADDRLEN, "both -1: the socket's");
    add_int(IPPROTO_IPV6, IPV6_HOPLIMIT, 256);
    mark(fd6, &to6.sa, ADDRLEN, "hop limit 256");
    add(IPPROTO_IPV6, IPV6_TCLASS, &byte, 1);
    mark(fd6, &to6.sa, ADDRLEN, "traffic class as a byte");
    add_int(IPPROTO_IPV6, IPV6_RECVERR, 1);
    mark(fd6, &to6.sa, ADDRLEN, "an IPv6-level type sendmsg does not take");
    struct in6_pktinfo info6 = { .ipi6_addr = own6.sin6_addr };
    add(IPPROTO_IPV6, IPV6_PKTINFO, &info6, sizeof info6);
    mark(fd6, &to6.sa, ADDRLEN, "pktinfo from our address");
    inet_pton(AF_INET6, "fd99::99", &info6.ipi6_addr);
    add(IPPROTO_IPV6, IPV6_PKTINFO, &info6, sizeof info6);
    mark(fd6, &to6.sa, ADDRLEN, "pktinfo from another's address");
    add_int(IPPROTO_IP, IP_TTL, 3);
    mark(fd6, &to6.sa, ADDRLEN, "an IPv4 TTL to an IPv6 peer");
    T(close(fd6));
    return 0;
}
