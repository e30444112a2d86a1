// poll over a pipe and a netmp socket together: a timeout with nothing ready, then each
// becoming ready on its own.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001);
    int pipe_fds[2];
    T(pipe(pipe_fds));
    struct pollfd p[2] = { { fd, POLLIN, 0 }, { pipe_fds[0], POLLIN, 0 } };
    T(poll(p, 2, 100));
    T(write(pipe_fds[1], "p", 1));
    T(poll(p, 2, 1000));
    note("socket revents", p[0].revents);
    note("pipe revents", p[1].revents);
    char byte;
    T(read(pipe_fds[0], &byte, 1));
    T(send(fd, "s", 1, 0));
    T(poll(p, 2, 5000));
    note("socket revents", p[0].revents);
    note("pipe revents", p[1].revents);
    p[0].events = POLLOUT;
    T(poll(p, 1, 0));
    note("socket revents (POLLOUT asked)", p[0].revents);
    T(close(fd));
    return 0;
}
