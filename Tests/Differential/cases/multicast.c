// IPv4 multicast as a UDP program uses it: the options' defaults, ranges and byte forms
// (IP_MULTICAST_TTL, _LOOP, _ALL, _IF), a TCP socket's refusals, membership errors
// (not a group, no such interface, joined twice, never joined, past 20), a group's
// datagram delivered to every socket that takes it (bound to the wildcard or to the
// group, sharing the port by SO_REUSEADDR) and to none that does not (bound to our
// unicast address, IP_MULTICAST_ALL off without a join), and datagrams sent to a group:
// refused without a route or IP_MULTICAST_IF, the TTL the peer sees, and the looped copy
// a member here gets unless IP_MULTICAST_LOOP is off. The peer (peer.py, 7011) is IPv4,
// so an IPv6 run uses its IPv4 address (10.N.0.1 for fdN::1), and then does the same
// over IPv6 with the peer's 7012: IPV6_MULTICAST_HOPS, _LOOP, _ALL and _IF, and
// IPV6_JOIN_GROUP and IPV6_LEAVE_GROUP.
#include "../trace.h"

static struct sockaddr_in v4(const char *text, int port) {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, text, &a.sin_addr);
    return a;
}

static char peer4[32];
static struct in_addr own; // our IPv4 address toward the peer

static void show_int(int fd, int level, int name, const char *what, socklen_t size) {
    unsigned char bytes[8] = { 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA };
    socklen_t length = size;
    errno = 0;
    int r = getsockopt(fd, level, name, bytes, &length);
    int value = 0;
    if (length >= 4) memcpy(&value, bytes, 4); else if (length == 1) value = bytes[0];
    printf("get %s (%u bytes) = %d %s, length %u value %d\n", what, (unsigned)size, r, r < 0 ? strerrorname_np(errno) : "",
           (unsigned)length, value);
    fflush(stdout);
}
#define SHOW(fd, level, name) show_int(fd, level, name, #name, 4)
#define SHOW1(fd, level, name) show_int(fd, level, name, #name " as a byte", 1)

static int set_int(int fd, int level, int name, int value, const char *what) {
    errno = 0;
    int r = setsockopt(fd, level, name, &value, sizeof value);
    printf("set %s %d = %d %s\n", what, value, r, r < 0 ? strerrorname_np(errno) : "");
    fflush(stdout);
    return r;
}
#define SET(fd, level, name, value) set_int(fd, level, name, value, #name)

static int membership(int fd, int name, const char *group, struct in_addr address, int index, const char *what) {
    struct ip_mreqn m = { .imr_ifindex = index, .imr_address = address };
    inet_pton(AF_INET, group, &m.imr_multiaddr);
    errno = 0;
    int r = setsockopt(fd, IPPROTO_IP, name, &m, sizeof m);
    printf("%s %s = %d %s\n", name == IP_ADD_MEMBERSHIP ? "join" : "drop", what, r, r < 0 ? strerrorname_np(errno) : "");
    fflush(stdout);
    return r;
}

static int bound(const char *address, int port, int reuse) {
    int fd = FD(socket(AF_INET, SOCK_DGRAM, 0));
    if (reuse) T(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse));
    struct sockaddr_in a = v4(address, port);
    T(bind(fd, (struct sockaddr *)&a, sizeof a));
    return fd;
}

// What one socket got: the datagram (waiting up to `wait` ms) or nothing.
static void take(int fd, const char *who, int wait) {
    struct pollfd p = { fd, POLLIN, 0 };
    char bytes[64] = { 0 };
    long n = -1;
    if (poll(&p, 1, wait) == 1) n = recv(fd, bytes, sizeof bytes - 1, MSG_DONTWAIT);
    if (n >= 0) printf("%s got '%s'\n", who, bytes); else printf("%s got nothing\n", who);
    fflush(stdout);
}

