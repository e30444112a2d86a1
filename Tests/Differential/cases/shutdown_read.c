// shutdown(SHUT_RD): reads return EOF at once, writes still go through.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001);
    char bytes[8];
    T(shutdown(fd, SHUT_RD));
    T(recv(fd, bytes, sizeof bytes, 0));
    T(send(fd, "x", 1, 0));
    struct pollfd p = { fd, POLLIN | POLLOUT | POLLRDHUP, 0 };
    T(poll(&p, 1, 0));
    note("revents & (POLLIN|POLLOUT)", p.revents & (POLLIN | POLLOUT));
    T(close(fd));
    return 0;
}
