// IP_TOS and IP_TTL (IPV6_TCLASS and IPV6_UNICAST_HOPS over IPv6): the values setsockopt
// takes, how it normalises them (TCP keeps its ECN bits), what getsockopt reports, and a
// connection and a datagram that carry them; over IPv6, IPPROTO_IP's pair on an IPv6
// socket as well (it marks the socket's IPv4 traffic).
#include "../trace.h"
static int level, tos_name, ttl_name;
static void show(int fd) {
    int v = -2;
    socklen_t length = sizeof v;
    if (T(getsockopt(fd, level, tos_name, &v, &length)) == 0) note("tos", v);
    v = -2;
    length = sizeof v;
    if (T(getsockopt(fd, level, ttl_name, &v, &length)) == 0) note("ttl", v);
}
static void marks(int fd) {
    show(fd);
    int v = 0xB9;
    T(setsockopt(fd, level, tos_name, &v, sizeof v));
    show(fd);
    v = 0x1FF;
    T(setsockopt(fd, level, tos_name, &v, sizeof v));
    show(fd);
    v = -1;
    T(setsockopt(fd, level, tos_name, &v, sizeof v));
    show(fd);
    v = 300;
    T(setsockopt(fd, level, ttl_name, &v, sizeof v));
    v = 0;
    T(setsockopt(fd, level, ttl_name, &v, sizeof v));
    v = -2;
    T(setsockopt(fd, level, ttl_name, &v, sizeof v));
    v = 33;
    T(setsockopt(fd, level, ttl_name, &v, sizeof v));
    show(fd);
    unsigned char byte = 17;
    T(setsockopt(fd, level, ttl_name, &byte, 1));
    show(fd);
    v = -1;
    T(setsockopt(fd, level, ttl_name, &v, sizeof v));
    show(fd);
    v = 0x28;
    T(setsockopt(fd, level, tos_name, &v, sizeof v));
    v = 33;
    T(setsockopt(fd, level, ttl_name, &v, sizeof v));
}
int main(int argc, char **argv) {
    begin(argc, argv);
    level = FAMILY == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
    tos_name = FAMILY == AF_INET6 ? IPV6_TCLASS : IP_TOS;
    ttl_name = FAMILY == AF_INET6 ? IPV6_UNICAST_HOPS : IP_TTL;

    int fd = FD(socket(FAMILY, SOCK_STREAM, 0));
    marks(fd);
    address a = peer(7001);
    T(connect(fd, &a.sa, ADDRLEN));
    T(send(fd, "marked", 6, 0));
    char bytes[16];
    wait_readable(fd, 6);
    T(recv(fd, bytes, sizeof bytes, 0));
    show(fd);
    T(close(fd));

    int udp = FD(socket(FAMILY, SOCK_DGRAM, 0));
    marks(udp);
    address echo = peer(7010);
    T(sendto(udp, "marked", 6, 0, &echo.sa, ADDRLEN));
    struct pollfd p = { .fd = udp, .events = POLLIN };
    poll(&p, 1, 5000);
    T(recv(udp, bytes, sizeof bytes, 0));
    show(udp);
    T(close(udp));

    // An IPv6 socket takes IPPROTO_IP's pair too, for its IPv4 peers: the same checks and
    // normalising, kept apart from its IPv6 pair.
    if (FAMILY == AF_INET6) {
        printf("IPPROTO_IP on IPv6 sockets:\n");
        level = IPPROTO_IP;
        tos_name = IP_TOS;
        ttl_name = IP_TTL;
        int six = FD(socket(AF_INET6, SOCK_STREAM, 0));
        marks(six);
        int v = -2;
        socklen_t length = sizeof v;
        T(getsockopt(six, IPPROTO_IPV6, IPV6_TCLASS, &v, &length));
        note("IPV6_TCLASS untouched", v);
        T(close(six));
        int six_udp = FD(socket(AF_INET6, SOCK_DGRAM, 0));
        marks(six_udp);
        T(close(six_udp));
    }
    return 0;
}
