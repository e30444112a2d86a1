// recvmmsg's timeout, which Linux checks after each datagram: a bad one is EINVAL, a zero
// one returns after the first datagram, a long one returns what is there (MSG_DONTWAIT)
// and writes back what is left of it.
#include "../trace.h"
static void echoed(int fd, int count) {
    for (int i = 0; i < count; i++) send(fd, "datagram", 8, 0);
    struct pollfd p = { fd, POLLIN, 0 };
    poll(&p, 1, 5000); // untraced: the first echo is in
}
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = FD(socket(FAMILY, SOCK_DGRAM, 0));
    address a = peer(7010);
    T(connect(fd, &a.sa, ADDRLEN));
    char buffers[8][16];
    struct iovec pieces[8];
    struct mmsghdr messages[8];
    memset(messages, 0, sizeof messages);
    for (int i = 0; i < 8; i++) {
        pieces[i] = (struct iovec){ buffers[i], sizeof buffers[i] };
        messages[i].msg_hdr.msg_iov = &pieces[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    struct timespec bad = { 0, -1 };
    T(recvmmsg(fd, messages, 8, MSG_DONTWAIT, &bad));
    echoed(fd, 3);
    struct timespec none = { 0, 0 };
    T(recvmmsg(fd, messages, 8, 0, &none));
    note("length", messages[0].msg_len);
    usleep(100000);
    struct timespec plenty = { 5, 0 };
    int got = recvmmsg(fd, messages, 8, MSG_DONTWAIT, &plenty); // however many echoes are in
    note("received some", got >= 1);
    note("time left, seconds >= 4", plenty.tv_sec >= 4);
    T(close(fd));
    return 0;
}
