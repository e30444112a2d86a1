// Calls on sockets in the wrong state: the errnos Linux gives.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = FD(socket(FAMILY, SOCK_STREAM, 0));
    char byte;
    address name;
    socklen_t length = sizeof name;
    T(recv(fd, &byte, 1, 0));
    T(send(fd, "x", 1, MSG_NOSIGNAL));
    T(getpeername(fd, (struct sockaddr *)&name, &length));
    T(shutdown(fd, SHUT_RDWR));
    T(shutdown(fd, 7));
    FD(accept(fd, NULL, NULL));
    address a = peer(7001);
    T(connect(fd, &a.sa, ADDRLEN - 1));
    a.sa.sa_family = AF_UNIX;
    T(connect(fd, &a.sa, ADDRLEN));
    address any = wildcard(0);
    T(bind(fd, &any.sa, ADDRLEN));
    T(bind(fd, &any.sa, ADDRLEN));
    T(listen(fd, 4));
    T(connect(fd, &any.sa, ADDRLEN));
    int on = 1;
    T(setsockopt(fd, 12345, 1, &on, sizeof on));
    T(setsockopt(fd, SOL_SOCKET, 12345, &on, sizeof on));
    T(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, 1));
    T(close(fd));
    T(close(fd));
    FD(socket(FAMILY, SOCK_STREAM, IPPROTO_UDP));
    return 0;
}
