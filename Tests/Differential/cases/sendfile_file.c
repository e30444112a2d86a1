// sendfile from a file to a socket, with and without an offset; the echo brings it back.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    char path[] = "/tmp/netmp-sendfile-XXXXXX";
    int file = mkstemp(path);
    unlink(path);
    static char content[200000];
    for (int i = 0; i < (int)sizeof content; i++) content[i] = (char)(i % 253);
    T(write(file, content, sizeof content));
    int fd = connected(7001);
    off_t offset = 100;
    long sent = 0;
    while (sent < 1000) { ssize_t n = sendfile(fd, file, &offset, 1000 - sent); if (n <= 0) break; sent += n; }
    note("sent with offset", sent);
    note("offset", (long)offset);
    T(lseek(file, 0, SEEK_SET));
    sent = 0;
    while (sent < 150000) { ssize_t n = sendfile(fd, file, NULL, 150000 - sent); if (n <= 0) break; sent += n; }
    note("sent from the position", sent);
    T(lseek(file, 0, SEEK_CUR));
    static char back[151000];
    T(read_exactly(fd, back, 151000));
    note("first part right", memcmp(back, content + 100, 1000) == 0);
    note("second part right", memcmp(back + 1000, content, 150000) == 0);
    T(sendfile(file, fd, NULL, 10));
    T(close(fd));
    T(close(file));
    return 0;
}
