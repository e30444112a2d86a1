// splice with a netmp socket on one side and a pipe on the other, as proxies use it. The
// kernel cannot splice the placeholder that stands for it, so the bytes go through the thread's transfer buffer:
// one copy more than Linux's page moves. Out of a socket, the bytes are peeked, the pipe
// takes what fits (a full pipe waits, or says EAGAIN under SPLICE_F_NONBLOCK), and only
// that much is then taken from the socket, so nothing is lost. Into a socket that may not
// wait, only what its send buffer has room for is read from the pipe.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "netmp.h"
#include "shim.h"

static int is_pipe(int fd) {
    struct stat s;
    return fstat(fd, &s) == 0 && S_ISFIFO(s.st_mode);
}

// Room in a pipe now; with `wait`, waits until there is some.
static long pipe_room(int fd, int wait) {
    for (;;) {
        int size = fcntl(fd, F_GETPIPE_SZ), used = 0;
        if (size < 0 || ioctl(fd, FIONREAD, &used) < 0) return -1;
        if (size > used || !wait) return size - used;
        struct pollfd p = { fd, POLLOUT, 0 };
        if (poll(&p, 1, -1) < 0) return -1;
        if (p.revents & (POLLERR | POLLHUP)) return size - used; // the write reports it
    }
}

DEFINE_REAL(ssize_t, splice, int, loff_t *, int, loff_t *, size_t, unsigned int)

ssize_t splice(int in, loff_t *in_offset, int out, loff_t *out_offset, size_t length, unsigned int flags) {
    void *from = netmp_socket_of(in), *to = netmp_socket_of(out);
    if (!from && !to) {
        return REAL(splice)(in, in_offset, out, out_offset, length, flags);
    }
    // As Linux's do_splice: an offset on a socket (no pread/pwrite), two sockets, or no
    // pipe is EINVAL.
    if ((from && in_offset) || (to && out_offset) || (from && to)) { errno = EINVAL; return -1; }
    if (!is_pipe(from ? out : in)) { errno = EINVAL; return -1; }
    if (length == 0) return 0;
    char *buffer = netmp_transfer_buffer();
    if (!buffer) { errno = ENOMEM; return -1; }
    size_t n = length < NETMP_TRANSFER_BUFFER ? length : NETMP_TRANSFER_BUFFER;
    int nonblocking = (flags & SPLICE_F_NONBLOCK) != 0;
    if (from) {
        long room = pipe_room(out, !nonblocking && !(fcntl(out, F_GETFL) & O_NONBLOCK));
        if (room < 0) return -1;
        if (room == 0) { errno = EAGAIN; return -1; }
        if ((size_t)room < n) n = (size_t)room;
        ssize_t got = recv(in, buffer, n, MSG_PEEK | (nonblocking ? MSG_DONTWAIT : 0));
        if (got <= 0) return got;
        ssize_t put = write(out, buffer, (size_t)got);
        if (put <= 0) return put;
        recv(in, buffer, (size_t)put, MSG_DONTWAIT); // exactly what the pipe took
        return put;
    }
    if (nonblocking || netmp_is_nonblocking(to)) {
        int capacity = 0;
        socklen_t size = sizeof capacity;
        if (getsockopt(out, SOL_SOCKET, SO_SNDBUF, &capacity, &size) < 0) return -1;
        int queued = netmp_ioctl_count(to, 1); // SIOCOUTQ
        long room = (long)capacity - (queued > 0 ? queued : 0);
        if (room <= 0) { errno = EAGAIN; return -1; }
        if ((size_t)room < n) n = (size_t)room;
        if (nonblocking) {
            struct pollfd p = { in, POLLIN, 0 };
            if (poll(&p, 1, 0) == 0) { errno = EAGAIN; return -1; }
        }
    }
    ssize_t got = read(in, buffer, n);
    if (got <= 0) return got;
    return send(out, buffer, (size_t)got, nonblocking ? MSG_DONTWAIT : 0);
}
