// Level-triggered epoll: a socket stays reported until drained; a pipe beside it.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001);
    int pipe_fds[2];
    T(pipe(pipe_fds));
    int ep = FD(epoll_create1(EPOLL_CLOEXEC));
    struct epoll_event e = { .events = EPOLLIN, .data.u64 = 111 };
    T(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e));
    e = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 222 };
    T(epoll_ctl(ep, EPOLL_CTL_ADD, pipe_fds[0], &e));
    struct epoll_event out[4];
    T(epoll_wait(ep, out, 4, 100));
    T(send(fd, "0123456789", 10, 0));
    T(epoll_wait(ep, out, 4, 5000));
    note("data", (long)out[0].data.u64);
    note("events", out[0].events);
    char bytes[16];
    T(recv(fd, bytes, 4, 0));
    T(epoll_wait(ep, out, 4, 1000)); // still readable: reported again
    note("data", (long)out[0].data.u64);
    T(read_exactly(fd, bytes, 6));
    T(epoll_wait(ep, out, 4, 100));
    T(write(pipe_fds[1], "p", 1));
    T(epoll_wait(ep, out, 4, 1000));
    note("data", (long)out[0].data.u64);
    T(close(fd));
    T(close(ep));
    return 0;
}
