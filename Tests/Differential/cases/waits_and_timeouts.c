// ppoll, pselect and epoll_pwait2 time out on an idle socket and reject bad timeouts.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7006);
    char bytes[8];
    T(read_exactly(fd, bytes, 6));
    struct pollfd p = { fd, POLLIN, 0 };
    struct timespec short_wait = { 0, 50 * 1000 * 1000 }, bad = { 0, 2000000000L };
    T(ppoll(&p, 1, &short_wait, NULL));
    T(ppoll(&p, 1, &bad, NULL));
    fd_set readers;
    FD_ZERO(&readers);
    FD_SET(fd, &readers);
    T(pselect(fd + 1, &readers, NULL, NULL, &short_wait, NULL));
    T(select(-1, NULL, NULL, NULL, NULL));
    int ep = FD(epoll_create1(0));
    struct epoll_event e = { .events = EPOLLIN }, out[1];
    T(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e));
    T(epoll_pwait2(ep, out, 1, &short_wait, NULL));
    T(epoll_pwait2(ep, out, 1, &bad, NULL));
    T(epoll_pwait(ep, out, 1, 30, NULL));
    T(close(ep));
    T(close(fd));
    return 0;
}
