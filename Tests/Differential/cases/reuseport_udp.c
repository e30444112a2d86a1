// SO_REUSEPORT on UDP sockets: all that set it share a port, one that did not is refused;
// the echo's replies, one flow, all go to one of them, and to the other once that one is
// closed.
#include "../trace.h"
static int udp_reusing(int on) {
    int fd = FD(socket(FAMILY, SOCK_DGRAM, 0));
    T(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on));
    return fd;
}
// Sends `count` datagrams to the echo from `from`; returns how many replies each socket got.
static void exchange(int from, int *sockets, int n, int count, int *got) {
    address a = peer(7010);
    for (int i = 0; i < count; i++) {
        if (sendto(from, "ping", 4, 0, &a.sa, ADDRLEN) != 4) return;
        struct pollfd p[2];
        for (int j = 0; j < n; j++) p[j] = (struct pollfd){ sockets[j], POLLIN, 0 };
        if (poll(p, n, 5000) <= 0) { printf("no reply\n"); return; }
        for (int j = 0; j < n; j++) {
            char bytes[8];
            if ((p[j].revents & POLLIN) && recv(sockets[j], bytes, sizeof bytes, MSG_DONTWAIT) == 4) got[j]++;
        }
    }
}
int main(int argc, char **argv) {
    begin(argc, argv);
    address port = wildcard(7201);
    int first = udp_reusing(1), second = udp_reusing(1);
    T(bind(first, &port.sa, ADDRLEN));
    T(bind(second, &port.sa, ADDRLEN));
    int plain = udp_reusing(0);
    T(bind(plain, &port.sa, ADDRLEN));
    T(close(plain));
    int both[2] = { first, second }, got[2] = { 0, 0 };
    exchange(first, both, 2, 8, got);
    note("replies", got[0] + got[1]);
    note("one socket took the flow", got[0] == 8 || got[1] == 8);
    int taker = got[0] == 8 ? 0 : 1;
    int rest = both[1 - taker];
    T(close(both[taker]));
    int after[1] = { 0 };
    exchange(rest, &rest, 1, 4, after);
    note("the other took them after", after[0]);
    T(close(rest));
    return 0;
}