static void options(void) {
    int fd = FD(socket(AF_INET, SOCK_DGRAM, 0));
    SHOW(fd, IPPROTO_IP, IP_MULTICAST_TTL);
    SHOW1(fd, IPPROTO_IP, IP_MULTICAST_TTL);
    SHOW(fd, IPPROTO_IP, IP_MULTICAST_LOOP);
    SHOW(fd, IPPROTO_IP, IP_MULTICAST_ALL);
    SHOW(fd, IPPROTO_IP, IP_MULTICAST_IF);
    SHOW(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP);
    SET(fd, IPPROTO_IP, IP_MULTICAST_TTL, 7);
    SHOW(fd, IPPROTO_IP, IP_MULTICAST_TTL);
    SET(fd, IPPROTO_IP, IP_MULTICAST_TTL, -1);
    SHOW(fd, IPPROTO_IP, IP_MULTICAST_TTL);
    SET(fd, IPPROTO_IP, IP_MULTICAST_TTL, 0);
    SET(fd, IPPROTO_IP, IP_MULTICAST_TTL, 256);
    SET(fd, IPPROTO_IP, IP_MULTICAST_TTL, -2);
    unsigned char byte = 200;
    T(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &byte, 1));
    SHOW1(fd, IPPROTO_IP, IP_MULTICAST_TTL);
    T(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &byte, 0));
    SET(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 5);
    SHOW(fd, IPPROTO_IP, IP_MULTICAST_LOOP);
    SET(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 0);
    SHOW(fd, IPPROTO_IP, IP_MULTICAST_LOOP);
    SET(fd, IPPROTO_IP, IP_MULTICAST_ALL, 2);
    SET(fd, IPPROTO_IP, IP_MULTICAST_ALL, 0);
    SHOW(fd, IPPROTO_IP, IP_MULTICAST_ALL);
    // IP_MULTICAST_IF: by our address (read back), by another (refused), by index, reset.
    T(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &own, sizeof own));
    struct in_addr read = { 0 };
    socklen_t length = sizeof read;
    T(getsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &read, &length));
    note("IP_MULTICAST_IF reads our address", read.s_addr == own.s_addr);
    struct in_addr foreign;
    inet_pton(AF_INET, "10.99.99.99", &foreign);
    T(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &foreign, sizeof foreign));
    struct ip_mreqn by_index = { .imr_ifindex = 9999 };
    T(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &by_index, sizeof by_index));
    struct ip_mreqn none = { 0 };
    T(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &none, sizeof none));
    T(getsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &read, &length));
    note("IP_MULTICAST_IF reads 0.0.0.0 after the reset", read.s_addr == 0);
    T(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &own, 3));
    T(close(fd));

    int tcp = FD(socket(AF_INET, SOCK_STREAM, 0));
    membership(tcp, IP_ADD_MEMBERSHIP, "239.1.2.3", own, 0, "on a TCP socket");
    SET(tcp, IPPROTO_IP, IP_MULTICAST_TTL, 3);
    SET(tcp, IPPROTO_IP, IP_MULTICAST_LOOP, 0);
    SHOW(tcp, IPPROTO_IP, IP_MULTICAST_LOOP);
    SHOW(tcp, IPPROTO_IP, IP_MULTICAST_TTL);
    T(setsockopt(tcp, IPPROTO_IP, IP_MULTICAST_IF, &own, sizeof own));
    T(close(tcp));
}

