// EPOLLOUT on a non-blocking connect, then EPOLL_CTL_MOD to EPOLLIN.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = FD(socket(FAMILY, SOCK_STREAM | SOCK_NONBLOCK, 0));
    address a = peer(7006);
    T(connect(fd, &a.sa, ADDRLEN));
    int ep = FD(epoll_create1(0));
    struct epoll_event e = { .events = EPOLLOUT, .data.u64 = 1 };
    T(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e));
    struct epoll_event out[2];
    T(epoll_wait(ep, out, 2, 5000));
    note("events", out[0].events);
    e.events = EPOLLIN;
    T(epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e));
    T(epoll_wait(ep, out, 2, 5000));
    note("events", out[0].events);
    char bytes[8];
    T(recv(fd, bytes, 6, 0));
    T(epoll_wait(ep, out, 2, 100));
    T(close(fd));
    T(close(ep));
    return 0;
}
