// The libc symbols a program reaches sockets through, interposed (LD_PRELOAD). Each call on
// a netmp socket goes to the Swift stack through Include/netmp.h; every other call goes to
// the next definition (libc) found with dlsym(RTLD_NEXT).
//
// A netmp socket's descriptor is a real kernel descriptor: a placeholder (an epoll
// instance), made at socket() and mapped to the stack's handle in `sockets` below. Numbers
// never collide with the program's files, dup/close/exec behave, and poll/select can sleep
// on it: the stack rings an eventfd inside it (the socket's Doorbell) when readiness
// changes while someone polls. A program that reaches it without libc (a raw system call,
// io_uring) gets EINVAL from read and write and ENOTSOCK from socket calls.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <linux/sockios.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "netmp.h"
#include "netmp_linux.h"
#include "routes.h"

#include "shim.h"

// The descriptor table: fd -> stack handle (NULL: not a netmp socket).
_Atomic(void *) netmp_sockets[NETMP_DESCRIPTORS];
#define sockets netmp_sockets

// libc's definitions of the interposed symbols (shim.h: DEFINE_REAL).
DEFINE_REAL(int, socket, int, int, int)
DEFINE_REAL(int, close, int)
DEFINE_REAL(int, bind, int, const struct sockaddr *, socklen_t)
DEFINE_REAL(int, listen, int, int)
DEFINE_REAL(int, accept, int, struct sockaddr *, socklen_t *)
DEFINE_REAL(int, accept4, int, struct sockaddr *, socklen_t *, int)
DEFINE_REAL(int, connect, int, const struct sockaddr *, socklen_t)
DEFINE_REAL(int, getsockname, int, struct sockaddr *, socklen_t *)
DEFINE_REAL(int, getpeername, int, struct sockaddr *, socklen_t *)
DEFINE_REAL(int, getsockopt, int, int, int, void *, socklen_t *)
DEFINE_REAL(int, setsockopt, int, int, int, const void *, socklen_t)
DEFINE_REAL(int, shutdown, int, int)
DEFINE_REAL(ssize_t, read, int, void *, size_t)
DEFINE_REAL(ssize_t, write, int, const void *, size_t)
DEFINE_REAL(ssize_t, readv, int, const struct iovec *, int)
DEFINE_REAL(ssize_t, writev, int, const struct iovec *, int)
DEFINE_REAL(ssize_t, pread, int, void *, size_t, off_t)
DEFINE_REAL(off_t, lseek, int, off_t, int)
DEFINE_REAL(off64_t, lseek64, int, off64_t, int)
DEFINE_REAL(ssize_t, pwrite, int, const void *, size_t, off_t)
DEFINE_REAL(ssize_t, recv, int, void *, size_t, int)
DEFINE_REAL(ssize_t, send, int, const void *, size_t, int)
DEFINE_REAL(ssize_t, recvfrom, int, void *, size_t, int, struct sockaddr *, socklen_t *)
DEFINE_REAL(ssize_t, sendto, int, const void *, size_t, int, const struct sockaddr *, socklen_t)
DEFINE_REAL(ssize_t, recvmsg, int, struct msghdr *, int)
DEFINE_REAL(ssize_t, sendmsg, int, const struct msghdr *, int)
DEFINE_REAL(ssize_t, sendfile, int, int, off_t *, size_t)
DEFINE_REAL(int, sendmmsg, int, struct mmsghdr *, unsigned int, int)
DEFINE_REAL(int, recvmmsg, int, struct mmsghdr *, unsigned int, int, struct timespec *)
DEFINE_REAL(ssize_t, preadv, int, const struct iovec *, int, off_t)
DEFINE_REAL(ssize_t, pwritev, int, const struct iovec *, int, off_t)
DEFINE_REAL(ssize_t, preadv2, int, const struct iovec *, int, off_t, int)
DEFINE_REAL(ssize_t, pwritev2, int, const struct iovec *, int, off_t, int)
DEFINE_REAL(int, fcntl, int, int, ...)
DEFINE_REAL(int, ioctl, int, unsigned long, ...)
DEFINE_REAL(int, poll, struct pollfd *, nfds_t, int)
DEFINE_REAL(int, dup, int)
DEFINE_REAL(int, dup2, int, int)
DEFINE_REAL(int, dup3, int, int, int)

static inline long fail(long negative_errno) {
    errno = (int)-negative_errno;
    return -1;
}

// EPIPE raises SIGPIPE in the calling thread, as the kernel does, unless MSG_NOSIGNAL.
static inline ssize_t sent(ssize_t r, int flags) {
    if (r == -EPIPE && !(flags & MSG_NOSIGNAL)) raise(SIGPIPE);
    return r < 0 ? fail(r) : r;
}

static void fill_address(struct sockaddr *address, socklen_t *length, uint32_t ip, uint16_t port) {
    if (!address || !length) return;
    struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = { htonl(ip) } };
    memcpy(address, &in, *length < sizeof in ? *length : sizeof in);
    *length = sizeof in;
}

// The library names a stream socket's addresses by 16 bytes in network order, IPv6 or
// IPv4 mapped (::ffff:a.b.c.d): these turn a program's sockaddr of the socket's family
// into them and back. Linux's checks, in its order: the length, then the family.
static const uint8_t mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
static int is_mapped(const uint8_t bytes[16]) { return memcmp(bytes, mapped_prefix, 12) == 0; }
static uint32_t mapped_ipv4(const uint8_t bytes[16]) {
    uint32_t ip;
    memcpy(&ip, bytes + 12, 4);
    return ntohl(ip);
}

// Linux takes a sockaddr_in6 without its scope id (RFC 2133's, SIN6_LEN_RFC2133).
enum { rfc2133_length = offsetof(struct sockaddr_in6, sin6_scope_id) };

// 0, or -errno: EINVAL for a short address, EAFNOSUPPORT for another family.
static int read_name(int ipv6, const struct sockaddr *address, socklen_t length, uint8_t bytes[16], uint16_t *port) {
    if (ipv6) {
        if (length < rfc2133_length) return -EINVAL;
        if (address->sa_family != AF_INET6) return -EAFNOSUPPORT;
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)address;
        memcpy(bytes, &in6->sin6_addr, 16);
        *port = ntohs(in6->sin6_port);
        return 0;
    }
    if (length < sizeof(struct sockaddr_in)) return -EINVAL;
    if (address->sa_family != AF_INET) return -EAFNOSUPPORT;
    const struct sockaddr_in *in = (const struct sockaddr_in *)address;
    memcpy(bytes, mapped_prefix, 12);
    memcpy(bytes + 12, &in->sin_addr, 4);
    *port = ntohs(in->sin_port);
    return 0;
}

// fe80::/10: an address that names its link by sin6_scope_id.
static int is_link_local(const uint8_t bytes[16]) { return bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80; }

static void fill_name(int ipv6, struct sockaddr *address, socklen_t *length, const uint8_t bytes[16], uint16_t port) {
    if (!address || !length) return;
    if (!ipv6) { fill_address(address, length, mapped_ipv4(bytes), port); return; }
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
    memcpy(&in6.sin6_addr, bytes, 16);
    if (is_link_local(bytes)) in6.sin6_scope_id = netmp_scope_id(); // the TAP's index, as Linux names its link
    memcpy(address, &in6, *length < sizeof in6 ? *length : sizeof in6);
    *length = sizeof in6;
}

