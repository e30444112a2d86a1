// bind: a port in use, an address not ours, a wildcard then getsockname.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int a = FD(socket(FAMILY, SOCK_STREAM, 0));
    int b = FD(socket(FAMILY, SOCK_STREAM, 0));
    address any = wildcard(7200);
    T(bind(a, &any.sa, ADDRLEN));
    T(listen(a, 4));
    T(bind(b, &any.sa, ADDRLEN));
    address foreign = foreign_address(7201);
    T(bind(b, &foreign.sa, ADDRLEN));
    address name;
    socklen_t length = sizeof name;
    T(getsockname(a, (struct sockaddr *)&name, &length));
    note("port", port_of(&name));
    note("address is wildcard", is_wildcard(&name));
    set_port(&any, 0);
    T(bind(b, &any.sa, ADDRLEN));
    length = sizeof name;
    T(getsockname(b, (struct sockaddr *)&name, &length));
    note("ephemeral port chosen", port_of(&name) != 0);
    T(close(a));
    T(close(b));
    return 0;
}
