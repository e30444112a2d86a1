// Non-blocking connect: EINPROGRESS, then poll for POLLOUT and read SO_ERROR; the same to
// a closed port ends with ECONNREFUSED in SO_ERROR.
#include "../trace.h"
static void attempt(int port) {
    int fd = FD(socket(FAMILY, SOCK_STREAM | SOCK_NONBLOCK, 0));
    address a = peer(port);
    T(connect(fd, &a.sa, ADDRLEN));
    struct pollfd p = { fd, POLLOUT, 0 };
    T(poll(&p, 1, 5000));
    note("revents & (POLLOUT|POLLERR)", p.revents & (POLLOUT | POLLERR));
    int error = -1;
    socklen_t length = sizeof error;
    T(getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length));
    note("SO_ERROR", error);
    T(connect(fd, &a.sa, ADDRLEN)); // EISCONN once connected
    T(close(fd));
}
int main(int argc, char **argv) {
    begin(argc, argv);
    attempt(7001);
    attempt(7099);
    return 0;
}