// What a link-local address's sin6_scope_id must say, as Linux checks it (inet6_bind,
// ip6_datagram_connect, tcp_v6_connect, udpv6_sendmsg): netmp's link is its TAP. A bind
// or connect needs the scope (EINVAL without one); a send without one takes netmp's link.
// Another interface's index is EADDRNOTAVAIL to bind (ENODEV if there is none such) and
// unreachable to a connect or send. Other addresses ignore it. 0 when it may go on. A stack
// without IPv6 addresses leaves link-local ones to the kernel (kernel_destination), scope
// and all.
enum scope_use { scope_bind, scope_connect, scope_send };
static int check_scope(const struct sockaddr *address, socklen_t length, const uint8_t bytes[16], enum scope_use use) {
    if (!is_link_local(bytes) || !netmp_serves_ipv6()) return 0;
    uint32_t scope = 0;
    if (length >= sizeof(struct sockaddr_in6)) memcpy(&scope, (const char *)address + offsetof(struct sockaddr_in6, sin6_scope_id), 4);
    if (scope != 0 && scope == netmp_scope_id()) return 0;
    if (scope == 0) return use == scope_send ? 0 : -EINVAL;
    if (use != scope_bind) return -ENETUNREACH;
    char name[IF_NAMESIZE];
    return if_indextoname(scope, name) ? -EADDRNOTAVAIL : -ENODEV;
}

// A destination netmp does not serve: loopback (127/8, ::1), the unspecified address
// (this host, as Linux takes it) and NETMP_KERNEL_ROUTES; on a stack without IPv6
// addresses, every IPv6 address but IPv4's mapped ones (the kernel's routes reach them, as
// they did for such a program's IPv6 sockets before they were netmp's).
static int kernel_destination(const uint8_t bytes[16]) {
    if (is_mapped(bytes)) { uint32_t ip = mapped_ipv4(bytes); return ip == 0 || netmp_route_to_kernel(ip); }
    static const uint8_t zero[16] = { 0 };
    return (memcmp(bytes, zero, 15) == 0 && (bytes[15] == 0 || bytes[15] == 1)) || !netmp_serves_ipv6();
}

// Hands the descriptor back to the kernel: a kernel socket of the same kind takes its
// number (for destinations netmp does not serve, such as loopback). It carries what the
// program did to the netmp socket: every option set, as it was set (Onload's mirroring),
// and the port it was bound to, on the kernel's wildcard address (netmp's own address is
// not the kernel's). A bind the kernel refuses fails the call with its errno. Every
// descriptor of this process that names the socket (dup's) names the kernel socket
// after, each keeping its close-on-exec flag: on Linux they name one socket. (A forked
// process's copy stays the stack's: another process's descriptors cannot be replaced.)
static int to_kernel(int fd, void *socket) {
    int stream = netmp_is_stream(socket), nonblocking = netmp_is_nonblocking(socket);
    int ipv6 = netmp_is_ipv6(socket);
    int kernel = REAL(socket)(ipv6 ? AF_INET6 : AF_INET, (stream ? SOCK_STREAM : SOCK_DGRAM) | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (kernel < 0) return -1;
    unsigned char value[256];
    int level = 0, name = 0;
    uint32_t length = sizeof value;
    for (int i = 0; netmp_set_option_at(socket, i, &level, &name, value, &length); i++, length = sizeof value) {
        REAL(setsockopt)(kernel, level, name, value, length); // what Linux refuses, it refused before too
    }
    uint8_t bound[16];
    uint16_t bound_port = 0;
    if (netmp_name(socket, 0, bound, &bound_port) == 0 && bound_port != 0) {
        struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons(bound_port), .sin_addr = { htonl(INADDR_ANY) } };
        struct sockaddr_in6 any6 = { .sin6_family = AF_INET6, .sin6_port = htons(bound_port), .sin6_addr = IN6ADDR_ANY_INIT };
        int r = ipv6 ? REAL(bind)(kernel, (struct sockaddr *)&any6, sizeof any6) : REAL(bind)(kernel, (struct sockaddr *)&any, sizeof any);
        if (r < 0) {
            int e = errno;
            REAL(close)(kernel);
            errno = e;
            return -1;
        }
    }
    // fd first, then the socket's other descriptors (found only when it has some).
    int count = netmp_socket_descriptors(socket), found = 1, single = fd;
    int *named = count > 1 ? malloc((size_t)count * sizeof *named) : &single;
    if (!named) {
        REAL(close)(kernel);
        errno = ENOMEM;
        return -1;
    }
    named[0] = fd;
    for (int other = 0; count > 1 && other < NETMP_DESCRIPTORS && found < count; other++) {
        if (other != fd && atomic_load_explicit(&sockets[other], memory_order_acquire) == socket) named[found++] = other;
    }
    int moved = 0;
    for (int i = 0; i < found; i++) {
        int d = named[i];
        int cloexec = REAL(fcntl)(d, F_GETFD) & FD_CLOEXEC;
        netmp_epoll_moving(d); // while d still names the placeholder
        atomic_store_explicit(&sockets[d], NULL, memory_order_release);
        if (REAL(dup3)(kernel, d, cloexec ? O_CLOEXEC : 0) < 0) {
            // This descriptor stays the netmp socket's (a later one: the others moved).
            int e = errno;
            atomic_store_explicit(&sockets[d], socket, memory_order_release);
            netmp_epoll_moved(d, 0);
            if (i > 0) continue;
            if (named != &single) free(named);
            REAL(close)(kernel);
            errno = e;
            return -1;
        }
        netmp_epoll_moved(d, 1);
        moved++;
    }
    if (named != &single) free(named);
    REAL(close)(kernel);
    for (int i = 0; i < moved; i++) netmp_socket_close(socket); // each moved descriptor's reference
    return 0;
}

// A datagram to a destination netmp does not serve (loopback, 0.0.0.0 or :: for this host,
// NETMP_KERNEL_ROUTES) moves the UDP socket to the kernel first, as a connect there does:
// 1 moved, 0 nothing to move, -1 the move failed (errno set).
static int datagram_to_kernel(int fd, void *socket, const uint8_t bytes[16]) {
    if (netmp_is_stream(socket) || !kernel_destination(bytes)) return 0;
    return to_kernel(fd, socket) < 0 ? -1 : 1;
}

// A UDP destination as Linux's udp_sendmsg and udpv6_sendmsg read it: 1 with the address
// in bytes/port, 0 when it names none (AF_UNSPEC on an IPv6 socket: the connected peer),
// -errno otherwise. An IPv4 socket takes AF_INET (and AF_UNSPEC as AF_INET); an IPv6 one
// takes AF_INET6 and AF_INET, the latter mapped (its v6-only check is the stack's).
static int read_destination(void *socket, const struct sockaddr *address, socklen_t length, uint8_t bytes[16],
                            uint16_t *port) {
    if (!netmp_is_ipv6(socket)) {
        if (length < sizeof(struct sockaddr_in)) return -EINVAL;
        if (address->sa_family != AF_INET && address->sa_family != AF_UNSPEC) return -EAFNOSUPPORT;
        struct sockaddr_in in;
        memcpy(&in, address, sizeof in);
        in.sin_family = AF_INET;
        return read_name(0, (const struct sockaddr *)&in, sizeof in, bytes, port) == 0 ? 1 : -EINVAL;
    }
    if (length < offsetof(struct sockaddr, sa_data)) return -EINVAL;
    switch (address->sa_family) {
    case AF_INET6: {
        if (length < rfc2133_length) return -EINVAL;
        struct sockaddr_in6 in6 = { 0 };
        memcpy(&in6, address, rfc2133_length);
        if (read_name(1, (const struct sockaddr *)&in6, sizeof in6, bytes, port) < 0) return -EINVAL;
        int scope = check_scope(address, length, bytes, scope_send);
        return scope < 0 ? scope : 1;
    }
    case AF_INET:
        return read_name(0, address, length, bytes, port) == 0 ? 1 : -EINVAL;
    case AF_UNSPEC:
        return 0;
    default:
        return -EINVAL;
    }
}

