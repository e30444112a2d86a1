// connect, a round trip through the echo service, orderly close.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001);
    char reply[16] = { 0 };
    T(send(fd, "hello", 5, 0));
    T(recv(fd, reply, 5, MSG_WAITALL));
    T(memcmp(reply, "hello", 5));
    T(shutdown(fd, SHUT_WR));
    T(recv(fd, reply, sizeof reply, 0)); // the peer closes after our FIN: EOF
    T(close(fd));
    return 0;
}
