// Twenty datagrams through the echo, paced; each comes back whole, in its own read.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = FD(socket(FAMILY, SOCK_DGRAM, 0));
    address a = peer(7010);
    T(connect(fd, &a.sa, ADDRLEN));
    int whole = 0;
    for (int i = 0; i < 20; i++) {
        char out[64], in[64];
        int length = snprintf(out, sizeof out, "datagram %d of 20", i);
        send(fd, out, (size_t)length, 0);
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 2000) != 1) continue;
        ssize_t n = recv(fd, in, sizeof in, 0);
        whole += n == length && memcmp(in, out, (size_t)length) == 0;
    }
    note("came back whole", whole);
    T(close(fd));
    return 0;
}