// Records the socket behind its descriptor, which must be in the table's range (else the
// socket is closed again: EMFILE).
static int record(int fd, void *socket, int *error) {
    if (fd >= NETMP_DESCRIPTORS) {
        REAL(close)(fd);
        netmp_socket_close(socket);
        *error = EMFILE;
        return -1;
    }
    atomic_store_explicit(&sockets[fd], socket, memory_order_release);
    netmp_stdio_follow(fd);
    return fd;
}

// accept: the placeholder is made first, as Linux takes the descriptor before the
// connection (EMFILE leaves the connection queued), and the handle recorded behind it.
static int adopt(void *(*make)(int fd, void *context), void *context, int cloexec, int *error) {
    int fd = netmp_placeholder(cloexec);
    if (fd < 0) { *error = -fd; return -1; }
    if (fd >= NETMP_DESCRIPTORS) { REAL(close)(fd); *error = EMFILE; return -1; }
    void *socket = make(fd, context);
    if (!socket) { REAL(close)(fd); return -1; }
    return record(fd, socket, error);
}

int socket(int domain, int type, int protocol) {
    int kind = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    int stream = kind == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP);
    int datagram = kind == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP);
    int inet = domain == AF_INET || domain == AF_INET6;
    if (inet && (stream || datagram) && !netmp_running()) netmp_start_on_first_socket();
    if (!inet || !(stream || datagram) || !netmp_running()) return REAL(socket)(domain, type, protocol);
    // IPv6 sockets too on a stack without IPv6 addresses: a server on [::] (node's default,
    // nginx's listen [::]) takes IPv4 through netmp, mapped, as Linux's dual-stack socket
    // does; IPv6 destinations then go to the kernel at bind, connect or send.
    // The socket first, then its descriptor: a kept placeholder of its slot needs only a
    // copy (NamedDoorbellFiles).
    int fd = -1, error = ENOMEM;
    void *made = netmp_socket_create(stream, (type & SOCK_CLOEXEC) != 0, domain == AF_INET6, &fd);
    if (!made) { errno = ENOMEM; return -1; }
    if (fd < 0) { netmp_socket_close(made); errno = -fd; return -1; }
    fd = record(fd, made, &error);
    if (fd < 0) { errno = error; return -1; }
    if (type & SOCK_NONBLOCK) netmp_set_nonblocking(netmp_socket_of(fd), 1);
    return fd;
}

// The library's own descriptors (its attachment to the stack) are not the program's: a
// close or a dup onto one fails with EBADF and leaves it open.
static int library_descriptor(int fd) {
    return fd >= 0 && fd < NETMP_DESCRIPTORS && !atomic_load_explicit(&sockets[fd], memory_order_acquire)
        && netmp_is_library_descriptor(fd);
}

int close(int fd) {
    if (library_descriptor(fd)) { errno = EBADF; return -1; }
    if (fd >= 0) netmp_descriptors_closing((uint32_t)fd, (uint32_t)fd);
    netmp_epoll_descriptor_closed(fd); // first: epoll sets hold the socket until then
    if (fd >= 0 && fd < NETMP_DESCRIPTORS) {
        void *socket = atomic_exchange_explicit(&sockets[fd], NULL, memory_order_acq_rel);
        if (socket) netmp_socket_close(socket);
    }
    return REAL(close)(fd);
}

// close_range(2) and closefrom(3) close the netmp sockets in the range as close() does
// (a program that closes every descriptor above stderr would otherwise leave their
// sockets open in the stack); with CLOSE_RANGE_CLOEXEC they only mark them close-on-exec,
// as the kernel does. The library's own descriptors (its attachment to the stack) are
// passed over, as the kernel's own state would be: the program keeps netmp.
DEFINE_REAL(int, close_range, unsigned int, unsigned int, int)
DEFINE_REAL(void, closefrom, int)
int close_range(unsigned int first, unsigned int last, int flags) {
    if (first > last) return REAL(close_range)(first, last, flags); // EINVAL, as the kernel says
    if (!(flags & CLOSE_RANGE_CLOEXEC)) {
        netmp_descriptors_closing(first, last);
        unsigned int end = last < NETMP_DESCRIPTORS - 1 ? last : NETMP_DESCRIPTORS - 1;
        for (unsigned int fd = first; fd <= end; fd++) {
            netmp_epoll_descriptor_closed((int)fd);
            void *socket = atomic_exchange_explicit(&sockets[fd], NULL, memory_order_acq_rel);
            if (socket) netmp_socket_close(socket);
        }
    }
    int own[80];
    int count = netmp_library_descriptors(own, 80);
    unsigned int from = first;
    for (int i = 0; i < count && from <= last; i++) {
        unsigned int skip = (unsigned int)own[i];
        if (skip < from || skip > last) continue;
        if (skip > from && REAL(close_range)(from, skip - 1, flags) < 0) return -1;
        if (skip == UINT_MAX) return 0;
        from = skip + 1;
    }
    return from <= last ? REAL(close_range)(from, last, flags) : 0;
}

void closefrom(int lowest) {
    if (close_range(lowest < 0 ? 0 : (unsigned int)lowest, ~0U, 0) == 0) return;
    REAL(closefrom)(lowest); // a kernel without close_range: libc's own way
}

// syscall(3) itself, for SYS_close on a netmp socket: libuv (node) closes every descriptor
// with syscall(SYS_close, fd), past glibc's close, which is a cancellation point. That close
// must reach the stack, or the connection never ends (no FIN: a leak) and the table keeps
// naming the socket at that number, which the next kernel descriptor there (a loopback
// connection from the twin) then reaches as netmp's. Every other call, and a close of a
// descriptor that is not a netmp socket (the library's own raw closes among them), goes to
// libc's syscall with the six argument words (the x86-64 ABI passes them in registers, so
// reading more than the caller gave reads only what those registers held).
DEFINE_REAL(long, syscall, long, ...)
long syscall(long number, ...) {
    va_list list;
    va_start(list, number);
    long a = va_arg(list, long), b = va_arg(list, long), c = va_arg(list, long);
    long d = va_arg(list, long), e = va_arg(list, long), f = va_arg(list, long);
    va_end(list);
    if (number == SYS_close && netmp_socket_of((int)a)) return close((int)a);
    return REAL(syscall)(number, a, b, c, d, e, f);
}

