// accept4 on a non-blocking listener: EAGAIN while nobody connects, the connection after
// poll says so; SOCK_NONBLOCK and SOCK_CLOEXEC land on the accepted socket.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int listener = FD(socket(FAMILY, SOCK_STREAM | SOCK_NONBLOCK, 0));
    int on = 1;
    T(setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
    address any = wildcard(7101);
    T(bind(listener, &any.sa, ADDRLEN));
    T(listen(listener, 8));
    FD(accept4(listener, NULL, NULL, 0));
    int control = connected(7007);
    T(send(control, "7101\n", 5, 0));
    struct pollfd p = { listener, POLLIN, 0 };
    T(poll(&p, 1, 5000));
    note("revents", p.revents);
    int fd = FD(accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC));
    note("O_NONBLOCK", (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    note("FD_CLOEXEC", (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    char bytes[8];
    p = (struct pollfd){ fd, POLLIN, 0 };
    T(poll(&p, 1, 5000));
    T(recv(fd, bytes, 5, MSG_WAITALL));
    T(close(fd));
    T(read_exactly(control, bytes, 6));
    T(close(control));
    T(close(listener));
    return 0;
}
