// epoll with only kernel descriptors (a pipe and a timerfd-free sleep): netmp stays out of
// the way; then a socket joins the same set.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int pipe_fds[2];
    T(pipe(pipe_fds));
    int ep = FD(epoll_create1(0));
    struct epoll_event e = { .events = EPOLLIN | EPOLLET, .data.u64 = 42 }, out[4];
    T(epoll_ctl(ep, EPOLL_CTL_ADD, pipe_fds[0], &e));
    T(write(pipe_fds[1], "ab", 2));
    T(epoll_wait(ep, out, 4, 1000));
    note("data", (long)out[0].data.u64);
    T(epoll_wait(ep, out, 4, 50));
    int fd = connected(7006);
    e = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u64 = 43 };
    T(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e));
    T(epoll_wait(ep, out, 4, 5000));
    note("data", (long)out[0].data.u64);
    T(close(pipe_fds[0]));
    T(close(pipe_fds[1]));
    T(close(fd));
    T(epoll_wait(ep, out, 4, 50));
    T(close(ep));
    return 0;
}