int bind(int fd, const struct sockaddr *address, socklen_t length) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(bind)(fd, address, length);
    // move_addr_to_kernel: a length it can copy from nowhere faults; none is too short.
    if (!address) { errno = length > 0 && length <= sizeof(struct sockaddr_storage) ? EFAULT : EINVAL; return -1; }
    uint8_t bytes[16];
    uint16_t port = 0;
    int ipv6 = netmp_is_ipv6(socket);
    int read = read_name(ipv6, address, length, bytes, &port);
    if (read == 0 && ipv6) read = check_scope(address, length, bytes, scope_bind);
    if (read < 0) return (int)fail(read);
    // Loopback and the kernel's routes are the kernel's (a bound wildcard stays netmp's).
    static const uint8_t any[16] = { 0 };
    if (memcmp(bytes, any, 16) != 0 && (is_mapped(bytes) ? mapped_ipv4(bytes) != 0 : 1) && kernel_destination(bytes)) {
        if (to_kernel(fd, socket) < 0) return -1;
        return REAL(bind)(fd, address, length);
    }
    int r = netmp_bind(socket, bytes, port);
    return r < 0 ? (int)fail(r) : 0;
}

// A listener on netmp's wildcard gets a kernel twin on 127.0.0.1 at the same port, so that
// programs on this host reach it at loopback (curl to 127.0.0.1, health checks, a client
// library's default host), as Onload keeps an OS socket beside each accelerated listener.
// A port the kernel holds already, or any other failure, leaves the listener without one.
static void make_twin(void *socket, int backlog) {
    int twin = netmp_twin(socket);
    if (twin >= 0) { REAL(listen)(twin, backlog); return; } // listen() again: the new backlog
    uint8_t bytes[16];
    uint16_t port = 0;
    static const uint8_t any[16] = { 0 };
    int ipv6 = netmp_is_ipv6(socket);
    if (netmp_name(socket, 0, bytes, &port) < 0 || port == 0) return;
    if (ipv6 ? memcmp(bytes, any, 16) != 0 : mapped_ipv4(bytes) != 0) return; // a wildcard listener only
    twin = REAL(socket)(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (twin < 0) return;
    int one = 1, zero = 0;
    REAL(setsockopt)(twin, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // An IPv4 listener's twin answers 127.0.0.1, a v6-only one's ::1. A dual-stack one (a
    // server on [::], node's default) takes both on Linux, so its twin is a dual-stack
    // socket on :: that only the loopback device feeds (SO_BINDTODEVICE "lo": the
    // connections of this host's programs); ::1 alone where the device cannot be named.
    struct sockaddr_in loopback = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = { htonl(INADDR_LOOPBACK) } };
    struct sockaddr_in6 loopback6 = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    int v6only = 1;
    uint32_t size = sizeof v6only;
    if (ipv6 && netmp_getsockopt(socket, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &size) < 0) v6only = 1;
    if (ipv6 && !v6only && REAL(setsockopt)(twin, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3) == 0) {
        REAL(setsockopt)(twin, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        loopback6.sin6_addr = in6addr_any;
    } else if (ipv6) {
        REAL(setsockopt)(twin, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    int bound = ipv6 ? REAL(bind)(twin, (struct sockaddr *)&loopback6, sizeof loopback6)
                     : REAL(bind)(twin, (struct sockaddr *)&loopback, sizeof loopback);
    if (bound < 0 || REAL(listen)(twin, backlog) < 0 || !netmp_set_twin(socket, twin)) {
        REAL(close)(twin);
    }
}

int listen(int fd, int backlog) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(listen)(fd, backlog);
    int r = netmp_listen(socket, backlog);
    if (r < 0) return (int)fail(r);
    make_twin(socket, backlog);
    return 0;
}

struct acceptance { void *listener; int nonblocking; int cloexec; uint8_t address[16]; uint16_t port; int error; };
static void *make_accepted(int fd, void *context) {
    struct acceptance *a = context;
    return netmp_accept(a->listener, fd, a->nonblocking, a->cloexec, a->address, &a->port, &a->error);
}

// accept on a listener with a kernel twin, called when netmp's queues are empty: a
// loopback connection waiting there is the kernel's socket and is returned as it is. The
// twin is looked at with a poll first: an accept4 that finds nothing costs the kernel a
// socket and a file made and freed. A
// blocking accept with neither waits in poll on the listener, which covers both, for
// SO_RCVTIMEO at most (then EAGAIN), and fails with EINTR only after a handler without
// SA_RESTART ran (as the kernel's accept).
// -2: nothing here to take (the caller goes on to netmp's queues); -1: failed.
static int accept_twin(int fd, void *socket, int twin, struct sockaddr *address, socklen_t *length, int flags) {
    struct timeval limit = { 0, 0 };
    uint32_t size = sizeof limit;
    long long deadline = -1;
    if (netmp_getsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, &size) == 0 && (limit.tv_sec || limit.tv_usec))
        deadline = netmp_now_ns() + (long long)limit.tv_sec * 1000000000LL + (long long)limit.tv_usec * 1000LL;
    for (;;) {
        struct pollfd waiting = { twin, POLLIN, 0 };
        if (REAL(poll)(&waiting, 1, 0) > 0) {
            int r = REAL(accept4)(twin, address, length, flags);
            if (r >= 0) return r;
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED && errno != EINTR) return -1;
        }
        if (netmp_accept_pending(socket) > 0 || netmp_is_nonblocking(socket)) return -2;
        int wait_ms = -1;
        if (deadline >= 0) {
            long long left = deadline - netmp_now_ns();
            if (left <= 0) { errno = EAGAIN; return -1; }
            wait_ms = (int)((left + 999999) / 1000000);
        }
        unsigned signals = netmp_interrupting_signals();
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, wait_ms) < 0 && errno == EINTR && netmp_interrupting_signals() != signals) return -1;
        if (p.revents & (POLLNVAL | POLLERR)) return -2; // closed meanwhile: netmp's accept says how
        if (netmp_accept_pending(socket) > 0) return -2;
    }
}

int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(accept4)(fd, address, length, flags);
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) { errno = EINVAL; return -1; }
    int twin = netmp_twin(socket);
    if (twin >= 0 && netmp_accept_pending(socket) <= 0) {
        int r = accept_twin(fd, socket, twin, address, length, flags);
        if (r != -2) return r;
    }
    struct acceptance a = { socket, flags & SOCK_NONBLOCK, (flags & SOCK_CLOEXEC) != 0, { 0 }, 0, 0 };
    int error = 0;
    // The listener's own blocking mode decides whether accept waits.
    int new_fd = adopt(make_accepted, &a, flags & SOCK_CLOEXEC, &error);
    if (new_fd < 0) { errno = a.error ? a.error : error; return -1; }
    fill_name(netmp_is_ipv6(socket), address, length, a.address, a.port);
    return new_fd;
}

int accept(int fd, struct sockaddr *address, socklen_t *length) {
    if (!netmp_socket_of(fd)) return REAL(accept)(fd, address, length);
    return accept4(fd, address, length, 0);
}

int connect(int fd, const struct sockaddr *address, socklen_t length) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(connect)(fd, address, length);
    uint8_t bytes[16] = { 0 };
    if (address && length >= sizeof(sa_family_t) && address->sa_family == AF_UNSPEC) {
        int r = netmp_connect(socket, bytes, 0, 1);
        return r < 0 ? (int)fail(r) : 0;
    }
    if (!address) { errno = EFAULT; return -1; }
    uint16_t port = 0;
    int ipv6 = netmp_is_ipv6(socket);
    int read = read_name(ipv6, address, length, bytes, &port); // length first, as Linux
    if (read == 0 && ipv6) read = check_scope(address, length, bytes, scope_connect);
    // TCP answers for a connection under way (or a listener) before it reads the address.
    if (read < 0 && netmp_has_begun(socket)) read = 0;
    if (read < 0) return (int)fail(read);
    // 0.0.0.0 (or ::) as a destination means this host's loopback, as on Linux. Only a
    // socket that has not begun (no listen, no connect) moves to the kernel; the others
    // answer below.
    if (kernel_destination(bytes) && netmp_is_fresh(socket)) {
        if (to_kernel(fd, socket) < 0) return -1;
        return REAL(connect)(fd, address, length);
    }
    int r = netmp_connect(socket, bytes, port, 0);
    return r < 0 ? (int)fail(r) : 0;
}

