// select over a pipe and a socket: timeout, then readiness of each, then writability.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001);
    int pipe_fds[2];
    T(pipe(pipe_fds));
    int top = (fd > pipe_fds[0] ? fd : pipe_fds[0]) + 1;
    fd_set readers;
    struct timeval wait = { 0, 100000 };
    FD_ZERO(&readers); FD_SET(fd, &readers); FD_SET(pipe_fds[0], &readers);
    T(select(top, &readers, NULL, NULL, &wait));
    T(send(fd, "s", 1, 0));
    FD_ZERO(&readers); FD_SET(fd, &readers); FD_SET(pipe_fds[0], &readers);
    wait = (struct timeval){ 5, 0 };
    T(select(top, &readers, NULL, NULL, &wait));
    note("socket readable", FD_ISSET(fd, &readers));
    note("pipe readable", FD_ISSET(pipe_fds[0], &readers));
    fd_set writers;
    FD_ZERO(&writers); FD_SET(fd, &writers);
    wait = (struct timeval){ 0, 0 };
    T(select(fd + 1, NULL, &writers, NULL, &wait));
    note("socket writable", FD_ISSET(fd, &writers));
    T(close(fd));
    return 0;
}
