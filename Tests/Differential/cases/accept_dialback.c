// listen and accept: the peer dials back to our port, we answer, it reports what it got.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int listener = FD(socket(AF_INET, SOCK_STREAM, 0));
    int on = 1;
    T(setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
    struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons(7100) };
    T(bind(listener, (struct sockaddr *)&any, sizeof any));
    T(listen(listener, 8));
    int control = connected(7007);
    T(send(control, "7100\n", 5, 0));
    struct sockaddr_in from;
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
