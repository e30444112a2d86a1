// Options a program sets and reads back: the values Linux reports.
#include "../trace.h"
static void get_int(int fd, int level, int name, const char *what) {
    int value = -1;
    socklen_t length = sizeof value;
    if (getsockopt(fd, level, name, &value, &length) < 0) printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else printf("%s: %d (length %u)\n", what, value, length);
}
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = FD(socket(FAMILY, SOCK_STREAM, 0));
    int on = 1, seconds = 30;
    get_int(fd, SOL_SOCKET, SO_TYPE, "SO_TYPE");
    get_int(fd, SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN");
    get_int(fd, SOL_SOCKET, SO_PROTOCOL, "SO_PROTOCOL");
    get_int(fd, SOL_SOCKET, SO_ACCEPTCONN, "SO_ACCEPTCONN");
    get_int(fd, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE");
    T(setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on));
    get_int(fd, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE");
    T(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
    get_int(fd, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR");
    T(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on));
    get_int(fd, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY");
    T(setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &seconds, sizeof seconds));
    get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE");
    struct linger linger = { 1, 5 };
    T(setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger));
    socklen_t length = sizeof linger;
    memset(&linger, 0, sizeof linger);
    T(getsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, &length));
    note("linger on", linger.l_onoff);
    note("linger seconds", linger.l_linger);
    struct timeval timeout = { 0, 200000 };
    T(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout));
    address a = peer(7005);
    T(connect(fd, &a.sa, ADDRLEN));
    char byte;
    T(recv(fd, &byte, 1, 0)); // the silent peer: the receive timeout expires
    get_int(fd, SOL_SOCKET, SO_ERROR, "SO_ERROR");
    get_int(fd, SOL_SOCKET, SO_ACCEPTCONN, "SO_ACCEPTCONN");
    linger = (struct linger){ 1, 0 };
    T(setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger));
    T(close(fd)); // a reset
    return 0;
}
