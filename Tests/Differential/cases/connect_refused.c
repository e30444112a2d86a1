// connect to a port nobody listens on: ECONNREFUSED, and the error is not sticky.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = FD(socket(FAMILY, SOCK_STREAM, 0));
    address a = peer(7099);
    T(connect(fd, &a.sa, ADDRLEN));
    int error = -1;
    socklen_t length = sizeof error;
    T(getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length));
    note("SO_ERROR", error);
    T(send(fd, "x", 1, MSG_NOSIGNAL));
    T(close(fd));
    return 0;
}
