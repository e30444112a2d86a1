// EPOLLONESHOT: one report, then silence until EPOLL_CTL_MOD re-arms it.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7006);
    int ep = FD(epoll_create(1));
    struct epoll_event e = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = 5 };
    T(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e));
    struct epoll_event out[4];
    T(epoll_wait(ep, out, 4, 5000));
    note("events", out[0].events);
    T(epoll_wait(ep, out, 4, 200)); // disabled, though still readable
    T(epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e));
    T(epoll_wait(ep, out, 4, 1000));
    note("events", out[0].events);
    T(epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL));
    T(epoll_wait(ep, out, 4, 100));
    T(close(fd));
    return 0;
}
