// MSG_PEEK leaves the bytes; MSG_WAITALL waits for all of them; MSG_DONTWAIT on an empty
// socket is EAGAIN.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7006);
    char bytes[16] = { 0 };
    T(recv(fd, bytes, 6, MSG_PEEK | MSG_WAITALL));
    T(recv(fd, bytes, 3, MSG_PEEK));
    T(recv(fd, bytes, 3, 0));
    T(memcmp(bytes, "hel", 3));
    T(recv(fd, bytes, 3, MSG_WAITALL));
    T(memcmp(bytes, "lo\n", 3));
    T(recv(fd, bytes, sizeof bytes, MSG_DONTWAIT));
    int n = -1;
    T(ioctl(fd, FIONREAD, &n));
    note("FIONREAD", n);
    T(close(fd));
    return 0;
}
