// dup, dup2, F_DUPFD_CLOEXEC: every copy works and the socket lives until the last closes;
// O_NONBLOCK through fcntl.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001);
    int copy = (int)FD(dup(fd));
    T(close(copy));
    copy = (int)FD(dup(fd));
    T(close(fd));
    char bytes[8];
    T(send(copy, "abc", 3, 0));
    T(recv(copy, bytes, 3, MSG_WAITALL));
    // The lowest free number at or above 100: not always 100 itself, as a descriptor the
    // process inherited may hold it.
    int high = (int)FD(fcntl(copy, F_DUPFD_CLOEXEC, 100));
    note("F_DUPFD_CLOEXEC at or above 100", high >= 100);
    T(fcntl(high, F_GETFD));
    T(dup2(copy, 101) == 101);
    T(fcntl(copy, F_SETFL, O_NONBLOCK));
    T(fcntl(101, F_GETFL) & O_NONBLOCK ? 1 : 0);
    T(recv(101, bytes, 1, 0));
    T(send(high, "d", 1, 0));
    T(close(copy));
    T(close(101));
    struct pollfd p = { high, POLLIN, 0 };
    T(poll(&p, 1, 5000));
    T(recv(high, bytes, 1, 0));
    T(close(high));
    return 0;
}
