// The peer resets the connection: the blocked reader gets ECONNRESET, then EOF; a send
// after that gets EPIPE (no SIGPIPE with MSG_NOSIGNAL).
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7003);
    char byte;
    T(recv(fd, &byte, 1, 0));
    T(recv(fd, &byte, 1, 0));
    T(send(fd, "x", 1, MSG_NOSIGNAL));
    int error = -1;
    socklen_t length = sizeof error;
    T(getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length));
    note("SO_ERROR", error);
    T(close(fd));
    return 0;
}
