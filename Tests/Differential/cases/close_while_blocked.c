// Another thread closes a socket while this one is blocked reading it: no crash, and the
// read ends with end of file (Linux when the silent peer closes, netmp at the close).
#include "../trace.h"
#include <pthread.h>
static int fd;
static long result = -2;
static void *reader(void *unused) {
    (void)unused;
    char byte;
    result = recv(fd, &byte, 1, 0);
    return NULL;
}
int main(int argc, char **argv) {
    begin(argc, argv);
    fd = connected(7005);
    pthread_t thread;
    T(pthread_create(&thread, NULL, reader, NULL));
    usleep(100000);
    T(close(fd));
    T(pthread_join(thread, NULL));
    note("recv in the other thread", result);
    return 0;
}
