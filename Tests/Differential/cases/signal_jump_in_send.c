// A SIGALRM handler that jumps out of send() (siglongjmp, as iperf3's SIGTERM handler does
// on its way to exit), hundreds of times, while the program goes on sending on the same
// socket: every later send goes on, none waits forever behind one that was cut short, and
// the peer counts every byte of the sends that returned. netmp runs a handler after the
// ring write it interrupted (docs/SHIM.md, Signals), as the kernel runs it on the way out.
#include "../trace.h"
#include <setjmp.h>
#include <sys/time.h>
#include <time.h>
static sigjmp_buf out;
static volatile sig_atomic_t armed;
static void jump(int signal) {
    (void)signal;
    if (armed) { armed = 0; siglongjmp(out, 1); }
}
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7002); // counts what it reads until EOF
    static char buffer[256 << 10];
    memset(buffer, 'x', sizeof buffer);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = jump; // no SA_RESTART
    sigemptyset(&action.sa_mask);
    T(sigaction(SIGALRM, &action, NULL));
    struct itimerval every = { { 0, 150 }, { 0, 150 } };
    T(setitimer(ITIMER_REAL, &every, NULL));
    static volatile long jumps, returned;
    static volatile int round;
    double start = now();
    for (round = 0; round < 4000 && now() - start < 1.5; round++) {
        if (sigsetjmp(out, 1)) { jumps++; continue; }
        armed = 1;
        long n = send(fd, buffer, sizeof buffer, 0);
        armed = 0;
        if (n > 0) returned += n;
    }
    armed = 0;
    struct itimerval stop;
    memset(&stop, 0, sizeof stop);
    T(setitimer(ITIMER_REAL, &stop, NULL));
    note("jumped out of a send at least ten times", jumps >= 10);
    T(send(fd, "end", 3, 0));
    T(shutdown(fd, SHUT_WR));
    char line[32] = { 0 };
    long got = 0, n;
    while (got < (long)sizeof line - 1 && (n = recv(fd, line + got, sizeof line - 1 - (size_t)got, 0)) > 0) got += n;
    note("the peer counted every byte of the sends that returned", atol(line) >= returned + 3);
    T(close(fd));
    return 0;
}
