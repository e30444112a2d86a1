// listen and accept: the peer dials back to our port, we answer, it reports what it got.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int listener = FD(socket(FAMILY, SOCK_STREAM, 0));
    int on = 1;
    T(setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
    address any = wildcard(7100);
    T(bind(listener, &any.sa, ADDRLEN));
    T(listen(listener, 8));
    int control = connected(7007);
    T(send(control, "7100\n", 5, 0));
    address from;
    socklen_t length = sizeof from;
    int fd = FD(accept(listener, (struct sockaddr *)&from, &length));
    note("address length", length);
    char bytes[16] = { 0 };
    T(recv(fd, bytes, 5, MSG_WAITALL));
    printf("got: %s", bytes);
    T(recv(fd, bytes, 1, 0)); // the peer shut down its side
    T(send(fd, "pong!\n", 6, 0));
    T(close(fd));
    memset(bytes, 0, sizeof bytes);
    T(read_exactly(control, bytes, 6));
    printf("peer: %s", bytes);
    T(close(control));
    T(close(listener));
    return 0;
}
