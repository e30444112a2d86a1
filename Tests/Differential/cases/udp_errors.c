// UDP misuse and edges: nothing to read, short addresses, oversized datagrams, an
// association dissolved with AF_UNSPEC.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = FD(socket(FAMILY, SOCK_DGRAM, 0));
    char bytes[16];
    T(recv(fd, bytes, sizeof bytes, MSG_DONTWAIT));
    address a = peer(7010);
    T(sendto(fd, "x", 1, 0, &a.sa, ADDRLEN - 2));
    static char big[70000];
    T(sendto(fd, big, sizeof big, 0, &a.sa, ADDRLEN));
    address name;
    socklen_t length = sizeof name;
    T(getpeername(fd, (struct sockaddr *)&name, &length));
    T(connect(fd, &a.sa, ADDRLEN));
    length = sizeof name;
    T(getpeername(fd, (struct sockaddr *)&name, &length));
    note("peer port", port_of(&name));
    struct sockaddr unspecified = { .sa_family = AF_UNSPEC };
    T(connect(fd, &unspecified, sizeof unspecified));
    length = sizeof name;
    T(getpeername(fd, (struct sockaddr *)&name, &length));
    T(send(fd, "x", 1, 0));
    T(listen(fd, 1));
    T(accept(fd, NULL, NULL));
    T(close(fd));
    return 0;
}
