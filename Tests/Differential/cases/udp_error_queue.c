// IP_RECVERR (IPV6_RECVERR in an IPv6 run), as QUIC and DNS servers and ping-like programs
// use it: without it an unconnected socket hears nothing of a port unreachable; with it the
// error is the socket's next one and a record of its error queue. recvmsg(MSG_ERRQUEUE)
// returns the datagram's payload, its destination as the name, one control message
// (sock_extended_err and the offender) and MSG_ERRQUEUE; POLLERR while one waits; reading
// one makes the next one's errno pending; a short buffer is MSG_TRUNC; turning the option
// off empties the queue; the queue never blocks. The peer has no socket on port 7099.
#include "../trace.h"
#include <linux/errqueue.h>

static address closed_port;

static void show_poll(int fd) {
    struct pollfd p = { fd, POLLIN | POLLOUT, 0 };
    poll(&p, 1, 0);
    printf("poll:%s%s%s\n", p.revents & POLLIN ? " POLLIN" : "", p.revents & POLLOUT ? " POLLOUT" : "",
           p.revents & POLLERR ? " POLLERR" : "");
    fflush(stdout);
}

static void read_error(int fd, size_t room) {
    char bytes[64] = { 0 };
    union { char buffer[256]; struct cmsghdr align; } control;
    address from;
    memset(&from, 0, sizeof from);
    struct iovec iov = { bytes, room };
    struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = control.buffer, .msg_controllen = sizeof control.buffer };
    long r = T(recvmsg(fd, &m, MSG_ERRQUEUE));
    if (r < 0) return;
    printf("payload '%.*s', flags%s%s%s, name is the destination %d\n", (int)r, bytes,
           m.msg_flags & MSG_ERRQUEUE ? " MSG_ERRQUEUE" : "", m.msg_flags & MSG_TRUNC ? " MSG_TRUNC" : "",
           m.msg_flags & MSG_CTRUNC ? " MSG_CTRUNC" : "",
           m.msg_namelen == ADDRLEN && port_of(&from) == 7099 && (FAMILY == AF_INET6
               ? memcmp(&from.in6.sin6_addr, &closed_port.in6.sin6_addr, 16) == 0
               : from.in.sin_addr.s_addr == closed_port.in.sin_addr.s_addr));
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        struct sock_extended_err ee;
        memcpy(&ee, CMSG_DATA(c), sizeof ee);
        address offender;
        memcpy(&offender, CMSG_DATA(c) + sizeof ee, FAMILY == AF_INET6 ? sizeof offender.in6 : sizeof offender.in);
        int from_peer = FAMILY == AF_INET6 ? offender.in6.sin6_family == AF_INET6
                                                 && memcmp(&offender.in6.sin6_addr, &closed_port.in6.sin6_addr, 16) == 0
                                           : offender.in.sin_family == AF_INET && offender.in.sin_addr.s_addr == closed_port.in.sin_addr.s_addr;
        printf("cmsg level %d type %d len %zu: errno %s origin %u type %u code %u info %u data %u, offender the peer %d\n",
               c->cmsg_level, c->cmsg_type, (size_t)c->cmsg_len, strerrorname_np((int)ee.ee_errno), ee.ee_origin,
               ee.ee_type, ee.ee_code, ee.ee_info, ee.ee_data, from_peer);
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    begin(argc, argv);
    closed_port = peer(7099);
    char bytes[64];

    // Without the option, an unconnected socket hears nothing.
    int fd = FD(socket(FAMILY, SOCK_DGRAM, 0));
    T(sendto(fd, "lost", 4, 0, &closed_port.sa, ADDRLEN));
    usleep(300000);
    T(recv(fd, bytes, sizeof bytes, MSG_DONTWAIT));
    read_error(fd, sizeof bytes);
    show_poll(fd);
    pending(fd);

    // With it: the error is pending and queued.
    int on = 5, value = -1;
    socklen_t length = sizeof value;
    T(setsockopt(fd, ip_level(), errors_name(), &on, sizeof on));
    T(getsockopt(fd, ip_level(), errors_name(), &value, &length));
    note("the option reads", value);
    T(sendto(fd, "hello", 5, 0, &closed_port.sa, ADDRLEN));
    wait_error(fd);
    show_poll(fd);
    T(recv(fd, bytes, sizeof bytes, MSG_DONTWAIT));
    show_poll(fd);
    read_error(fd, sizeof bytes);
    show_poll(fd);
    pending(fd);
    read_error(fd, sizeof bytes);

    // Three errors: each pending in turn (a send or receive reports it and clears it, as
    // Linux's sock_error); reading one from the queue makes the next pending; a short
    // buffer truncates; turning the option off empties the queue.
    for (int i = 0; i < 3; i++) {
        T(sendto(fd, "again", 5, 0, &closed_port.sa, ADDRLEN));
        wait_error(fd);
        usleep(100000);
        T(recv(fd, bytes, sizeof bytes, MSG_DONTWAIT));
    }
    read_error(fd, sizeof bytes);
    pending(fd);
    read_error(fd, 2);
    on = 0;
    T(setsockopt(fd, ip_level(), errors_name(), &on, sizeof on));
    read_error(fd, sizeof bytes);
    show_poll(fd);
    T(close(fd));

    // A TCP socket's queue is empty.
    int tcp = connected(7001);
    on = 1;
    T(setsockopt(tcp, ip_level(), errors_name(), &on, sizeof on));
    read_error(tcp, sizeof bytes);
    T(close(tcp));
    return 0;
}
