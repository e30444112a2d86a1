// shutdown(SHUT_WR) after 100000 bytes: the peer sees EOF and still answers.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7002);
    static char block[100000];
    memset(block, 'x', sizeof block);
    long sent = 0;
    while (sent < (long)sizeof block) {
        ssize_t n = send(fd, block + sent, sizeof block - (size_t)sent, 0);
        if (n <= 0) break;
        sent += n;
    }
    note("sent", sent);
    T(shutdown(fd, SHUT_WR));
    T(send(fd, "x", 1, MSG_NOSIGNAL)); // EPIPE after SHUT_WR
    char reply[32] = { 0 };
    T(read_exactly(fd, reply, 7));
    printf("reply: %s", reply);
    T(recv(fd, reply, sizeof reply, 0));
    T(close(fd));
    return 0;
}
