// What every differential case shares: each call it makes is printed as one line, its
// source text, its result and errno's name, so that the run on kernel sockets and the run
// on netmp can be compared line by line. Nothing printed may depend on addresses, ports
// or timing. argv[1] is the peer's address (Tests/Differential/peer.py serves it), IPv4
// or IPv6: the case runs in that family.
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

// The family of the run: IPv6 when the peer's address is (every case runs over both).
static int family = AF_INET;
#define FAMILY family
// An address of either family; ADDRLEN is the family's sockaddr size, which calls pass
// (the traces print the source text, so both families' runs print the same calls).
typedef union { struct sockaddr sa; struct sockaddr_in in; struct sockaddr_in6 in6; } address;
#define ADDRLEN ((socklen_t)(family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)))

__attribute__((unused)) static address named(const char *text, int port) {
    address a;
    memset(&a, 0, sizeof a);
    a.sa.sa_family = (sa_family_t)family;
    if (family == AF_INET6) { a.in6.sin6_port = htons(port); inet_pton(AF_INET6, text, &a.in6.sin6_addr); }
    else { a.in.sin_port = htons(port); inet_pton(AF_INET, text, &a.in.sin_addr); }
    return a;
}
// The peer's `port`; the wildcard address; an address no host here holds.
__attribute__((unused)) static address peer(int port) { return named(peer_address, port); }
__attribute__((unused)) static address wildcard(int port) { return named(family == AF_INET6 ? "::" : "0.0.0.0", port); }
__attribute__((unused)) static address foreign_address(int port) { return named(family == AF_INET6 ? "fd99::99" : "10.99.99.99", port); }
__attribute__((unused)) static int port_of(const address *a) { return ntohs(a->sa.sa_family == AF_INET6 ? a->in6.sin6_port : a->in.sin_port); }
// The run's IP level (IPPROTO_IP, IPPROTO_IPV6 in an IPv6 run), and IP_RECVERR's name at it.
__attribute__((unused)) static int ip_level(void) { return family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP; }
__attribute__((unused)) static int errors_name(void) { return family == AF_INET6 ? IPV6_RECVERR : IP_RECVERR; }
// The socket's pending error (SO_ERROR, which reading clears), by name.
__attribute__((unused)) static void pending(int fd) {
    int error = -1;
    socklen_t length = sizeof error;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    printf("SO_ERROR %s\n", error ? strerrorname_np(error) : "0");
    fflush(stdout);
}
// Waits (untraced, 3 s at most) until poll reports an error on fd.
__attribute__((unused)) static void wait_error(int fd) {
    struct pollfd p = { fd, 0, 0 };
    for (int i = 0; i < 300 && !(p.revents & POLLERR); i++) { poll(&p, 1, 10); }
}
__attribute__((unused)) static void set_port(address *a, int port) {
    if (a->sa.sa_family == AF_INET6) a->in6.sin6_port = htons(port); else a->in.sin_port = htons(port);
}
__attribute__((unused)) static int is_wildcard(const address *a) {
    static const struct in6_addr any6;
    return a->sa.sa_family == AF_INET6 ? memcmp(&a->in6.sin6_addr, &any6, 16) == 0 : a->in.sin_addr.s_addr == 0;
}

// A blocking TCP connection to the peer's `port` (the steps are traced).
__attribute__((unused)) static int connected(int port) {
    int fd = FD(socket(FAMILY, SOCK_STREAM, 0));
    address a = peer(port);
    T(connect(fd, &a.sa, ADDRLEN));
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
    if (strchr(peer_address, ':')) family = AF_INET6;
    // A clean signal mask: the test runner's threads block signals, and exec keeps the mask.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_IGN);
    alarm(20); // a hung case fails instead of hanging the suite
}
