// splice between a socket and a pipe, both ways (proxies move data so): bytes written
// into a pipe are spliced to the echo, and what comes back is spliced from the socket
// into another pipe; the end of the stream splices 0; offsets and two sockets are refused.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001);
    int out[2], in[2];
    T(pipe(out));
    T(pipe(in));
    static char chunk[100000];
    for (int i = 0; i < (int)sizeof chunk; i++) chunk[i] = (char)(i % 247);
    long moved = 0, back = 0;
    static char got[100000];
    // In pieces the pipe can hold: write, splice to the socket, splice the echo back.
    while (moved < (long)sizeof chunk) {
        long n = sizeof chunk - moved < 16384 ? sizeof chunk - moved : 16384;
        if (write(out[1], chunk + moved, n) != n) break;
        long sent = 0;
        while (sent < n) {
            ssize_t r = splice(out[0], NULL, fd, NULL, n - sent, 0);
            if (r <= 0) { printf("splice to the socket: %zd %s\n", r, strerrorname_np(errno)); return 1; }
            sent += r;
        }
        moved += n;
        while (back < moved) {
            ssize_t r = splice(fd, NULL, in[1], NULL, moved - back, 0);
            if (r <= 0) { printf("splice from the socket: %zd %s\n", r, strerrorname_np(errno)); return 1; }
            if (read_exactly(in[0], got + back, r) != r) return 1;
            back += r;
        }
    }
    note("moved", moved);
    note("came back intact", back == moved && memcmp(got, chunk, sizeof chunk) == 0);
    loff_t offset = 0;
    T(splice(fd, &offset, in[1], NULL, 10, 0));
    int other = connected(7001);
    T(splice(fd, NULL, other, NULL, 10, 0));
    T(fcntl(fd, F_SETFL, O_NONBLOCK));
    T(splice(fd, NULL, in[1], NULL, 10, 0)); // nothing to read: EAGAIN
    T(shutdown(fd, SHUT_WR));
    T(fcntl(fd, F_SETFL, 0));
    T(splice(fd, NULL, in[1], NULL, 10, 0)); // the echo's end: 0
    T(close(fd));
    T(close(other));
    return 0;
}