static int name_of(int fd, struct sockaddr *address, socklen_t *length, int peer) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return peer ? REAL(getpeername)(fd, address, length) : REAL(getsockname)(fd, address, length);
    if (!address || !length) { errno = EFAULT; return -1; }
    uint8_t bytes[16];
    uint16_t port = 0;
    int r = netmp_name(socket, peer, bytes, &port);
    if (r < 0) return (int)fail(r);
    fill_name(netmp_is_ipv6(socket), address, length, bytes, port);
    return 0;
}
int getsockname(int fd, struct sockaddr *address, socklen_t *length) { return name_of(fd, address, length, 0); }
int getpeername(int fd, struct sockaddr *address, socklen_t *length) { return name_of(fd, address, length, 1); }

int getsockopt(int fd, int level, int name, void *value, socklen_t *length) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(getsockopt)(fd, level, name, value, length);
    int r = netmp_getsockopt(socket, level, name, value, (uint32_t *)length);
    return r < 0 ? (int)fail(r) : 0;
}

int setsockopt(int fd, int level, int name, const void *value, socklen_t length) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(setsockopt)(fd, level, name, value, length);
    int r = netmp_setsockopt(socket, level, name, value, length);
    return r < 0 ? (int)fail(r) : 0;
}

int shutdown(int fd, int how) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(shutdown)(fd, how);
    int r = netmp_shutdown(socket, how);
    if (r < 0) return (int)fail(r);
    // A listener that stopped listening takes its loopback twin with it.
    int twin = netmp_twin(socket);
    if (twin >= 0 && how != SHUT_WR) REAL(shutdown)(twin, how);
    return 0;
}

// MARK: Data

// A buffer the program may not write into (or, sending, read) is passed on as NULL, which
// netmp answers as the kernel does a copy that faults: EFAULT, a receive only once data came
// and with the data kept (netmp_recv). A receive probes the bytes that are there already
// (at least one), which the copy will fill: never a page the kernel would not touch.
static void *writable_or_null(void *socket, void *bytes, size_t count) {
    if (!bytes || count == 0) return bytes;
    int ready = netmp_ioctl_count(socket, 0);
    size_t reach = ready > 0 && (size_t)ready < count ? (size_t)ready : ready > 0 ? count : 1;
    return netmp_accessible(bytes, reach, 1) ? bytes : NULL;
}
static const void *readable_or_null(const void *bytes, size_t count) {
    return !bytes || netmp_accessible(bytes, count, 0) ? bytes : NULL;
}

ssize_t recv(int fd, void *bytes, size_t count, int flags) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(recv)(fd, bytes, count, flags);
    ssize_t r = netmp_recv(socket, writable_or_null(socket, bytes, count), count, flags, NULL, NULL, NULL);
    return r < 0 ? fail(r) : r;
}

ssize_t recvfrom(int fd, void *bytes, size_t count, int flags, struct sockaddr *address, socklen_t *length) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(recvfrom)(fd, bytes, count, flags, address, length);
    uint8_t source[16] = { 0 };
    uint16_t port = 0;
    ssize_t r = netmp_recv(socket, writable_or_null(socket, bytes, count), count, flags, source, &port, NULL);
    if (r < 0) return fail(r);
    if (netmp_is_stream(socket)) {
        if (length) *length = 0; // Linux's TCP gives no source address (tcp_recvmsg)
    } else {
        fill_name(netmp_is_ipv6(socket), address, length, source, port);
    }
    return r;
}

ssize_t read(int fd, void *bytes, size_t count) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(read)(fd, bytes, count);
    ssize_t r = netmp_recv(socket, writable_or_null(socket, bytes, count), count, 0, NULL, NULL, NULL);
    return r < 0 ? fail(r) : r;
}

ssize_t send(int fd, const void *bytes, size_t count, int flags) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(send)(fd, bytes, count, flags);
    return sent(netmp_send(socket, readable_or_null(bytes, count), count, flags, 0, NULL, 0), flags);
}

ssize_t sendto(int fd, const void *bytes, size_t count, int flags, const struct sockaddr *address, socklen_t length) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(sendto)(fd, bytes, count, flags, address, length);
    bytes = readable_or_null(bytes, count);
    if (!address) return sent(netmp_send(socket, bytes, count, flags, 0, NULL, 0), flags);
    // TCP does not look at a destination (Linux's tcp_sendmsg); only its being given counts.
    if (netmp_is_stream(socket)) return sent(netmp_send(socket, bytes, count, flags, 1, NULL, 0), flags);
    uint8_t destination[16];
    uint16_t port = 0;
    int given = read_destination(socket, address, length, destination, &port);
    if (given < 0) return (ssize_t)fail(given);
    int moved = given ? datagram_to_kernel(fd, socket, destination) : 0;
    if (moved) return moved < 0 ? -1 : REAL(sendto)(fd, bytes, count, flags, address, length);
    return sent(netmp_send(socket, bytes, count, flags, given, destination, port), flags);
}

ssize_t write(int fd, const void *bytes, size_t count) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(write)(fd, bytes, count);
    return sent(netmp_send(socket, readable_or_null(bytes, count), count, 0, 0, NULL, 0), 0);
}

// A socket has no file position (the placeholder underneath would have answered).
off_t lseek(int fd, off_t offset, int whence) {
    if (netmp_socket_of(fd)) { errno = ESPIPE; return -1; }
    return REAL(lseek)(fd, offset, whence);
}

off64_t lseek64(int fd, off64_t offset, int whence) {
    if (netmp_socket_of(fd)) { errno = ESPIPE; return -1; }
    return REAL(lseek64)(fd, offset, whence);
}

ssize_t pread(int fd, void *bytes, size_t count, off_t offset) {
    if (netmp_socket_of(fd)) { errno = ESPIPE; return -1; }
    return REAL(pread)(fd, bytes, count, offset);
}

ssize_t pwrite(int fd, const void *bytes, size_t count, off_t offset) {
    if (netmp_socket_of(fd)) { errno = ESPIPE; return -1; }
    return REAL(pwrite)(fd, bytes, count, offset);
}

// The first piece the kernel's copy would fault on (a length and no address, or memory the
// program may not read, or `writing` write), or `count`; only the first `reach` bytes are
// probed (a receive's: what is there already). A list that is not there faults at once
// (the kernel copies the list before anything); a piece only when the copy reaches it,
// after a receive waited for data.
static int first_faulty_piece(const struct iovec *iov, int count, int writing, size_t reach) {
    size_t probed = 0;
    for (int i = 0; i < count; i++) {
        size_t length = iov[i].iov_len;
        if (length == 0) continue;
        if (!iov[i].iov_base) return i;
        if (probed >= reach) continue;
        size_t part = length < reach - probed ? length : reach - probed;
        if (!netmp_accessible(iov[i].iov_base, part, writing)) return i;
        probed += part;
    }
    return count;
}
// The list itself, which the kernel copies first.
static int list_readable(const struct iovec *iov, int count) {
    return count <= 0 || (iov && netmp_accessible(iov, (size_t)count * sizeof *iov, 0));
}

