// A signal without SA_RESTART interrupts a blocked recv (EINTR); poll and epoll_wait are
// interrupted even with SA_RESTART, as on Linux.
#include "../trace.h"
static void on_alarm(int signal) { (void)signal; }
// A repeating 100 ms timer: should the first tick come before the call blocks (a busy
// machine), the next one interrupts it.
static void ticking(int on) {
    struct itimerval every = { { 0, on ? 100000 : 0 }, { 0, on ? 100000 : 0 } };
    setitimer(ITIMER_REAL, &every, NULL);
}
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7005);
    struct sigaction action = { .sa_handler = on_alarm, .sa_flags = 0 };
    sigemptyset(&action.sa_mask);
    T(sigaction(SIGALRM, &action, NULL));
    char byte;
    ticking(1);
    T(recv(fd, &byte, 1, 0));
    ticking(0);
    action.sa_flags = SA_RESTART;
    T(sigaction(SIGALRM, &action, NULL));
    struct pollfd p = { fd, POLLIN, 0 };
    ticking(1);
    T(poll(&p, 1, 5000));
    ticking(0);
    int ep = FD(epoll_create1(0));
    struct epoll_event e = { .events = EPOLLIN }, out[1];
    T(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e));
    ticking(1);
    T(epoll_wait(ep, out, 1, 5000));
    ticking(0);
    T(close(ep));
    T(close(fd));
    return 0;
}
