// A connection holds its port against bind until its TIME-WAIT ends, as Linux keeps it
// in the port's bind bucket: a client that closed first, and an accepted connection whose
// listener is gone. Only SO_REUSEADDR on both the binding socket and the connection's
// (an accepted one's: its listener's) lets the port be bound again.
#include "../trace.h"
static int reusing(int on) {
    int fd = FD(socket(FAMILY, SOCK_STREAM, 0));
    if (on) T(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
    return fd;
}
// Connects to the hello service (from `port`, or an ephemeral one if 0), reads its line and
// closes first: the connection goes to FIN-WAIT and, once the peer closes too, TIME-WAIT.
// Returns its port. (An ephemeral port may be shared with other connections, to other
// peers, that did not set SO_REUSEADDR: the second part names its port.)
static int closed_first(int reuse, int port) {
    int fd = reusing(reuse);
    if (port) {
        address any = wildcard(port);
        T(bind(fd, &any.sa, ADDRLEN));
    }
    address a = peer(7006);
    T(connect(fd, &a.sa, ADDRLEN));
    char hello[8];
    T(read_exactly(fd, hello, 6));
    address name;
    socklen_t length = sizeof name;
    T(getsockname(fd, (struct sockaddr *)&name, &length));
    T(close(fd));
    usleep(100000); // the peer's FIN: TIME-WAIT
    return port_of(&name);
}
static void try_bind(int port, int reuse) {
    int fd = reusing(reuse);
    address any = wildcard(port);
    T(bind(fd, &any.sa, ADDRLEN));
    T(close(fd));
}
// A listener on `port`, one connection the peer dials back to it, accepted; the listener
// is closed and binds are tried with and without SO_REUSEADDR while the connection lives.
static void accepted_outlives_listener(int port, int reuse) {
    int listener = reusing(reuse);
    address any = wildcard(port);
    T(bind(listener, &any.sa, ADDRLEN));
    T(listen(listener, 4));
    int control = connected(7007);
    char line[16];
    snprintf(line, sizeof line, "%d\n", port);
    T(send(control, line, strlen(line), 0));
    struct pollfd p = { .fd = listener, .events = POLLIN };
    T(poll(&p, 1, 5000));
    int fd = FD(accept(listener, NULL, NULL));
    T(close(listener));
    try_bind(port, 0);
    try_bind(port, 1);
    // A new listener there, as a restarted server makes one.
    int again = reusing(1);
    T(bind(again, &any.sa, ADDRLEN));
    T(listen(again, 4));
    T(close(again));
    char bytes[8];
    T(read_exactly(fd, bytes, 5));
    T(close(fd));
    T(read_exactly(control, bytes, 6));
    T(close(control));
}
int main(int argc, char **argv) {
    begin(argc, argv);
    printf("a client's connection without SO_REUSEADDR:\n");
    int port = closed_first(0, 0);
    try_bind(port, 0);
    try_bind(port, 1);
    printf("a client's connection with SO_REUSEADDR:\n");
    port = closed_first(1, 7232);
    try_bind(port, 0);
    try_bind(port, 1);
    printf("an accepted connection, its listener without SO_REUSEADDR:\n");
    accepted_outlives_listener(7230, 0);
    printf("an accepted connection, its listener with SO_REUSEADDR:\n");
    accepted_outlives_listener(7231, 1);
    return 0;
}