// Vectored I/O. On a stream the pieces are sent as one write (netmp_send_gathered) and
// read each in turn, stopping at a short transfer; on a datagram socket they form one
// datagram, gathered into one buffer.
static ssize_t gather_send(void *socket, const struct iovec *iov, int count, int flags,
                           int has_destination, const uint8_t *destination, uint16_t port, uint32_t marking,
                           int segment) {
    if (count < 0 || count > IOV_MAX) return -EINVAL;
    // The kernel copies what it sends before sending it (a datagram whole, a stream's
    // first chunk): a piece it cannot copy is EFAULT with nothing sent.
    if (!list_readable(iov, count) || first_faulty_piece(iov, count, 0, (size_t)-1) < count) return -EFAULT;
    if (!netmp_is_stream(socket)) {
        size_t total = 0;
        for (int i = 0; i < count; i++) total += iov[i].iov_len;
        char stack_buffer[2048];
        char *buffer = total <= sizeof stack_buffer ? stack_buffer : malloc(total);
        if (!buffer) return -ENOMEM;
        size_t at = 0;
        for (int i = 0; i < count; i++) { memcpy(buffer + at, iov[i].iov_base, iov[i].iov_len); at += iov[i].iov_len; }
        ssize_t r = netmp_send_marked(socket, buffer, total, flags, has_destination, destination, port, marking, segment);
        if (buffer != stack_buffer) free(buffer);
        return r;
    }
    return netmp_send_gathered(socket, iov, count, flags);
}

// Spreads `length` bytes of `buffer` over the pieces, in order (a datagram gathered whole).
static void scatter_copy(const struct iovec *iov, size_t count, const char *buffer, size_t length) {
    size_t at = 0;
    for (size_t i = 0; i < count && at < length; i++) {
        size_t n = iov[i].iov_len < length - at ? iov[i].iov_len : length - at;
        memcpy(iov[i].iov_base, buffer + at, n);
        at += n;
    }
}

// A datagram's ancillary data goes to *info when it is given (recvmsg).
static ssize_t scatter_receive(void *socket, const struct iovec *iov, int count, int flags,
                               uint8_t *source, uint16_t *port, int *truncated, netmp_datagram_info *info) {
    if (count < 0 || count > IOV_MAX) return -EINVAL;
    if (!list_readable(iov, count)) return -EFAULT;
    int ready = netmp_ioctl_count(socket, 0);
    int faulty = first_faulty_piece(iov, count, 1, ready > 0 ? (size_t)ready : 1);
    size_t reach = 0; // the bytes the pieces before it take
    for (int i = 0; i < faulty; i++) reach += iov[i].iov_len;
    if (!netmp_is_stream(socket)) {
        ssize_t full = 0;
        // One piece (the usual recvmsg) takes the datagram straight; more are gathered.
        if (count <= 1) {
            void *bytes = count == 1 ? iov[0].iov_base : NULL;
            size_t length = count == 1 ? iov[0].iov_len : 0;
            ssize_t r = netmp_recv_datagram(socket, bytes, length, flags & ~MSG_TRUNC, source, port, &full, info);
            if (r >= 0) {
                if (truncated) *truncated = full > r;
                if (flags & MSG_TRUNC) r = full;
            }
            return r;
        }
        size_t total = 0;
        for (int i = 0; i < count; i++) total += iov[i].iov_len;
        char stack_buffer[2048];
        char *buffer = total <= sizeof stack_buffer ? stack_buffer : malloc(total);
        if (!buffer) return -ENOMEM;
        ssize_t r = netmp_recv_datagram(socket, buffer, total, flags & ~MSG_TRUNC, source, port, &full, info);
        // The copy faults if the datagram reaches a piece with no address: EFAULT, and the
        // datagram is gone as in udp_recvmsg (unless only peeked at).
        if (r > 0 && faulty < count && (size_t)r > reach) r = -EFAULT;
        if (r >= 0) {
            scatter_copy(iov, (size_t)count, buffer, (size_t)r);
            if (truncated) *truncated = full > r;
            if (flags & MSG_TRUNC) r = full;
        }
        if (buffer != stack_buffer) free(buffer);
        return r;
    }
    if (faulty < count && reach > 0) {
        // tcp_recvmsg copies what is there in one go: once data came, a copy that would
        // reach the piece with no address is EFAULT, and the data stays.
        char first;
        ssize_t r = netmp_recv(socket, &first, 1, flags | MSG_PEEK, source, port, NULL);
        if (r <= 0) return r;
        int available = netmp_ioctl_count(socket, 0);
        if (available > 0 && (size_t)available > reach) return -EFAULT;
    }
    ssize_t done = 0;
    for (int i = 0; i < count; i++) {
        if (iov[i].iov_len == 0) continue;
        // Reached with nothing before it: the wait for data, then EFAULT with the data kept
        // (netmp_recv's NULL buffer); after a copy, that copy.
        if (i == faulty && done > 0) break;
        ssize_t r = netmp_recv(socket, iov[i].iov_base, iov[i].iov_len, flags | (done > 0 ? MSG_DONTWAIT : 0), source, port, NULL);
        if (r < 0) return done > 0 ? done : r;
        done += r;
        if ((size_t)r < iov[i].iov_len) break;
    }
    return done;
}

ssize_t writev(int fd, const struct iovec *iov, int count) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(writev)(fd, iov, count);
    return sent(gather_send(socket, iov, count, 0, 0, NULL, 0, 0, -1), 0);
}

ssize_t readv(int fd, const struct iovec *iov, int count) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(readv)(fd, iov, count);
    ssize_t r = scatter_receive(socket, iov, count, 0, NULL, NULL, NULL, NULL);
    return r < 0 ? fail(r) : r;
}

ssize_t sendmsg(int fd, const struct msghdr *message, int flags) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(sendmsg)(fd, message, flags);
    if (!message || !netmp_accessible(message, sizeof *message, 0)) { errno = EFAULT; return -1; }
    int has_destination = 0;
    uint8_t destination[16] = { 0 };
    uint16_t port = 0;
    if (message->msg_name && message->msg_namelen && netmp_is_stream(socket)) {
        has_destination = 1; // TCP does not look at it (Linux's tcp_sendmsg)
    } else if (message->msg_name && message->msg_namelen) {
        has_destination = read_destination(socket, message->msg_name, message->msg_namelen, destination, &port);
        if (has_destination < 0) return (ssize_t)fail(has_destination);
        int moved = has_destination ? datagram_to_kernel(fd, socket, destination) : 0;
        if (moved) return moved < 0 ? -1 : REAL(sendmsg)(fd, message, flags);
    }
    // A datagram's control messages, read for the family of where it goes (an unconnected
    // socket without a name fails with EDESTADDRREQ first, as udp_sendmsg does).
    uint32_t marking = 0;
    int segment = -1;
    uint8_t to[16] = { 0 };
    uint16_t to_port = 0;
    if (!netmp_is_stream(socket) && message->msg_control && message->msg_controllen
        && (has_destination || netmp_name(socket, 1, to, &to_port) == 0)) {
        if (has_destination) memcpy(to, destination, 16);
        int r = netmp_read_send_control(socket, message, !netmp_is_ipv6(socket) || is_mapped(to), &marking, &segment);
        if (r < 0) return (ssize_t)fail(r);
    }
    return sent(gather_send(socket, message->msg_iov, (int)message->msg_iovlen, flags, has_destination, destination, port,
                            marking, segment), flags);
}

