// SO_REUSEPORT: sockets that all set it share a port; one that did not is refused; the
// connections the peer dials back are spread over the listeners (each takes some of 16),
// and once one closes the other takes them all. (Whether the port is free after the
// last depends on TIME-WAIT's hold on it, another case's business.)
#include "../trace.h"
static int reusing(int on) {
    int fd = FD(socket(FAMILY, SOCK_STREAM, 0));
    T(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on));
    return fd;
}
// The peer dials back to port 7200 `count` times; returns how many each listener took.
static void dial_back(int count, int *listeners, int n, int *taken) {
    for (int i = 0; i < count; i++) {
        int control = socket(FAMILY, SOCK_STREAM, 0);
        address a = peer(7007);
        if (connect(control, &a.sa, ADDRLEN) < 0) { printf("connect to the dial-back peer failed\n"); return; }
        if (send(control, "7200\n", 5, 0) != 5) return;
        struct pollfd p[2];
        for (int j = 0; j < n; j++) p[j] = (struct pollfd){ listeners[j], POLLIN, 0 };
        if (poll(p, n, 5000) <= 0) { printf("no connection came\n"); return; }
        for (int j = 0; j < n; j++) {
            if (!(p[j].revents & POLLIN)) continue;
            int fd = accept(listeners[j], NULL, NULL);
            if (fd < 0) continue;
            taken[j]++;
            char bytes[8];
            read_exactly(fd, bytes, 5);
            close(fd);
            break;
        }
        char reply[16];
        read_exactly(control, reply, 6);
        close(control);
    }
}
int main(int argc, char **argv) {
    begin(argc, argv);
    address port = wildcard(7200);
    int first = reusing(1), second = reusing(1);
    T(bind(first, &port.sa, ADDRLEN));
    T(bind(second, &port.sa, ADDRLEN));
    int plain = reusing(0);
    T(bind(plain, &port.sa, ADDRLEN)); // did not set it: refused
    T(close(plain));
    T(listen(first, 16));
    T(listen(second, 16));
    int listeners[2] = { first, second }, taken[2] = { 0, 0 };
    dial_back(16, listeners, 2, taken);
    note("connections taken", taken[0] + taken[1]);
    note("both listeners took some", taken[0] > 0 && taken[1] > 0);
    T(close(first));
    int after[1] = { 0 };
    dial_back(4, &second, 1, after);
    note("the remaining listener took", after[0]);
    T(close(second));
    return 0;
}
