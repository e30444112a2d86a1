// Another thread closes a socket while this one sleeps in poll() on it, round after round
// at varied moments: no crash and no hang; poll ends at its timeout (Linux keeps the file
// while poll waits) or with what it saw; a poll on the closed number says POLLNVAL.
#include "../trace.h"
#include <pthread.h>

static int fd;
static int result;

static void *poller(void *unused) {
    (void)unused;
    struct pollfd p = { fd, POLLIN, 0 };
    result = poll(&p, 1, 30);
    return NULL;
}

int main(int argc, char **argv) {
    begin(argc, argv);
    int rounds = 60, returned = 0, sane = 0, invalid = 0;
    unsigned seed = 7;
    for (int i = 0; i < rounds; i++) {
        fd = socket(FAMILY, SOCK_STREAM, 0);
        address a = peer(7005); // accepts, never writes
        if (connect(fd, &a.sa, ADDRLEN) != 0) { printf("round %d: connect failed\n", i); return 1; }
        result = -2;
        pthread_t thread;
        pthread_create(&thread, NULL, poller, NULL);
        seed = seed * 1103515245u + 12345u;
        usleep((seed >> 16) % 15000);
        close(fd);
        pthread_join(thread, NULL);
        returned++;
        if (result == 0 || result == 1) sane++;
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 0) == 1 && (p.revents & POLLNVAL)) invalid++;
    }
    note("rounds", rounds);
    note("polls returned", returned);
    note("polls that returned 0 or 1", sane);
    note("closed descriptors polled as POLLNVAL", invalid);
    return 0;
}
