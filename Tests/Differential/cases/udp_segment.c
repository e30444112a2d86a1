// UDP_SEGMENT (UDP GSO, as QUIC servers send): one send becomes datagrams of the segment
// size, the last one shorter, whether the size comes from setsockopt or from a control
// message (which wins, 0 included). Linux's rules: the option is an int from 0 to 65,535
// (a TCP socket has no such option); a control message's value is a u16 of exactly that
// length; a segment (or a send no longer than one) must fit the MTU whatever the DF mode;
// a send makes 128 datagrams at most. The peer (7010) returns every datagram, so the sizes
// it got come back.
#include "../trace.h"
#include <netinet/udp.h>

static char big[70000];
static int fd;

// Receives what the peer sent back (untraced waits: 2 s at most for each, then 100 ms
// for anything more) and prints the sizes, runs of one size folded.
static void echoes(int expected) {
    char buffer[2048];
    int last = -1, run = 0, total = 0;
    printf("echoes:");
    for (int i = 0; i < expected + 1; i++) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, i < expected ? 2000 : 100) <= 0) break;
        long r = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (r < 0) break;
        total++;
        if (r == last) { run++; continue; }
        if (run) printf(" %d x%d", last, run);
        last = (int)r;
        run = 1;
    }
    if (run) printf(" %d x%d", last, run);
    printf(" (%d)\n", total);
    fflush(stdout);
}

static long send_segmented(size_t length, int segment, size_t data_length) {
    struct iovec iov = { big, length };
    union { char buffer[CMSG_SPACE(8)]; struct cmsghdr align; } control;
    memset(&control, 0, sizeof control);
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buffer,
                        .msg_controllen = CMSG_SPACE(data_length) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(data_length);
    uint16_t size = (uint16_t)segment;
    memcpy(CMSG_DATA(c), &size, sizeof size);
    return sendmsg(fd, &m, 0);
}

int main(int argc, char **argv) {
    begin(argc, argv);
    address echo = peer(7010);
    fd = FD(socket(FAMILY, SOCK_DGRAM, 0));
    T(connect(fd, &echo.sa, ADDRLEN));
    int value = -1;
    socklen_t length = sizeof value;
    T(getsockopt(fd, SOL_UDP, UDP_SEGMENT, &value, &length));
    note("the option reads", value);
    value = -1;
    T(setsockopt(fd, SOL_UDP, UDP_SEGMENT, &value, sizeof value));
    value = 65536;
    T(setsockopt(fd, SOL_UDP, UDP_SEGMENT, &value, sizeof value));
    value = 1000;
    T(setsockopt(fd, SOL_UDP, UDP_SEGMENT, &value, 2));
    T(setsockopt(fd, SOL_UDP, UDP_SEGMENT, &value, sizeof value));
    value = -1;
    length = 2;
    T(getsockopt(fd, SOL_UDP, UDP_SEGMENT, &value, &length));
    note("two bytes of it read", value & 0xffff);
    note("the length", length);
    T(setsockopt(fd, SOL_UDP, 99, &value, sizeof value));
    int tcp = FD(socket(FAMILY, SOCK_STREAM, 0));
    value = 1000;
    T(setsockopt(tcp, SOL_UDP, UDP_SEGMENT, &value, sizeof value));
    T(close(tcp));

    // The socket's size: cut into 1000-byte datagrams; a send no longer than one is one.
    T(send(fd, big, 3500, 0));
    echoes(4);
    T(send(fd, big, 800, 0));
    echoes(1);
    T(write(fd, big, 2000));
    echoes(2);

    // A control message's size wins; 0 sends whole; a wrong length is EINVAL.
    T(send_segmented(1200, 500, sizeof(uint16_t)));
    echoes(3);
    T(send_segmented(3000, 0, sizeof(uint16_t)));
    echoes(1);
    T(send_segmented(1200, 500, sizeof(int)));

    // A segment must fit the MTU (1500 less the headers); a send is 128 datagrams at most.
    int fits = FAMILY == AF_INET6 ? 1452 : 1472;
    T(send_segmented(3000, fits, sizeof(uint16_t)));
    echoes(3);
    T(send_segmented(3000, fits + 1, sizeof(uint16_t)));
    T(send_segmented(12800, 100, sizeof(uint16_t)));
    echoes(128);
    T(send_segmented(12801, 100, sizeof(uint16_t)));
    T(send_segmented(0, 100, sizeof(uint16_t)));
    echoes(1);

    // With a segment size set, even a send no longer than one segment is not fragmented;
    // DF does not refuse a send to be segmented.
    value = 2000;
    T(setsockopt(fd, SOL_UDP, UDP_SEGMENT, &value, sizeof value));
    T(send(fd, big, 1600, 0));
    T(send(fd, big, 1400, 0));
    echoes(1);
    int mode = IP_PMTUDISC_DO; // IPV6_PMTUDISC_DO is 2 as well
    T(setsockopt(fd, FAMILY == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP, FAMILY == AF_INET6 ? IPV6_MTU_DISCOVER : IP_MTU_DISCOVER,
                 &mode, sizeof mode));
    T(send_segmented(3000, 1000, sizeof(uint16_t)));
    echoes(3);
    T(close(fd));
    return 0;
}