static void memberships(void) {
    int fd = FD(socket(AF_INET, SOCK_DGRAM, 0));
    struct in_addr any = { 0 };
    struct in_addr foreign;
    inet_pton(AF_INET, "10.99.99.99", &foreign);
    membership(fd, IP_ADD_MEMBERSHIP, "10.1.2.3", own, 0, "a unicast address");
    membership(fd, IP_ADD_MEMBERSHIP, "239.1.2.3", foreign, 0, "by another host's address");
    membership(fd, IP_ADD_MEMBERSHIP, "239.1.2.3", any, 9999, "by an index that is none");
    membership(fd, IP_ADD_MEMBERSHIP, "239.1.2.3", any, 0, "with no interface and no route");
    membership(fd, IP_DROP_MEMBERSHIP, "239.1.2.3", own, 0, "never joined");
    membership(fd, IP_ADD_MEMBERSHIP, "239.1.2.3", own, 0, "by our address");
    membership(fd, IP_ADD_MEMBERSHIP, "239.1.2.3", own, 0, "again");
    membership(fd, IP_DROP_MEMBERSHIP, "239.1.2.3", any, 0, "with no interface and no route");
    membership(fd, IP_DROP_MEMBERSHIP, "239.1.2.3", own, 0, "joined");
    membership(fd, IP_DROP_MEMBERSHIP, "239.1.2.3", own, 0, "dropped already");
    struct ip_mreq short_form;
    inet_pton(AF_INET, "239.1.2.9", &short_form.imr_multiaddr);
    short_form.imr_interface = own;
    T(setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &short_form, sizeof short_form));
    T(setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &short_form, 7));
    int joined = 1, r = 0;
    char group[32];
    for (int i = 10; i < 40 && r == 0; i++) {
        snprintf(group, sizeof group, "239.1.2.%d", i);
        struct ip_mreqn m = { .imr_address = own };
        inet_pton(AF_INET, group, &m.imr_multiaddr);
        errno = 0;
        r = setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m);
        if (r == 0) joined++;
    }
    printf("joined %d groups, then %s\n", joined, strerrorname_np(errno));
    fflush(stdout);
    T(close(fd));

    // RFC 3678's group_req, by interface index: ours is the one the echo's reply came in by.
    fd = FD(socket(AF_INET, SOCK_DGRAM, 0));
    int on = 1;
    setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
    struct sockaddr_in echo = v4(peer4, 7010);
    sendto(fd, "x", 1, 0, (struct sockaddr *)&echo, sizeof echo);
    char byte;
    union { char buffer[256]; struct cmsghdr align; } control;
    struct iovec iov = { &byte, 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof control.buffer };
    struct pollfd p = { fd, POLLIN, 0 };
    poll(&p, 1, 3000);
    recvmsg(fd, &m, MSG_DONTWAIT);
    unsigned index = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo info;
            memcpy(&info, CMSG_DATA(c), sizeof info);
            index = (unsigned)info.ipi_ifindex;
        }
    }
    note("learnt our interface's index", index > 0);
    struct group_req request = { .gr_interface = index };
    struct sockaddr_in *group4 = (struct sockaddr_in *)&request.gr_group;
    group4->sin_family = AF_INET;
    inet_pton(AF_INET, "239.1.2.5", &group4->sin_addr);
    T(setsockopt(fd, IPPROTO_IP, MCAST_JOIN_GROUP, &request, sizeof request));
    T(setsockopt(fd, IPPROTO_IP, MCAST_JOIN_GROUP, &request, sizeof request));
    T(setsockopt(fd, IPPROTO_IP, MCAST_JOIN_GROUP, &request, sizeof request - 1));
    T(setsockopt(fd, IPPROTO_IP, MCAST_LEAVE_GROUP, &request, sizeof request));
    T(setsockopt(fd, IPPROTO_IP, MCAST_LEAVE_GROUP, &request, sizeof request));
    request.gr_interface = 0;
    T(setsockopt(fd, IPPROTO_IP, MCAST_JOIN_GROUP, &request, sizeof request)); // no route: no interface
    request.gr_interface = 9999;
    T(setsockopt(fd, IPPROTO_IP, MCAST_JOIN_GROUP, &request, sizeof request));
    group4->sin_family = AF_INET6;
    T(setsockopt(fd, IPPROTO_IP, MCAST_JOIN_GROUP, &request, sizeof request));
    socklen_t length = sizeof request;
    T(getsockopt(fd, IPPROTO_IP, MCAST_JOIN_GROUP, &request, &length));
    T(close(fd));
}

static void receiving(void) {
    int port = 7311;
    int a = bound("0.0.0.0", port, 1), b = bound("0.0.0.0", port, 1);
    int on_group = bound("239.1.2.3", port, 1);
    char own_text[32];
    inet_ntop(AF_INET, &own, own_text, sizeof own_text);
    int unicast = bound(own_text, port, 1);
    int not_all = bound("0.0.0.0", port, 1);
    SET(not_all, IPPROTO_IP, IP_MULTICAST_ALL, 0);
    int other_port = bound("0.0.0.0", port + 1, 0);
    membership(a, IP_ADD_MEMBERSHIP, "239.1.2.3", own, 0, "on the wildcard socket");
    membership(other_port, IP_ADD_MEMBERSHIP, "239.1.2.3", own, 0, "on another port");
    // b and on_group take it without a join of their own: the host is a member.
    struct sockaddr_in to = v4(peer4, 7011);
    char text[16];
    int n = snprintf(text, sizeof text, "%d", port);
    int ask = FD(socket(AF_INET, SOCK_DGRAM, 0));
    T(sendto(ask, text, n, 0, (struct sockaddr *)&to, sizeof to));
    take(a, "joined wildcard", 3000);
    take(b, "wildcard", 3000);
    take(on_group, "bound to the group", 3000);
    take(unicast, "bound to our address", 200);
    take(not_all, "IP_MULTICAST_ALL off", 200);
    take(other_port, "another port", 200);
    // Dropped: the host leaves the group, and a second request finds no member.
    membership(a, IP_DROP_MEMBERSHIP, "239.1.2.3", own, 0, "on the wildcard socket");
    membership(other_port, IP_DROP_MEMBERSHIP, "239.1.2.3", own, 0, "on another port");
    T(sendto(ask, text, n, 0, (struct sockaddr *)&to, sizeof to));
    take(a, "wildcard after the drop", 500);
    take(on_group, "bound to the group after the drop", 200);
    int fds[] = { a, b, on_group, unicast, not_all, other_port, ask };
    for (unsigned i = 0; i < sizeof fds / sizeof fds[0]; i++) close(fds[i]);
}

