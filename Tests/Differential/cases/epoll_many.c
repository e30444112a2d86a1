// Level-triggered epoll with more ready sockets than maxevents: every one is reported
// within a few waits.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int ep = FD(epoll_create1(0));
    int fds[6];
    for (int i = 0; i < 6; i++) {
        fds[i] = connected(7006); // each says hello
        struct epoll_event e = { .events = EPOLLIN, .data.u64 = (uint64_t)i };
        T(epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e));
    }
    usleep(200000);
    int seen[6] = { 0 };
    struct epoll_event out[2];
    for (int round = 0; round < 6; round++) {
        int n = epoll_wait(ep, out, 2, 1000);
        for (int i = 0; i < n; i++) seen[out[i].data.u64]++;
    }
    int all = 1;
    for (int i = 0; i < 6; i++) all &= seen[i] > 0;
    note("every socket reported", all);
    for (int i = 0; i < 6; i++) T(close(fds[i]));
    T(close(ep));
    return 0;
}
