// Edge-triggered epoll: one report per arrival, none while data just sits there.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001);
    int ep = FD(epoll_create1(0));
    struct epoll_event e = { .events = EPOLLIN | EPOLLET, .data.u64 = 7 };
    T(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e));
    struct epoll_event out[4];
    T(epoll_wait(ep, out, 4, 100));
    T(send(fd, "0123456789", 10, 0));
    T(epoll_wait(ep, out, 4, 5000));
    note("events", out[0].events);
    usleep(100000); // the whole echo is in
    char bytes[16];
    T(recv(fd, bytes, 4, 0));
    T(epoll_wait(ep, out, 4, 200)); // nothing new arrived
    T(send(fd, "abc", 3, 0));
    T(epoll_wait(ep, out, 4, 5000));
    note("events", out[0].events);
    usleep(100000);
    T(recv(fd, bytes, sizeof bytes, 0));
    T(close(fd));
    T(close(ep));
    return 0;
}