static void sending(void) {
    int fd = FD(socket(AF_INET, SOCK_DGRAM, 0));
    int member = bound("0.0.0.0", 7011, 1);
    membership(member, IP_ADD_MEMBERSHIP, "239.1.2.4", own, 0, "here, as the peer is");
    struct sockaddr_in group = v4("239.1.2.4", 7011);
    T(sendto(fd, "one", 3, 0, (struct sockaddr *)&group, sizeof group));
    T(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &own, sizeof own));
    T(sendto(fd, "two", 3, 0, (struct sockaddr *)&group, sizeof group));
    take(fd, "sender", 3000);
    take(member, "member here", 3000);
    SET(fd, IPPROTO_IP, IP_MULTICAST_TTL, 3);
    SET(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 0);
    T(sendto(fd, "three", 5, 0, (struct sockaddr *)&group, sizeof group));
    take(fd, "sender", 3000);
    take(member, "member here, loop off", 300);
    // TTL 0: the looped copy only.
    SET(fd, IPPROTO_IP, IP_MULTICAST_TTL, 0);
    SET(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 1);
    T(sendto(fd, "four", 4, 0, (struct sockaddr *)&group, sizeof group));
    take(member, "member here, TTL 0", 3000);
    take(fd, "sender, TTL 0", 300);
    // Connected to the group: send() goes there.
    SET(fd, IPPROTO_IP, IP_MULTICAST_TTL, 1);
    T(connect(fd, (struct sockaddr *)&group, sizeof group));
    T(send(fd, "five", 4, 0));
    take(member, "member here, connected sender", 3000);
    T(close(fd));
    T(close(member));
}

static int join6(int fd, int name, const char *group, unsigned index, const char *what) {
    struct ipv6_mreq m = { .ipv6mr_interface = index };
    inet_pton(AF_INET6, group, &m.ipv6mr_multiaddr);
    errno = 0;
    int r = setsockopt(fd, IPPROTO_IPV6, name, &m, sizeof m);
    printf("%s %s = %d %s\n", name == IPV6_JOIN_GROUP ? "join" : "leave", what, r, r < 0 ? strerrorname_np(errno) : "");
    fflush(stdout);
    return r;
}

static int bound6(int port, int reuse) {
    int fd = FD(socket(AF_INET6, SOCK_DGRAM, 0));
    if (reuse) T(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse));
    struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
    T(bind(fd, (struct sockaddr *)&a, sizeof a));
    return fd;
}

