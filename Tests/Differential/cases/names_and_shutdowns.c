// getsockname/getpeername on a connection, short name buffers, shutdown twice, and
// shutdown once both FINs are through (Linux: ENOTCONN, the socket is in TCP_CLOSE).
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    // The silent peer neither reads nor closes for 5 s, so the second shutdown finds the
    // connection in FIN-WAIT and the trace does not depend on how fast the peer answers.
    int fd = connected(7005);
    address name;
    socklen_t length = sizeof name;
    T(getsockname(fd, (struct sockaddr *)&name, &length));
    note("local port set", port_of(&name) != 0);
    note("local address set", !is_wildcard(&name));
    length = sizeof name;
    T(getpeername(fd, (struct sockaddr *)&name, &length));
    note("peer port", port_of(&name));
    length = 4;
    T(getpeername(fd, (struct sockaddr *)&name, &length));
    note("length reported", length);
    T(getpeername(fd, NULL, &length));
    T(shutdown(fd, SHUT_WR));
    T(shutdown(fd, SHUT_WR));
    T(shutdown(fd, SHUT_RDWR));
    T(close(fd));

    // The echo peer closes on our FIN; its FIN acknowledges ours, so once recv sees the end
    // the connection is over and every shutdown is ENOTCONN.
    fd = connected(7001);
    char byte;
    T(shutdown(fd, SHUT_WR));
    T(recv(fd, &byte, 1, 0));
    T(shutdown(fd, SHUT_WR));
    T(shutdown(fd, SHUT_RD));
    T(close(fd));
    return 0;
}
