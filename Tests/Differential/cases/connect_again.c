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
    struct sockaddr_in refused = peer(7099), echo = peer(7001);
    int fd = FD(socket(AF_INET, SOCK_STREAM, 0));
    T(connect(fd, (struct sockaddr *)&refused, sizeof refused));
    T(connect(fd, (struct sockaddr *)&refused, sizeof refused));
    T(connect(fd, (struct sockaddr *)&echo, sizeof echo));
    echo_one(fd);
    T(close(fd));

    fd = FD(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    T(connect(fd, (struct sockaddr *)&refused, sizeof refused));
    struct pollfd p = { fd, POLLOUT, 0 };
    T(poll(&p, 1, 5000));
    T(connect(fd, (struct sockaddr *)&refused, sizeof refused)); // the outcome: ECONNREFUSED
    T(connect(fd, (struct sockaddr *)&echo, sizeof echo));       // a new attempt
    p.revents = 0;
    T(poll(&p, 1, 5000));
    note("revents", p.revents);
    T(connect(fd, (struct sockaddr *)&echo, sizeof echo));
    int blocking = fcntl(fd, F_GETFL) & ~O_NONBLOCK;
    T(fcntl(fd, F_SETFL, blocking));
    echo_one(fd);
    T(close(fd));
    return 0;
}
