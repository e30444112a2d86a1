// Urgent data (MSG_OOB) both ways, as Linux's TCP handles it: the peer sends 'abc' with
// 'c' urgent, then 'de'. Without SO_OOBINLINE a read stops at the mark, SIOCATMARK says so,
// recv(MSG_OOB) takes 'c' once (POLLPRI until then) and reads skip it; with SO_OOBINLINE
// 'c' is data and recv(MSG_OOB) is EINVAL. The case then sends 'xyz' with MSG_OOB and 'w',
// and the peer, reading without SO_OOBINLINE, answers what it read and what came out of
// band. Also: recv(MSG_OOB) with nothing urgent, on an unconnected socket, and UDP's.
#include "../trace.h"
static void events(int fd) {
    struct pollfd p = { fd, POLLIN | POLLPRI, 0 };
    T(poll(&p, 1, 0));
    note("POLLIN", (p.revents & POLLIN) != 0);
    note("POLLPRI", (p.revents & POLLPRI) != 0);
}
static void at_mark(int fd) {
    int mark = -1;
    if (T(ioctl(fd, SIOCATMARK, &mark)) == 0) note("SIOCATMARK", mark);
}
static void show(const char *what, const char *bytes, long n) {
    printf("%s: '%.*s'\n", what, n > 0 ? (int)n : 0, bytes);
}
// One connection to the urgent peer; `mode` 0: take 'c' with MSG_OOB, 1: let reads skip
// it, 2: SO_OOBINLINE.
static void session(int mode) {
    printf("mode %d\n", mode);
    int fd = connected(7008);
    int one = 1;
    if (mode == 2) T(setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof one));
    wait_readable(fd, 5);
    usleep(100000);
    char b[32];
    at_mark(fd);
    events(fd);
    long n = T(recv(fd, b, sizeof b, 0));
    show("read", b, n);
    at_mark(fd);
    if (mode == 0) {
        n = T(recv(fd, b, 1, MSG_OOB | MSG_PEEK));
        show("peeked out of band", b, n);
        struct iovec v = { b, 1 };
        struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
        n = T(recvmsg(fd, &m, MSG_OOB));
        show("out of band", b, n);
        note("MSG_OOB in msg_flags", (m.msg_flags & MSG_OOB) != 0);
        T(recv(fd, b, 1, MSG_OOB));
        events(fd);
        at_mark(fd);
    } else {
        T(recv(fd, b, 1, MSG_OOB));
    }
    n = T(recv(fd, b, sizeof b, MSG_PEEK));
    show("peeked", b, n);
    n = T(recv(fd, b, sizeof b, 0));
    show("read", b, n);
    at_mark(fd);
    events(fd);
    T(recv(fd, b, 1, MSG_OOB | MSG_DONTWAIT));
    T(send(fd, "xyz", 3, MSG_OOB));
    usleep(50000);
    T(send(fd, "w", 1, 0));
    T(shutdown(fd, SHUT_WR));
    n = read_exactly(fd, b, sizeof b - 1);
    show("peer says", b, n);
    T(close(fd));
}
int main(int argc, char **argv) {
    begin(argc, argv);
    for (int mode = 0; mode < 3; mode++) session(mode);

    char b[8];
    int plain = connected(7006); // 'hello\n', nothing urgent
    wait_readable(plain, 6);
    T(recv(plain, b, 1, MSG_OOB));
    T(recv(plain, b, 1, MSG_OOB | MSG_DONTWAIT));
    at_mark(plain);
    T(close(plain));

    int fresh = FD(socket(FAMILY, SOCK_STREAM, 0));
    T(recv(fresh, b, 1, MSG_OOB));
    T(send(fresh, "x", 1, MSG_OOB));
    T(close(fresh));

    int udp = FD(socket(FAMILY, SOCK_DGRAM, 0));
    address echo = peer(7010);
    T(connect(udp, &echo.sa, ADDRLEN));
    T(send(udp, "u", 1, MSG_OOB));
    T(send(udp, "v", 1, 0));
    usleep(100000);
    T(recv(udp, b, sizeof b, MSG_OOB | MSG_DONTWAIT));
    T(close(udp));
    return 0;
}
