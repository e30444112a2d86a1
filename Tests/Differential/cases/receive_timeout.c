// SO_RCVTIMEO and SO_SNDTIMEO read back; a blocking recv gives EAGAIN after the timeout.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7005);
    struct timeval timeout = { 0, 200000 }, back = { 0, 0 }; // whole jiffies at any HZ
    socklen_t length = sizeof back;
    T(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout));
    T(getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &back, &length));
    note("tv_usec", back.tv_usec);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    char byte;
    T(recv(fd, &byte, 1, 0));
    clock_gettime(CLOCK_MONOTONIC, &end);
    long ms = (end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
    note("waited at least 190 ms", ms >= 190);
    timeout.tv_usec = -1;
    T(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout));
    T(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, 3));
    T(close(fd));
    return 0;
}
