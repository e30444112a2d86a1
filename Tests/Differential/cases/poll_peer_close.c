// The peer closes: poll reports POLLIN and POLLRDHUP, reads give the data then EOF.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7002);
    T(send(fd, "abc", 3, 0));
    T(shutdown(fd, SHUT_WR)); // the count service answers and closes
    // The answer and the FIN may come in two segments: wait (untraced) for the FIN.
    struct pollfd fin = { fd, POLLRDHUP, 0 };
    poll(&fin, 1, 5000);
    struct pollfd p = { fd, POLLIN | POLLRDHUP, 0 };
    T(poll(&p, 1, 5000));
    note("revents", p.revents);
    char bytes[8] = { 0 };
    T(recv(fd, bytes, sizeof bytes, 0));
    printf("count: %s", bytes);
    T(recv(fd, bytes, sizeof bytes, 0));
    p.events = POLLIN | POLLOUT;
    T(poll(&p, 1, 0));
    note("revents after both ends shut", p.revents);
    T(close(fd));
    return 0;
}
