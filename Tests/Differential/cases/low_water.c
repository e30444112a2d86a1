// SO_RCVLOWAT and TCP_NOTSENT_LOWAT in readiness and in the calls: below the receive mark
// a socket does not poll readable and a blocking recv waits for the mark (or its timeout,
// returning what it has); with TCP_NOTSENT_LOWAT a socket whose unsent bytes reach the
// mark stops polling writable and a non-blocking send stops there.
#include <linux/sockios.h>
#include "../trace.h"
static int poll_events(int fd, short events) {
    struct pollfd p = { fd, events, 0 };
    return poll(&p, 1, 200) > 0 ? p.revents : 0;
}
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001); // the echo
    int mark = 50;
    T(setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &mark, sizeof mark));
    T(send(fd, "0123456789", 10, 0));
    usleep(200000); // the echo's 10 bytes are back
    int readable = 0;
    T(ioctl(fd, FIONREAD, &readable));
    note("readable", readable);
    note("POLLIN below the mark", (poll_events(fd, POLLIN) & POLLIN) != 0);
    // A blocking recv waits for the mark; its timeout ends the wait with what came.
    struct timeval timeout = { 0, 300000 };
    T(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout));
    char bytes[2000];
    T(recv(fd, bytes, sizeof bytes, 0));
    // 60 more come back: past the mark, readable, and a recv returns once it has the mark.
    T(send(fd, "0123456789012345678901234567890123456789012345678901234567890", 60, 0));
    usleep(200000);
    note("POLLIN past the mark", (poll_events(fd, POLLIN) & POLLIN) != 0);
    T(recv(fd, bytes, sizeof bytes, 0));
    // A request for less than the mark returns when it has that much.
    T(send(fd, "abcdefghij", 10, 0));
    T(recv(fd, bytes, 5, 0));
    T(recv(fd, bytes, 5, 0));
    T(close(fd));

    // TCP_NOTSENT_LOWAT against a peer that never reads: once its window is full, what is
    // written waits unsent, and only the mark's worth is taken.
    int silent = connected(7005);
    T(fcntl(silent, F_SETFL, O_NONBLOCK));
    mark = 16384;
    T(setsockopt(silent, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &mark, sizeof mark));
    note("POLLOUT before writing", (poll_events(silent, POLLOUT) & POLLOUT) != 0);
    static char chunk[65536];
    // Write until EAGAIN, again after a pause, until the peer's window stays shut (it
    // grows for a while as data arrives): then what was taken last waits unsent for good.
    long total = 0;
    int rounds = 0, quiet = 0;
    ssize_t n = 0;
    while (rounds < 40 && quiet < 3) {
        long before = total;
        while ((n = send(silent, chunk, sizeof chunk, 0)) > 0) total += n;
        if (n < 0 && errno != EAGAIN) break;
        quiet = total == before ? quiet + 1 : 0;
        usleep(100000);
        rounds++;
    }
    note("the window shut", quiet == 3);
    note("took less than 8 MiB", total < 8 << 20);
    int unsent = -1;
    T(ioctl(silent, SIOCOUTQNSD, &unsent));
    note("unsent at the mark", unsent >= 1 && unsent <= 16384 + 65536);
    note("POLLOUT at the mark", (poll_events(silent, POLLOUT) & POLLOUT) != 0);
    T(close(silent));
    return 0;
}
