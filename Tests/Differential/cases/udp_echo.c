// UDP: sendto/recvfrom, then a connected socket with send/recv, MSG_TRUNC, EDESTADDRREQ.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = FD(socket(AF_INET, SOCK_DGRAM, 0));
    struct sockaddr_in a = peer(7010);
    char bytes[64] = { 0 };
    T(send(fd, "x", 1, 0));
    T(sendto(fd, "datagram", 8, 0, (struct sockaddr *)&a, sizeof a));
    struct pollfd p = { fd, POLLIN, 0 };
    T(poll(&p, 1, 5000));
    struct sockaddr_in from;
    socklen_t length = sizeof from;
    T(recvfrom(fd, bytes, sizeof bytes, 0, (struct sockaddr *)&from, &length));
    note("from the peer's port", ntohs(from.sin_port) == 7010);
    T(connect(fd, (struct sockaddr *)&a, sizeof a));
    T(send(fd, "0123456789", 10, 0));
    T(poll(&p, 1, 5000));
    T(recv(fd, bytes, 4, MSG_TRUNC)); // the rest of the datagram is dropped; TRUNC gives its length
    T(recv(fd, bytes, sizeof bytes, MSG_DONTWAIT));
    T(close(fd));
    return 0;
}