// recvmsg(MSG_ERRQUEUE): the oldest queued error, as Linux's ip_recv_error and
// ipv6_recv_error return it: the datagram's quoted payload, its destination as the name,
// one IP_RECVERR (IPV6_RECVERR) control message, MSG_ERRQUEUE in the flags. Never waits.
static ssize_t receive_error(void *socket, struct msghdr *message) {
    size_t total = 0;
    for (size_t i = 0; i < message->msg_iovlen; i++) total += message->msg_iov[i].iov_len;
    char stack_buffer[2048];
    char *buffer = total <= sizeof stack_buffer ? stack_buffer : malloc(total);
    if (!buffer) return fail(-ENOMEM);
    netmp_error_info info;
    ssize_t full = 0;
    ssize_t r = netmp_recv_error(socket, buffer, total, &full, &info);
    if (r >= 0) scatter_copy(message->msg_iov, message->msg_iovlen, buffer, (size_t)r);
    if (buffer != stack_buffer) free(buffer);
    if (r < 0) return fail(r);
    int ipv6 = netmp_is_ipv6(socket);
    message->msg_flags = MSG_ERRQUEUE | (full > r ? MSG_TRUNC : 0);
    if (message->msg_name) {
        socklen_t length = message->msg_namelen;
        fill_name(ipv6, message->msg_name, &length, info.destination, info.destination_port);
        message->msg_namelen = length;
    }
    netmp_put_error(message, ipv6, &info);
    return r;
}

ssize_t recvmsg(int fd, struct msghdr *message, int flags) {
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(recvmsg)(fd, message, flags);
    if (!message || !netmp_accessible(message, sizeof *message, 1)) { errno = EFAULT; return -1; }
    if (flags & MSG_ERRQUEUE) return receive_error(socket, message);
    uint8_t source[16] = { 0 };
    uint16_t port = 0;
    int truncated = 0;
    // Ancillary data only for datagrams, and only what the socket asked for.
    unsigned int wanted = netmp_is_stream(socket) ? 0 : netmp_ancillary(socket);
    netmp_datagram_info info;
    ssize_t r = scatter_receive(socket, message->msg_iov, (int)message->msg_iovlen, flags, source, &port, &truncated,
                                wanted ? &info : NULL);
    if (r < 0) return fail(r);
    message->msg_flags = truncated ? MSG_TRUNC : 0;
    if ((flags & MSG_OOB) && r > 0 && netmp_is_stream(socket)) message->msg_flags |= MSG_OOB; // the urgent byte
    if (wanted) netmp_put_ancillary(message, wanted, netmp_is_ipv6(socket), &info);
    else message->msg_controllen = 0;
    if (netmp_is_stream(socket)) {
        message->msg_namelen = 0; // Linux's TCP gives no source address (tcp_recvmsg)
    } else if (message->msg_name) {
        socklen_t length = message->msg_namelen;
        fill_name(netmp_is_ipv6(socket), message->msg_name, &length, source, port);
        message->msg_namelen = length;
    }
    return r;
}

// Several messages per call: each one through sendmsg/recvmsg. An error after the first
// message ends the batch, which reports what was done (as Linux does).
int sendmmsg(int fd, struct mmsghdr *messages, unsigned int count, int flags) {
    if (!netmp_socket_of(fd)) return REAL(sendmmsg)(fd, messages, count, flags);
    if (count > UIO_MAXIOV) count = UIO_MAXIOV;
    unsigned int done = 0;
    for (; done < count; done++) {
        ssize_t r = sendmsg(fd, &messages[done].msg_hdr, flags);
        if (r < 0) return done ? (int)done : -1;
        messages[done].msg_len = (unsigned int)r;
    }
    return (int)done;
}

int recvmmsg(int fd, struct mmsghdr *messages, unsigned int count, int flags, struct timespec *timeout) {
    if (!netmp_socket_of(fd)) return REAL(recvmmsg)(fd, messages, count, flags, timeout);
    if (count > UIO_MAXIOV) count = UIO_MAXIOV;
    // As Linux: the timeout is checked after each datagram (a blocking wait for the first
    // is not cut short), and what is left of it is written back.
    long long end = 0;
    if (timeout) {
        if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000L) { errno = EINVAL; return -1; }
        // Seconds capped at 10^9 (31 years) so the sum cannot overflow.
        long long seconds = timeout->tv_sec < 1000000000L ? timeout->tv_sec : 1000000000L;
        end = netmp_now_ns() + seconds * 1000000000LL + timeout->tv_nsec;
    }
    unsigned int done = 0;
    int each = flags & ~MSG_WAITFORONE;
    while (done < count) {
        ssize_t r = recvmsg(fd, &messages[done].msg_hdr, each);
        if (r < 0) return done ? (int)done : -1;
        messages[done++].msg_len = (unsigned int)r;
        if (flags & MSG_WAITFORONE) each |= MSG_DONTWAIT;
        if (timeout) {
            long long left = end - netmp_now_ns();
            if (left < 0) left = 0;
            timeout->tv_sec = left / 1000000000LL;
            timeout->tv_nsec = left % 1000000000LL;
            if (left == 0) break;
        }
    }
    return (int)done;
}

// The calling thread's buffer for moving bytes between a file or pipe and a netmp socket
// (sendfile, splice): made at its first use (a thread's stack may be too small to hold
// one), freed when the thread ends.
static pthread_key_t transfer_key;
static pthread_once_t transfer_once = PTHREAD_ONCE_INIT;
static void make_transfer_key(void) { pthread_key_create(&transfer_key, free); }
char *netmp_transfer_buffer(void) {
    pthread_once(&transfer_once, make_transfer_key);
    char *buffer = pthread_getspecific(transfer_key);
    if (!buffer && (buffer = malloc(NETMP_TRANSFER_BUFFER))) pthread_setspecific(transfer_key, buffer);
    return buffer;
}

// sendfile from a file to a netmp socket: read and send through the thread's buffer. On a
// blocking socket the whole count moves, as Linux's does; on a non-blocking one what fits.
// The file's offset (or position) moves by what was sent.
enum { sendfile_chunk = NETMP_TRANSFER_BUFFER };

ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count) {
    void *socket = netmp_socket_of(out_fd);
    if (!socket) return REAL(sendfile)(out_fd, in_fd, offset, count);
    if (netmp_socket_of(in_fd)) { errno = EINVAL; return -1; } // a socket is no source
    char *buffer = netmp_transfer_buffer();
    if (!buffer) { errno = ENOMEM; return -1; }
    if (count > 0x7ffff000) count = 0x7ffff000; // Linux's MAX_RW_COUNT
    size_t done = 0;
    off_t position = offset ? *offset : 0;
    while (done < count) {
        size_t n = count - done < sendfile_chunk ? count - done : sendfile_chunk;
        ssize_t got = offset ? REAL(pread)(in_fd, buffer, n, position) : REAL(read)(in_fd, buffer, n);
        if (got <= 0) {
            if (got < 0 && done == 0) return -1; // the file's errno
            break;
        }
        ssize_t r = netmp_send(socket, buffer, (size_t)got, 0, 0, NULL, 0);
        // Without an offset the file position moved by what was read: give back what was not sent.
        if (!offset && r < got) lseek(in_fd, (r < 0 ? 0 : r) - got, SEEK_CUR);
        if (r < 0) {
            if (done > 0) break; // what moved is the answer; the error comes with the next call
            return sent(r, 0);
        }
        done += (size_t)r;
        position += r;
        if (r < got) break; // non-blocking and full, or interrupted
    }
    if (offset) *offset = position;
    return (ssize_t)done;
}

