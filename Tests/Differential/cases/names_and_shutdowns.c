// getsockname/getpeername on a connection, short name buffers, shutdown twice.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001);
    struct sockaddr_in name;
    socklen_t length = sizeof name;
    T(getsockname(fd, (struct sockaddr *)&name, &length));
    note("local port set", ntohs(name.sin_port) != 0);
    note("local address set", name.sin_addr.s_addr != 0);
    length = sizeof name;
    T(getpeername(fd, (struct sockaddr *)&name, &length));
    note("peer port", ntohs(name.sin_port));
    length = 4;
    T(getpeername(fd, (struct sockaddr *)&name, &length));
    note("length reported", length);
    T(getpeername(fd, NULL, &length));
    T(shutdown(fd, SHUT_WR));
    T(shutdown(fd, SHUT_WR));
    T(shutdown(fd, SHUT_RDWR));
    T(close(fd));
    return 0;
}
