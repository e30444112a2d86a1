// Three connections wait in the backlog; accept takes each in turn.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int listener = FD(socket(FAMILY, SOCK_STREAM, 0));
    int on = 1;
    T(setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
    address any = wildcard(7102);
    T(bind(listener, &any.sa, ADDRLEN));
    T(listen(listener, 8));
    int controls[3];
    for (int i = 0; i < 3; i++) {
        controls[i] = connected(7007);
        T(send(controls[i], "7102\n", 5, 0));
    }
    char bytes[16];
    for (int i = 0; i < 3; i++) {
        int fd = FD(accept(listener, NULL, NULL));
        T(recv(fd, bytes, 5, MSG_WAITALL));
        T(close(fd));
    }
    for (int i = 0; i < 3; i++) {
        T(read_exactly(controls[i], bytes, 6));
        T(close(controls[i]));
    }
    T(close(listener));
    return 0;
}
