// A signal without SA_RESTART interrupts a blocked recv (EINTR); poll and epoll_wait are
// interrupted even with SA_RESTART, as on Linux.
#include "../trace.h"
static void on_alarm(int signal) { (void)signal; }
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7005);
    struct sigaction action = { .sa_handler = on_alarm, .sa_flags = 0 };
    sigemptyset(&action.sa_mask);
    T(sigaction(SIGALRM, &action, NULL));
    char byte;
    ualarm(100000, 0);
    T(recv(fd, &byte, 1, 0));
    action.sa_flags = SA_RESTART;
    T(sigaction(SIGALRM, &action, NULL));
    struct pollfd p = { fd, POLLIN, 0 };
    ualarm(100000, 0);
    T(poll(&p, 1, 5000));
    int ep = FD(epoll_create1(0));
    struct epoll_event e = { .events = EPOLLIN }, out[1];
    T(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e));
    ualarm(100000, 0);
    T(epoll_wait(ep, out, 1, 5000));
    T(close(ep));
    T(close(fd));
    return 0;
}
