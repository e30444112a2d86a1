// What every differential case shares: each call it makes is printed as one line, its
// source text, its result and errno's name, so that the run on kernel sockets and the run
// on netmp can be compared line by line. Nothing printed may depend on addresses, ports
// or timing. argv[1] is the peer's address (Tests/Differential/peer.py serves it).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *peer_address;

__attribute__((unused)) static long traced(const char *what, long result) {
    if (result < 0) printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else printf("%s = %ld\n", what, result);
    fflush(stdout);
    return result;
}

// T(call): runs the call and prints it; yields its result.
#define T(call) ({ errno = 0; long t_result_ = (long)(call); traced(#call, t_result_); })

// FD(call): the same for calls that make a descriptor, whose number is not compared
// (netmp's own descriptors, opened before main, shift the numbers).
__attribute__((unused)) static long traced_descriptor(const char *what, long result) {
    if (result < 0) printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else printf("%s = fd\n", what);
    fflush(stdout);
    return result;
}
#define FD(call) ({ errno = 0; long t_result_ = (long)(call); traced_descriptor(#call, t_result_); })

// A fact the case computed (a byte count, an event mask), printed as is.
__attribute__((unused)) static void note(const char *what, long value) {
    printf("%s: %ld\n", what, value);
    fflush(stdout);
}

__attribute__((unused)) static struct sockaddr_in peer(int port) {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, peer_address, &a.sin_addr);
    return a;
}

// A blocking TCP connection to the peer's `port` (the steps are traced).
__attribute__((unused)) static int connected(int port) {
    int fd = FD(socket(AF_INET, SOCK_STREAM, 0));
    struct sockaddr_in a = peer(port);
    T(connect(fd, (struct sockaddr *)&a, sizeof a));
    return fd;
}

// Reads exactly `count` bytes (or to EOF/error); returns how many came.
__attribute__((unused)) static long read_exactly(int fd, void *bytes, long count) {
    long got = 0;
    while (got < count) {
        ssize_t n = read(fd, (char *)bytes + got, (size_t)(count - got));
        if (n <= 0) break;
        got += n;
    }
    return got;
}

// Waits (untraced, 5 s at most) until `count` bytes are readable on fd: however the
// stack segmented them, the traced call after it sees them all.
__attribute__((unused)) static void wait_readable(int fd, int count) {
    int readable = 0;
    for (int i = 0; i < 5000; i++) {
        if (ioctl(fd, FIONREAD, &readable) == 0 && readable >= count) return;
        usleep(1000);
    }
}

static void begin(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s PEER-ADDRESS\n", argv[0]); exit(2); }
    peer_address = argv[1];
    // A clean signal mask: the test runner's threads block signals, and exec keeps the mask.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_IGN);
    alarm(20); // a hung case fails instead of hanging the suite
}
