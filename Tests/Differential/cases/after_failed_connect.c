// A socket whose connect failed, as on Linux: it may bind again (a port it did not choose
// was let go) but not listen; one bound to a port it named keeps it.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = FD(socket(FAMILY, SOCK_STREAM, 0));
    address refused = peer(7099);
    T(connect(fd, &refused.sa, ADDRLEN));
    address any = wildcard(0);
    T(bind(fd, &any.sa, ADDRLEN));
    address name;
    socklen_t length = sizeof name;
    T(getsockname(fd, &name.sa, &length));
    note("bound to a port", port_of(&name) != 0);
    T(listen(fd, 4));
    T(close(fd));

    // Unbound, refused, then straight to listen.
    int second = FD(socket(FAMILY, SOCK_STREAM, 0));
    T(connect(second, &refused.sa, ADDRLEN));
    T(listen(second, 4));
    T(close(second));

    // Bound to port 0 first: the port was not the program's choice, so it goes with the
    // failure and the socket may bind again.
    int third = FD(socket(FAMILY, SOCK_STREAM, 0));
    T(bind(third, &any.sa, ADDRLEN));
    length = sizeof name;
    T(getsockname(third, &name.sa, &length));
    int port = port_of(&name);
    T(connect(third, &refused.sa, ADDRLEN));
    length = sizeof name;
    T(getsockname(third, &name.sa, &length));
    note("same port after the failure", port_of(&name) == port);
    T(bind(third, &any.sa, ADDRLEN));
    T(listen(third, 4));
    T(close(third));

    // Bound to a port it named: the port stays, so a second bind is EINVAL.
    int fourth = FD(socket(FAMILY, SOCK_STREAM, 0));
    address chosen = wildcard(47123);
    T(bind(fourth, &chosen.sa, ADDRLEN));
    T(connect(fourth, &refused.sa, ADDRLEN));
    length = sizeof name;
    T(getsockname(fourth, &name.sa, &length));
    note("named port kept", port_of(&name) == 47123);
    T(bind(fourth, &any.sa, ADDRLEN));
    T(connect(fourth, &refused.sa, ADDRLEN));
    T(close(fourth));
    return 0;
}
