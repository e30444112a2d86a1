// The queue ioctls programs use: SIOCINQ, SIOCOUTQ, SIOCOUTQNSD and SIOCATMARK on a
// listener (EINVAL but for the mark), a connection and a UDP socket; FIOCLEX and FIONCLEX
// set and clear close-on-exec as fcntl does.
#include <linux/sockios.h>
#include "../trace.h"
static void queues(const char *what, int fd) {
    int n = -1;
    printf("%s:\n", what);
    if (T(ioctl(fd, SIOCINQ, &n)) == 0) note("SIOCINQ", n);
    n = -1;
    if (T(ioctl(fd, SIOCOUTQ, &n)) == 0) note("SIOCOUTQ", n);
    n = -1;
    if (T(ioctl(fd, SIOCOUTQNSD, &n)) == 0) note("SIOCOUTQNSD", n);
    n = -1;
    if (T(ioctl(fd, SIOCATMARK, &n)) == 0) note("SIOCATMARK", n);
}
int main(int argc, char **argv) {
    begin(argc, argv);
    int listener = FD(socket(FAMILY, SOCK_STREAM, 0));
    address any = wildcard(0);
    T(bind(listener, &any.sa, ADDRLEN));
    T(listen(listener, 4));
    queues("listener", listener);
    T(close(listener));

    int fresh = FD(socket(FAMILY, SOCK_STREAM, 0));
    queues("unconnected", fresh);
    T(close(fresh));

    int fd = connected(7001);
    T(send(fd, "0123456789", 10, 0));
    wait_readable(fd, 10);
    usleep(100000); // the echo's ACK of our bytes has come with them; let any last ACK land
    queues("connection with 10 bytes to read", fd);
    char bytes[16];
    T(recv(fd, bytes, sizeof bytes, 0));
    queues("connection drained", fd);
    T(ioctl(fd, FIOCLEX));
    note("FD_CLOEXEC", (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    T(ioctl(fd, FIONCLEX));
    note("FD_CLOEXEC", (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    T(close(fd));

    int udp = FD(socket(FAMILY, SOCK_DGRAM, 0));
    queues("udp, nothing queued", udp);
    T(close(udp));
    return 0;
}
