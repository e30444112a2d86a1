// EPOLLRDHUP: the peer's FIN is reported beside EPOLLIN; then EOF; after our own
// shutdown both ways, EPOLLHUP.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7006);
    char bytes[8];
    T(read_exactly(fd, bytes, 6));
    int ep = FD(epoll_create1(0));
    struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP, .data.u64 = 9 };
    T(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e));
    struct epoll_event out[4];
    T(epoll_wait(ep, out, 4, 100));
    T(shutdown(fd, SHUT_WR)); // the hello service closes on our EOF
    T(epoll_wait(ep, out, 4, 5000));
    note("events", out[0].events);
    T(recv(fd, bytes, sizeof bytes, 0));
    T(epoll_wait(ep, out, 4, 0));
    note("events", out[0].events);
    T(close(fd));
    T(close(ep));
    return 0;
}
