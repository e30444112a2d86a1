// 1 MiB from the peer, every byte checked, then EOF.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7004);
    static unsigned char bytes[1 << 20];
    long got = read_exactly(fd, bytes, sizeof bytes);
    note("received", got);
    long wrong = 0;
    for (long i = 0; i < got; i++) wrong += bytes[i] != i % 251;
    note("wrong bytes", wrong);
    T(recv(fd, bytes, 1, 0));
    T(close(fd));
    return 0;
}
