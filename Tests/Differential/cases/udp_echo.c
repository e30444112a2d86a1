// UDP: sendto/recvfrom, then a connected socket with send/recv, MSG_TRUNC, EDESTADDRREQ.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = FD(socket(FAMILY, SOCK_DGRAM, 0));
    address a = peer(7010);
    char bytes[64] = { 0 };
    T(send(fd, "x", 1, 0));
    T(sendto(fd, "datagram", 8, 0, &a.sa, ADDRLEN));
    struct pollfd p = { fd, POLLIN, 0 };
    T(poll(&p, 1, 5000));
    address from;
    socklen_t length = sizeof from;
    T(recvfrom(fd, bytes, sizeof bytes, 0, (struct sockaddr *)&from, &length));
    note("from the peer's port", port_of(&from) == 7010);
    T(connect(fd, &a.sa, ADDRLEN));
    T(send(fd, "0123456789", 10, 0));
    T(poll(&p, 1, 5000));
    T(recv(fd, bytes, 4, MSG_TRUNC)); // the rest of the datagram is dropped; TRUNC gives its length
    T(recv(fd, bytes, sizeof bytes, MSG_DONTWAIT));
    T(close(fd));
    return 0;
}
