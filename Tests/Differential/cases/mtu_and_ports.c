// Path MTU discovery modes and IP_BIND_ADDRESS_NO_PORT, as Linux checks and applies them:
// IP_MTU_DISCOVER (IPV6_MTU_DISCOVER on an IPv6 socket) reads 1 (WANT) by default, takes
// 0 to 5; with DO a datagram larger than the path's MTU is EMSGSIZE where WANT sends it in
// fragments; IP_MTU (IPV6_MTU) answers only on a connected socket. A socket bound with
// IP_BIND_ADDRESS_NO_PORT to port 0 holds no port until it connects.
#include "../trace.h"
static void get_int(int fd, int level, int name, const char *what) {
    int value = -7;
    socklen_t length = sizeof value;
    if (getsockopt(fd, level, name, &value, &length) < 0) printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else printf("%s: %d\n", what, value);
}
static void set_int(int fd, int level, int name, const char *what, int value) {
    errno = 0;
    int r = setsockopt(fd, level, name, &value, sizeof value);
    printf("set %s %d = %d %s\n", what, value, r, r < 0 ? strerrorname_np(errno) : "");
}
int main(int argc, char **argv) {
    begin(argc, argv);
    int v6 = family == AF_INET6;
    int level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
    int discover = v6 ? IPV6_MTU_DISCOVER : IP_MTU_DISCOVER, mtu = v6 ? IPV6_MTU : IP_MTU;
    int headers = v6 ? 48 : 28;
    for (int kind = 0; kind < 2; kind++) {
        int fd = FD(socket(FAMILY, kind ? SOCK_STREAM : SOCK_DGRAM, 0));
        printf(kind ? "tcp:\n" : "udp:\n");
        get_int(fd, level, discover, "MTU_DISCOVER");
        set_int(fd, level, discover, "MTU_DISCOVER", 2);
        get_int(fd, level, discover, "MTU_DISCOVER");
        set_int(fd, level, discover, "MTU_DISCOVER", 6);
        set_int(fd, level, discover, "MTU_DISCOVER", -1);
        get_int(fd, level, discover, "MTU_DISCOVER");
        get_int(fd, level, mtu, "MTU unconnected");
        T(close(fd));
    }
    int udp = FD(socket(FAMILY, SOCK_DGRAM, 0));
    address a = peer(7010);
    static char big[2000];
    set_int(udp, level, discover, "MTU_DISCOVER", 2); // DO
    note("DO, one frame's worth sent", sendto(udp, big, 1500 - headers, 0, &a.sa, ADDRLEN) == 1500 - headers);
    T(sendto(udp, big, 1501 - headers, 0, &a.sa, ADDRLEN));
    set_int(udp, level, discover, "MTU_DISCOVER", 1); // WANT
    T(sendto(udp, big, sizeof big, 0, &a.sa, ADDRLEN));
    T(connect(udp, &a.sa, ADDRLEN));
    get_int(udp, level, mtu, "MTU connected");
    T(close(udp));

    // IP_BIND_ADDRESS_NO_PORT: the port waits for connect.
    for (int kind = 0; kind < 2; kind++) {
        int fd = FD(socket(FAMILY, kind ? SOCK_STREAM : SOCK_DGRAM, 0));
        printf(kind ? "tcp:\n" : "udp:\n");
        get_int(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, "IP_BIND_ADDRESS_NO_PORT");
        set_int(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, "IP_BIND_ADDRESS_NO_PORT", 5);
        get_int(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, "IP_BIND_ADDRESS_NO_PORT");
        address any = wildcard(0), name;
        T(bind(fd, &any.sa, ADDRLEN));
        socklen_t length = sizeof name;
        T(getsockname(fd, &name.sa, &length));
        note("port after bind", port_of(&name));
        address to = peer(kind ? 7001 : 7010);
        T(connect(fd, &to.sa, ADDRLEN));
        length = sizeof name;
        T(getsockname(fd, &name.sa, &length));
        note("port after connect", port_of(&name) != 0);
        T(close(fd));
    }
    return 0;
}
