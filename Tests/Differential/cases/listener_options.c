// A listener's options shape its connections from their SYN-ACK on, as Linux's clone of
// the listening socket: with TCP_MAXSEG set before listen, the peer that connects sees
// that MSS offered (its TCP_MAXSEG, net of the timestamp option); set after listen, the
// connections already made keep the stack's, and the next ones get it.
#include "../trace.h"
static void dial(int listener, const char *port) {
    int control = connected(7009);
    T(send(control, port, strlen(port), 0));
    int fd = FD(accept(listener, NULL, NULL));
    char bytes[32] = { 0 };
    long n = read_exactly(control, bytes, sizeof bytes - 1);
    printf("peer: %.*s", (int)n, bytes);
    int mss = 0;
    socklen_t length = sizeof mss;
    T(getsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &length));
    note("accepted TCP_MAXSEG", mss);
    T(close(fd));
    T(close(control));
}
int main(int argc, char **argv) {
    begin(argc, argv);
    int listener = FD(socket(FAMILY, SOCK_STREAM, 0));
    int on = 1, mss = 1000;
    T(setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
    T(setsockopt(listener, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss));
    address any = wildcard(7101);
    T(bind(listener, &any.sa, ADDRLEN));
    T(listen(listener, 8));
    dial(listener, "7101\n");
    T(close(listener));

    listener = FD(socket(FAMILY, SOCK_STREAM, 0));
    T(setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
    any = wildcard(7102);
    T(bind(listener, &any.sa, ADDRLEN));
    T(listen(listener, 8));
    mss = 1200;
    T(setsockopt(listener, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss));
    dial(listener, "7102\n");
    T(close(listener));
    return 0;
}
