// TCP_INFO: the state Linux reports before, during and after a connection.
#include "../trace.h"
static void state(int fd, const char *when) {
    struct tcp_info info;
    socklen_t length = sizeof info;
    memset(&info, 0, sizeof info);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) < 0) printf("%s: -1 %s\n", when, strerrorname_np(errno));
    else printf("%s: state %u\n", when, info.tcpi_state);
}
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = FD(socket(FAMILY, SOCK_STREAM, 0));
    state(fd, "fresh");
    address a = peer(7001);
    T(connect(fd, &a.sa, ADDRLEN));
    state(fd, "connected");
    T(shutdown(fd, SHUT_WR));
    char byte;
    T(recv(fd, &byte, 1, 0));
    usleep(100000);
    state(fd, "both closed");
    T(close(fd));
    int udp = FD(socket(FAMILY, SOCK_DGRAM, 0));
    state(udp, "udp");
    T(close(udp));
    return 0;
}
