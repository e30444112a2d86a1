// A peer that never reads: non-blocking sends fill the buffers and then get EAGAIN;
// poll says not writable; SIOCOUTQ is positive.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7005);
    T(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK));
    static char block[65536];
    long total = 0;
    ssize_t n;
    int rounds = 0;
    int ended_with_eagain = 0;
    // Fill until the peer's window is shut: data still in flight at the first EAGAIN is
    // acknowledged later and frees room, sooner or later depending on the stack. Done when
    // no room frees for 300 ms.
    for (int tries = 0; tries < 50; tries++) {
        while ((n = send(fd, block, sizeof block, 0)) > 0 && rounds++ < 100000) total += n;
        ended_with_eagain = n < 0 && errno == EAGAIN;
        struct pollfd room = { fd, POLLOUT, 0 };
        if (poll(&room, 1, 300) == 0) break;
    }
    note("filled some", total > 0);
    note("ended with EAGAIN", ended_with_eagain);
    struct pollfd p = { fd, POLLOUT, 0 };
    T(poll(&p, 1, 0));
    int queued = 0;
    T(ioctl(fd, TIOCOUTQ, &queued));
    note("queued > 0", queued > 0);
    struct linger linger = { 1, 0 };
    T(setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger));
    T(close(fd));
    return 0;
}
