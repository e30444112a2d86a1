// FIONBIO and O_NONBLOCK are the same flag; FIONREAD counts what is readable.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001);
    int on = 1;
    T(ioctl(fd, FIONBIO, &on));
    note("O_NONBLOCK", (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    char bytes[16];
    T(recv(fd, bytes, sizeof bytes, 0));
    T(send(fd, "0123456789", 10, 0));
    wait_readable(fd, 10);
    int n = -1;
    T(ioctl(fd, FIONREAD, &n));
    note("FIONREAD", n);
    on = 0;
    T(ioctl(fd, FIONBIO, &on));
    note("O_NONBLOCK", (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    T(recv(fd, bytes, sizeof bytes, 0));
    T(ioctl(fd, 0x1234, &n));
    T(close(fd));
    return 0;
}
