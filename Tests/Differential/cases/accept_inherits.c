// An accepted connection starts with its listener's options, as Linux clones the
// listening socket: TCP_NODELAY, keepalive and its parameters, SO_LINGER, the receive
// timeout, IP_TOS and IP_TTL (IPV6_TCLASS, IPV6_UNICAST_HOPS), TCP_CONGESTION and
// SO_REUSEADDR; not O_NONBLOCK, which belongs to the file.
#include "../trace.h"
static int level, tos_name, ttl_name;
static void show(const char *what, int fd) {
    int v = -2;
    socklen_t length = sizeof v;
    printf("%s:\n", what);
    struct { int level, name; const char *text; } options[] = {
        { IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY" }, { SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE" },
        { IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE" }, { IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL" },
        { IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT" }, { SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR" },
        { level, tos_name, "TOS" }, { level, ttl_name, "TTL" },
    };
    for (unsigned i = 0; i < sizeof options / sizeof options[0]; i++) {
        v = -2;
        length = sizeof v;
        if (getsockopt(fd, options[i].level, options[i].name, &v, &length) == 0) note(options[i].text, v);
        else printf("%s: %s\n", options[i].text, strerrorname_np(errno));
    }
    struct linger l = { -1, -1 };
    length = sizeof l;
    T(getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &length));
    note("linger on", l.l_onoff);
    note("linger seconds", l.l_linger);
    struct timeval tv = { -1, -1 };
    length = sizeof tv;
    T(getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &length));
    note("receive timeout ms", tv.tv_sec * 1000 + tv.tv_usec / 1000);
    char name[16] = { 0 };
    length = sizeof name;
    T(getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &length));
    printf("congestion: %s\n", name);
    note("O_NONBLOCK", (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
}
int main(int argc, char **argv) {
    begin(argc, argv);
    level = FAMILY == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
    tos_name = FAMILY == AF_INET6 ? IPV6_TCLASS : IP_TOS;
    ttl_name = FAMILY == AF_INET6 ? IPV6_UNICAST_HOPS : IP_TTL;
    int listener = FD(socket(FAMILY, SOCK_STREAM | SOCK_NONBLOCK, 0));
    int v = 1;
    T(setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &v, sizeof v));
    T(setsockopt(listener, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v));
    T(setsockopt(listener, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v));
    v = 77;
    T(setsockopt(listener, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof v));
    v = 7;
    T(setsockopt(listener, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof v));
    v = 5;
    T(setsockopt(listener, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof v));
    v = 0x20;
    T(setsockopt(listener, level, tos_name, &v, sizeof v));
    v = 40;
    T(setsockopt(listener, level, ttl_name, &v, sizeof v));
    struct linger l = { 1, 3 };
    T(setsockopt(listener, SOL_SOCKET, SO_LINGER, &l, sizeof l));
    struct timeval tv = { 2, 500000 };
    T(setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    T(setsockopt(listener, IPPROTO_TCP, TCP_CONGESTION, "reno", 4));
    address any = wildcard(7101);
    T(bind(listener, &any.sa, ADDRLEN));
    T(listen(listener, 8));
    show("listener", listener);
    int control = connected(7007);
    T(send(control, "7101\n", 5, 0));
    struct pollfd p = { .fd = listener, .events = POLLIN };
    T(poll(&p, 1, 5000));
    int fd = FD(accept(listener, NULL, NULL));
    show("accepted", fd);
    char bytes[16] = { 0 };
    T(recv(fd, bytes, 5, MSG_WAITALL));
    T(send(fd, "pong!\n", 6, 0));
    l.l_onoff = 0;
    T(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l));
    T(close(fd));
    memset(bytes, 0, sizeof bytes);
    T(read_exactly(control, bytes, 6));
    T(close(control));
    T(close(listener));
    return 0;
}