static void over_ipv6(void) {
    int fd = FD(socket(AF_INET6, SOCK_DGRAM, 0));
    SHOW(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS);
    SHOW(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP);
    SHOW(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL);
    SHOW(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF);
    SHOW(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP);
    SET(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 9);
    SHOW(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS);
    SET(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, -1);
    SHOW(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS);
    SET(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 256);
    SET(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 2);
    SET(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, 7);
    SHOW(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL);
    SET(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, 9999);
    unsigned char byte = 1;
    T(setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &byte, 1));
    join6(fd, IPV6_JOIN_GROUP, "fd99::1", 0, "a unicast address");
    join6(fd, IPV6_JOIN_GROUP, "ff12::1:2:3", 9999, "by an index that is none");
    join6(fd, IPV6_LEAVE_GROUP, "ff12::1:2:3", 0, "never joined");
    join6(fd, IPV6_JOIN_GROUP, "ff12::1:2:3", 0, "by the route");
    join6(fd, IPV6_JOIN_GROUP, "ff12::1:2:3", 0, "again");
    join6(fd, IPV6_LEAVE_GROUP, "ff12::1:2:3", 0, "joined");
    struct ipv6_mreq short_form = { 0 };
    T(setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &short_form, 19));
    T(close(fd));
    int tcp = FD(socket(AF_INET6, SOCK_STREAM, 0));
    join6(tcp, IPV6_JOIN_GROUP, "ff12::1:2:3", 0, "on a TCP socket");
    SET(tcp, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 3);
    SET(tcp, IPPROTO_IPV6, IPV6_MULTICAST_IF, 0);
    T(close(tcp));

    // Receiving: two joined sockets sharing the port, one that takes no group it did not join.
    int port = 7411;
    int a = bound6(port, 1), b = bound6(port, 1), not_all = bound6(port, 1);
    SET(not_all, IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0);
    join6(a, IPV6_JOIN_GROUP, "ff12::1:2:3", 0, "on the first");
    // The second by RFC 3678's request (a group of the other family is EADDRNOTAVAIL here).
    struct group_req request = { .gr_interface = 0 };
    struct sockaddr_in6 *group6 = (struct sockaddr_in6 *)&request.gr_group;
    group6->sin6_family = AF_INET;
    T(setsockopt(b, IPPROTO_IPV6, MCAST_JOIN_GROUP, &request, sizeof request));
    group6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, "ff12::1:2:3", &group6->sin6_addr);
    T(setsockopt(b, IPPROTO_IPV6, MCAST_JOIN_GROUP, &request, sizeof request));
    address to = peer(7012);
    char text[16];
    int n = snprintf(text, sizeof text, "%d", port);
    int ask = FD(socket(AF_INET6, SOCK_DGRAM, 0));
    T(sendto(ask, text, n, 0, &to.sa, ADDRLEN));
    take(a, "first", 3000);
    take(b, "second", 3000);
    take(not_all, "IPV6_MULTICAST_ALL off", 200);
    join6(a, IPV6_LEAVE_GROUP, "ff12::1:2:3", 0, "on the first");
    T(setsockopt(b, IPPROTO_IPV6, MCAST_LEAVE_GROUP, &request, sizeof request));
    T(sendto(ask, text, n, 0, &to.sa, ADDRLEN));
    take(a, "first after the leave", 500);
    int fds[] = { a, b, not_all, ask };
    for (unsigned i = 0; i < sizeof fds / sizeof fds[0]; i++) close(fds[i]);

    // Sending: the hop limit the peer sees, the looped copy, loop off, hop limit 0.
    int sender = FD(socket(AF_INET6, SOCK_DGRAM, 0));
    int member = bound6(7012, 1);
    join6(member, IPV6_JOIN_GROUP, "ff12::1:2:4", 0, "here, as the peer is");
    struct sockaddr_in6 group = { .sin6_family = AF_INET6, .sin6_port = htons(7012) };
    inet_pton(AF_INET6, "ff12::1:2:4", &group.sin6_addr);
    T(sendto(sender, "one", 3, 0, (struct sockaddr *)&group, sizeof group));
    take(sender, "sender", 3000);
    take(member, "member here", 3000);
    SET(sender, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 4);
    SET(sender, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0);
    T(sendto(sender, "two", 3, 0, (struct sockaddr *)&group, sizeof group));
    take(sender, "sender", 3000);
    take(member, "member here, loop off", 300);
    SET(sender, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 0);
    SET(sender, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 1);
    T(sendto(sender, "three", 5, 0, (struct sockaddr *)&group, sizeof group));
    take(member, "member here, hop limit 0", 3000);
    take(sender, "sender, hop limit 0", 300);
    T(close(sender));
    T(close(member));
}

int main(int argc, char **argv) {
    begin(argc, argv);
    if (family == AF_INET6) snprintf(peer4, sizeof peer4, "10.%d.0.1", atoi(peer_address + 2));
    else snprintf(peer4, sizeof peer4, "%s", peer_address);
    int probe = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = v4(peer4, 7011), me;
    socklen_t length = sizeof me;
    connect(probe, (struct sockaddr *)&to, sizeof to);
    getsockname(probe, (struct sockaddr *)&me, &length);
    own = me.sin_addr;
    close(probe);
    options();
    memberships();
    receiving();
    sending();
    if (family == AF_INET6) over_ipv6();
    return 0;
}
