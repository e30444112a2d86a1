// epoll_ctl and epoll_wait misuse: the errnos Linux gives.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001);
    int ep = FD(epoll_create1(0));
    struct epoll_event e = { .events = EPOLLIN };
    struct epoll_event out[1];
    FD(epoll_create(0));
    T(epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e));
    T(epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL));
    T(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e));
    T(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e));
    T(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &e));
    T(epoll_ctl(ep, 99, fd, &e));
    T(epoll_ctl(fd, EPOLL_CTL_ADD, ep, &e));
    T(epoll_ctl(-1, EPOLL_CTL_ADD, fd, &e));
    T(epoll_ctl(ep, EPOLL_CTL_ADD, 4000, &e));
    e.events = EPOLLIN | EPOLLEXCLUSIVE;
    T(epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e));
    T(epoll_wait(ep, out, 0, 0));
    T(epoll_wait(fd, out, 1, 0));
    T(epoll_pwait(fd, out, 1, 0, NULL));
    T(epoll_ctl(fd, EPOLL_CTL_ADD, 4000, &e));
    // EPOLLEXCLUSIVE: only beside EPOLLIN/OUT/ERR/HUP/ET/WAKEUP, never modified.
    int other = FD(epoll_create1(0));
    e.events = EPOLLIN | EPOLLRDHUP | EPOLLEXCLUSIVE;
    T(epoll_ctl(other, EPOLL_CTL_ADD, fd, &e));
    e.events = EPOLLIN | EPOLLONESHOT | EPOLLEXCLUSIVE;
    T(epoll_ctl(other, EPOLL_CTL_ADD, fd, &e));
    e.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLEXCLUSIVE;
    T(epoll_ctl(other, EPOLL_CTL_ADD, fd, &e));
    e.events = EPOLLIN;
    T(epoll_ctl(other, EPOLL_CTL_MOD, fd, &e));
    T(epoll_ctl(other, EPOLL_CTL_DEL, fd, NULL));
    T(close(other));
    T(close(fd));
    T(epoll_wait(ep, out, 1, 50)); // closed descriptors leave the set
    T(close(ep));
    return 0;
}