// The 64-bit names a binary built with _FILE_OFFSET_BITS=64 links against (the same
// functions on x86_64).
ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count) { return sendfile(out_fd, in_fd, offset, count); }
ssize_t pread64(int fd, void *bytes, size_t count, off_t offset) { return pread(fd, bytes, count, offset); }
ssize_t pwrite64(int fd, const void *bytes, size_t count, off_t offset) { return pwrite(fd, bytes, count, offset); }

// Positioned vectored I/O: ESPIPE on a socket, as the kernel says; the *v2 forms with
// offset -1 (the current position) act as readv/writev.
ssize_t preadv(int fd, const struct iovec *iov, int count, off_t offset) {
    if (netmp_socket_of(fd)) { errno = ESPIPE; return -1; }
    return REAL(preadv)(fd, iov, count, offset);
}
ssize_t pwritev(int fd, const struct iovec *iov, int count, off_t offset) {
    if (netmp_socket_of(fd)) { errno = ESPIPE; return -1; }
    return REAL(pwritev)(fd, iov, count, offset);
}
ssize_t preadv64(int fd, const struct iovec *iov, int count, off_t offset) { return preadv(fd, iov, count, offset); }
ssize_t pwritev64(int fd, const struct iovec *iov, int count, off_t offset) { return pwritev(fd, iov, count, offset); }
ssize_t preadv2(int fd, const struct iovec *iov, int count, off_t offset, int flags) {
    if (netmp_socket_of(fd)) {
        if (offset != -1) { errno = ESPIPE; return -1; }
        return readv(fd, iov, count);
    }
    return REAL(preadv2)(fd, iov, count, offset, flags);
}
ssize_t pwritev2(int fd, const struct iovec *iov, int count, off_t offset, int flags) {
    if (netmp_socket_of(fd)) {
        if (offset != -1) { errno = ESPIPE; return -1; }
        return writev(fd, iov, count);
    }
    return REAL(pwritev2)(fd, iov, count, offset, flags);
}

// The glibc fortify variants a binary built with _FORTIFY_SOURCE calls instead.
ssize_t __read_chk(int fd, void *bytes, size_t count, size_t size) {
    if (count > size) abort();
    return read(fd, bytes, count);
}
ssize_t __recv_chk(int fd, void *bytes, size_t count, size_t size, int flags) {
    if (count > size) abort();
    return recv(fd, bytes, count, flags);
}
ssize_t __recvfrom_chk(int fd, void *bytes, size_t count, size_t size, int flags, struct sockaddr *address,
                       socklen_t *length) {
    if (count > size) abort();
    return recvfrom(fd, bytes, count, flags, address, length);
}

// MARK: Descriptors

int fcntl(int fd, int command, ...) {
    va_list list;
    va_start(list, command);
    long argument = va_arg(list, long);
    va_end(list);
    void *socket = netmp_socket_of(fd); // not "in use": a child may set FD_CLOEXEC before exec
    if (!socket) return REAL(fcntl)(fd, command, argument);
    switch (command) {
    case F_GETFL: return O_RDWR | (netmp_is_nonblocking(socket) ? O_NONBLOCK : 0);
    case F_SETFL: netmp_set_nonblocking(socket, (argument & O_NONBLOCK) != 0); return 0;
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        int copy = REAL(fcntl)(fd, command, argument);
        if (copy < 0) return -1;
        if (copy >= NETMP_DESCRIPTORS) { REAL(close)(copy); errno = EMFILE; return -1; }
        netmp_socket_retain(socket);
        atomic_store_explicit(&sockets[copy], socket, memory_order_release);
        return copy;
    }
    default: return REAL(fcntl)(fd, command, argument); // F_GETFD/F_SETFD and the rest: the placeholder's
    }
}

int fcntl64(int fd, int command, ...) {
    va_list list;
    va_start(list, command);
    long argument = va_arg(list, long);
    va_end(list);
    return fcntl(fd, command, argument);
}

int ioctl(int fd, unsigned long request, ...) {
    va_list list;
    va_start(list, request);
    void *argument = va_arg(list, void *);
    va_end(list);
    void *socket = netmp_socket_of(fd);
    if (!socket) return REAL(ioctl)(fd, request, argument);
    switch (request) {
    case FIONBIO: netmp_set_nonblocking(socket, *(int *)argument != 0); return 0;
    // SIOCINQ and SIOCOUTQ are FIONREAD and TIOCOUTQ.
    case FIONREAD: case TIOCOUTQ: case SIOCOUTQNSD: case SIOCATMARK: {
        int which = request == FIONREAD ? 0 : request == TIOCOUTQ ? 1 : request == SIOCOUTQNSD ? 2 : 3;
        int count = netmp_ioctl_count(socket, which);
        if (count < 0) { errno = -count; return -1; }
        *(int *)argument = count;
        return 0;
    }
    // Close-on-exec belongs to the descriptor, which is the placeholder.
    case FIOCLEX: case FIONCLEX: return REAL(ioctl)(fd, request, argument);
    default: errno = ENOTTY; return -1;
    }
}

static int duplicate_onto(int old_fd, int new_fd, int flags, int three) {
    if (old_fd != new_fd && library_descriptor(new_fd)) { errno = EBADF; return -1; }
    void *socket = netmp_socket_of(old_fd);
    void *replaced = netmp_socket_of(new_fd);
    if (!socket && !replaced) {
        int r = three ? REAL(dup3)(old_fd, new_fd, flags) : REAL(dup2)(old_fd, new_fd);
        if (r >= 0 && old_fd != new_fd) {
            netmp_descriptors_closing((uint32_t)new_fd, (uint32_t)new_fd);
            netmp_epoll_descriptor_closed(new_fd);
        }
        return r;
    }
    if (old_fd == new_fd) {
        if (three) { errno = EINVAL; return -1; }
        return new_fd;
    }
    if (new_fd < 0 || new_fd >= NETMP_DESCRIPTORS) { errno = EBADF; return -1; }
    int r = three ? REAL(dup3)(old_fd, new_fd, flags) : REAL(dup2)(old_fd, new_fd);
    if (r < 0) return r;
    // The kernel closed what new_fd was; so does the socket it stood for.
    netmp_descriptors_closing((uint32_t)new_fd, (uint32_t)new_fd);
    netmp_epoll_descriptor_closed(new_fd);
    void *before = atomic_exchange_explicit(&sockets[new_fd], socket, memory_order_acq_rel);
    if (socket) netmp_socket_retain(socket);
    if (before) netmp_socket_close(before);
    if (socket) netmp_stdio_follow(new_fd);
    return r;
}

int dup2(int old_fd, int new_fd) { return duplicate_onto(old_fd, new_fd, 0, 0); }
int dup3(int old_fd, int new_fd, int flags) { return duplicate_onto(old_fd, new_fd, flags, 1); }

int dup(int fd) {
    void *socket = netmp_socket_of(fd);
    int copy = REAL(dup)(fd);
    if (copy < 0 || !socket) return copy;
    if (copy >= NETMP_DESCRIPTORS) { REAL(close)(copy); errno = EMFILE; return -1; }
    netmp_socket_retain(socket);
    atomic_store_explicit(&sockets[copy], socket, memory_order_release);
    return copy;
}
