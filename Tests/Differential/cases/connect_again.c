// After a failed connect the socket is unconnected again and may connect anew, blocking
// or not (Linux starts a fresh handshake on the same descriptor).
#include "../trace.h"
static void echo_one(int fd) {
    T(send(fd, "x", 1, 0));
    char byte = 0;
    T(recv(fd, &byte, 1, MSG_WAITALL));
    note("echoed", byte == 'x');
}
int main(int argc, char **argv) {
    begin(argc, argv);
    address refused = peer(7099), echo = peer(7001);
    int fd = FD(socket(FAMILY, SOCK_STREAM, 0));
    T(connect(fd, &refused.sa, ADDRLEN));
    T(connect(fd, &refused.sa, ADDRLEN));
    T(connect(fd, &echo.sa, ADDRLEN));
    echo_one(fd);
    T(close(fd));

    fd = FD(socket(FAMILY, SOCK_STREAM | SOCK_NONBLOCK, 0));
    T(connect(fd, &refused.sa, ADDRLEN));
    struct pollfd p = { fd, POLLOUT, 0 };
    T(poll(&p, 1, 5000));
    T(connect(fd, &refused.sa, ADDRLEN)); // the outcome: ECONNREFUSED
    T(connect(fd, &echo.sa, ADDRLEN));       // a new attempt
    p.revents = 0;
    T(poll(&p, 1, 5000));
    note("revents", p.revents);
    T(connect(fd, &echo.sa, ADDRLEN));
    int blocking = fcntl(fd, F_GETFL) & ~O_NONBLOCK;
    T(fcntl(fd, F_SETFL, blocking));
    echo_one(fd);
    T(close(fd));
    return 0;
}
