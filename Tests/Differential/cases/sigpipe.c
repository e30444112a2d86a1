// A write after the peer reset raises SIGPIPE (unless MSG_NOSIGNAL); the handler runs and
// the call fails with EPIPE.
#include "../trace.h"
static volatile sig_atomic_t pipes;
static void on_pipe(int signal) { (void)signal; pipes++; }
int main(int argc, char **argv) {
    begin(argc, argv);
    signal(SIGPIPE, on_pipe);
    int fd = connected(7003);
    char byte;
    T(recv(fd, &byte, 1, 0));
    T(send(fd, "x", 1, MSG_NOSIGNAL));
    note("SIGPIPE so far", pipes);
    T(write(fd, "x", 1));
    note("SIGPIPE so far", pipes);
    T(send(fd, "x", 1, 0));
    note("SIGPIPE so far", pipes);
    T(close(fd));
    return 0;
}
