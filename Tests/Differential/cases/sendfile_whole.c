// A blocking sendfile moves the whole count in one call, as Linux does (the file is far
// larger than any socket buffer); the peer counts what arrived. A non-blocking one moves
// what fits and leaves the offset after it.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    char path[] = "/tmp/netmp-sendfile-whole-XXXXXX";
    int file = mkstemp(path);
    unlink(path);
    static char content[1 << 20];
    for (int i = 0; i < (int)sizeof content; i++) content[i] = (char)(i % 253);
    for (int i = 0; i < 12; i++) if (write(file, content, sizeof content) < 0) return 1;
    int fd = connected(7002);
    off_t offset = 0;
    T(sendfile(fd, file, &offset, 3 << 20));
    note("offset", (long)offset);
    T(lseek(file, 0, SEEK_SET));
    T(sendfile(fd, file, NULL, 1000000));
    T(lseek(file, 0, SEEK_CUR));
    T(shutdown(fd, SHUT_WR));
    char answer[32] = { 0 };
    T(read_exactly(fd, answer, 8));
    note("peer counted", strtol(answer, NULL, 10));
    T(close(fd));

    // Non-blocking, to a peer that never reads: what fits, then EAGAIN; the offset moved by
    // exactly what was sent.
    int silent = connected(7005);
    T(fcntl(silent, F_SETFL, O_NONBLOCK));
    offset = 0;
    long total = 0, calls = 0;
    ssize_t n;
    while ((n = sendfile(silent, file, &offset, 1 << 20)) > 0 && calls < 1000) { total += n; calls++; }
    note("stopped with EAGAIN", n < 0 && errno == EAGAIN);
    note("offset is what was sent", offset == total);
    note("sent something", total > 0);
    T(close(silent));
    T(close(file));
    return 0;
}
