// The TCP and socket options that shape timing and readiness, as Linux checks, normalises
// and reports them: TCP_USER_TIMEOUT (milliseconds, negative refused), TCP_LINGER2 (the
// default is tcp_fin_timeout, capped at 120 s, negative kept as -1), TCP_DEFER_ACCEPT
// (seconds rounded up to whole SYN-ACK retransmissions), TCP_QUICKACK, TCP_NOTSENT_LOWAT,
// SO_RCVLOWAT (0 means 1) and SO_SNDLOWAT (fixed at 1).
#include "../trace.h"
static void get_int(int fd, int level, int name, const char *what) {
    int value = -7;
    socklen_t length = sizeof value;
    if (getsockopt(fd, level, name, &value, &length) < 0) printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else printf("%s: %d (length %u)\n", what, value, length);
}
static void set_int(int fd, int level, int name, const char *what, int value) {
    errno = 0;
    int r = setsockopt(fd, level, name, &value, sizeof value);
    printf("set %s %d = %d %s\n", what, value, r, r < 0 ? strerrorname_np(errno) : "");
    get_int(fd, level, name, what);
}
#define SET(fd, level, name, value) set_int(fd, level, name, #name, value)
#define GET(fd, level, name) get_int(fd, level, name, #name)
static void values(int fd) {
    GET(fd, IPPROTO_TCP, TCP_USER_TIMEOUT);
    SET(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, 1500);
    SET(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, -1);
    SET(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, 0);
    GET(fd, IPPROTO_TCP, TCP_LINGER2);
    SET(fd, IPPROTO_TCP, TCP_LINGER2, 5);
    SET(fd, IPPROTO_TCP, TCP_LINGER2, 1000);
    SET(fd, IPPROTO_TCP, TCP_LINGER2, -3);
    SET(fd, IPPROTO_TCP, TCP_LINGER2, 0);
    GET(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT);
    SET(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, 1);
    SET(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, 5);
    SET(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, 30);
    SET(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, 1000);
    SET(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, -1);
    SET(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, 0);
    GET(fd, IPPROTO_TCP, TCP_QUICKACK);
    SET(fd, IPPROTO_TCP, TCP_QUICKACK, 0);
    SET(fd, IPPROTO_TCP, TCP_QUICKACK, 1);
    GET(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT);
    SET(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, 16384);
    SET(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, 0);
    GET(fd, SOL_SOCKET, SO_RCVLOWAT);
    SET(fd, SOL_SOCKET, SO_RCVLOWAT, 100);
    SET(fd, SOL_SOCKET, SO_RCVLOWAT, 0);
    // (A negative or huge SO_RCVLOWAT is capped: at half Linux's tcp_rmem[2], at half the
    // receive ring on netmp; docs/SHIM.md says so.)
    GET(fd, SOL_SOCKET, SO_SNDLOWAT);
    SET(fd, SOL_SOCKET, SO_SNDLOWAT, 100);
}
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = FD(socket(FAMILY, SOCK_STREAM, 0));
    printf("fresh socket:\n");
    values(fd);
    address a = peer(7001);
    T(connect(fd, &a.sa, ADDRLEN));
    printf("connected:\n");
    values(fd);
    T(close(fd));
    int udp = FD(socket(FAMILY, SOCK_DGRAM, 0));
    printf("udp:\n");
    GET(udp, SOL_SOCKET, SO_RCVLOWAT);
    SET(udp, SOL_SOCKET, SO_RCVLOWAT, 10);
    T(close(udp));
    return 0;
}
