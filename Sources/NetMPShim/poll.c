// poll, ppoll, select and pselect over any mix of netmp sockets and kernel descriptors.
//
// netmp sockets report their readiness from the stack's published state. To sleep, the
// caller registers as a poller on each netmp socket (its Doorbell), checks once more, and
// then sleeps in the kernel's ppoll on the kernel descriptors plus the sockets'
// placeholders, which the stack's bells inside make readable on any change while someone
// polls: no busy loop when idle and no lost wakeup (docs/SHIM.md has the argument).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include "netmp.h"
#include "shim.h"

DEFINE_REAL(int, ppoll, struct pollfd *, nfds_t, const struct timespec *, const sigset_t *)
DEFINE_REAL(int, select, int, fd_set *, fd_set *, fd_set *, struct timeval *)
DEFINE_REAL(int, pselect, int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *)

// netmp readiness of entry `i` (0 for kernel descriptors).
static short netmp_events(struct pollfd *entry) {
    void *socket = netmp_socket_of(entry->fd);
    if (!socket) return 0;
    return netmp_readiness(socket) & (entry->events | POLLERR | POLLHUP);
}

// The poll loop. timeout_ns < 0: forever.
static int netmp_ppoll(struct pollfd *fds, nfds_t n, long long timeout_ns, const sigset_t *mask) {
    nfds_t sockets = 0;
    for (nfds_t i = 0; i < n; i++) if (netmp_socket_of(fds[i].fd)) sockets++;
    if (sockets == 0) {
        struct timespec t = { timeout_ns / 1000000000LL, timeout_ns % 1000000000LL };
        return REAL(ppoll)(fds, n, timeout_ns < 0 ? NULL : &t, mask);
    }
    // Only netmp sockets, and one of them ready: the answer needs no system call, no clock
    // and no second look (a sender's select before each datagram asks just this).
    int looked = 0; // that look found none ready: the loop's first need not look again
    if (sockets == n && mask == NULL) {
        int ready = 0;
        for (nfds_t i = 0; i < n; i++) if ((fds[i].revents = netmp_events(&fds[i]))) ready++;
        if (ready) return ready;
        looked = 1;
    }
    // The kernel's array: fds with netmp entries disabled (fd -1), then the placeholders
    // and the listeners' kernel twins.
    struct pollfd small[64];
    size_t total = n + 2 * sockets;
    struct pollfd *kernel = total <= 64 ? small : malloc(total * sizeof *kernel);
    // Each socket registered as a poller, its number, and where its placeholder sits in
    // `kernel` (-1: none).
    struct registration { void *socket; int fd; long bell; };
    struct registration entered_small[64];
    struct registration *entered = sockets <= 64 ? entered_small : malloc(sockets * sizeof *entered);
    if (!kernel || !entered) {
        if (kernel != small) free(kernel);
        if (entered != entered_small) free(entered);
        errno = ENOMEM;
        return -1;
    }
    long long deadline = timeout_ns < 0 ? -1 : netmp_now_ns() + timeout_ns;
    int result;
    for (;;) {
        int ready = 0;
        if (!looked) for (nfds_t i = 0; i < n; i++) if (netmp_events(&fds[i])) ready++;
        looked = 0;
        long long left = deadline < 0 ? -1 : deadline - netmp_now_ns();
        if (deadline >= 0 && left < 0) left = 0;
        int sleeping = !ready && left != 0;
        nfds_t bells = 0, registered = 0;
        if (sleeping) {
            // Register on every netmp socket, then look once more: a change published
            // before the registration is seen here, one after it rings a placeholder.
            for (nfds_t i = 0; i < n; i++) {
                void *socket = netmp_socket_of(fds[i].fd);
                if (!socket) continue;
                int bell = netmp_poll_enter(socket, fds[i].fd);
                entered[registered++] = (struct registration){ socket, fds[i].fd, bell >= 0 ? (long)(n + bells) : -1 };
                if (bell >= 0) kernel[n + bells++] = (struct pollfd){ bell, POLLIN, 0 };
                int twin = netmp_twin(socket); // a loopback connection for a listener
                if (twin >= 0) kernel[n + bells++] = (struct pollfd){ twin, POLLIN, 0 };
            }
            for (nfds_t i = 0; i < n && sleeping; i++) if (netmp_events(&fds[i])) sleeping = 0;
        }
        nfds_t kernel_descriptors = 0;
        for (nfds_t i = 0; i < n; i++) {
            kernel[i] = fds[i];
            kernel[i].revents = 0;
            if (netmp_socket_of(fds[i].fd)) kernel[i].fd = -1;
            else if (fds[i].fd >= 0) kernel_descriptors++;
        }
        // Registered but not sleeping (the second look found something): poll without waiting,
        // and not at all when every descriptor is a netmp socket (nothing for the kernel to say;
        // a signal mask still needs the real call, which applies it).
        struct timespec wait = { 0, 0 };
        if (sleeping && left > 0) { wait.tv_sec = left / 1000000000LL; wait.tv_nsec = left % 1000000000LL; }
        int r = !sleeping && kernel_descriptors == 0 && mask == NULL
            ? 0 : REAL(ppoll)(kernel, sleeping ? n + bells : n, sleeping && left < 0 ? NULL : &wait, mask);
        int saved = errno;
        // A bell the kernel saw rung holds a count the last poller must take out, or the
        // next sleep would end at once; an unrung one is left alone (no call to make). A
        // number another thread closed meanwhile is not emptied: it may name another file.
        for (nfds_t i = 0; i < registered; i++) {
            long bell = entered[i].bell;
            if (bell < 0) continue;
            void *socket = entered[i].socket;
            int fd = netmp_socket_of(entered[i].fd) == socket ? entered[i].fd : -1;
            netmp_poll_leave(socket, fd, r > 0 && (kernel[bell].revents & POLLIN));
        }
        if (r < 0) { errno = saved; result = -1; break; }
        ready = 0;
        for (nfds_t i = 0; i < n; i++) {
            fds[i].revents = netmp_socket_of(fds[i].fd) ? netmp_events(&fds[i]) : kernel[i].revents;
            if (fds[i].revents) ready++;
        }
        if (ready || left == 0 || (deadline >= 0 && netmp_now_ns() >= deadline)) { result = ready; break; }
    }
    if (kernel != small) free(kernel);
    if (entered != entered_small) free(entered);
    return result;
}

int poll(struct pollfd *fds, nfds_t n, int timeout_ms) {
    return netmp_ppoll(fds, n, timeout_ms < 0 ? -1 : (long long)timeout_ms * 1000000LL, NULL);
}

int __poll_chk(struct pollfd *fds, nfds_t n, int timeout_ms, size_t size) {
    if (n > size / sizeof *fds) abort();
    return poll(fds, n, timeout_ms);
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *mask) {
    if (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000L)) {
        errno = EINVAL;
        return -1;
    }
    return netmp_ppoll(fds, n, timeout ? (long long)timeout->tv_sec * 1000000000LL + timeout->tv_nsec : -1, mask);
}

int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *mask, size_t size) {
    if (n > size / sizeof *fds) abort();
    return ppoll(fds, n, timeout, mask);
}

// select as poll: one entry per descriptor in any set; results back into the sets.
static int netmp_select(int nfds, fd_set *readers, fd_set *writers, fd_set *errors, long long timeout_ns,
                        const sigset_t *mask) {
    if (nfds < 0 || nfds > FD_SETSIZE) { errno = EINVAL; return -1; }
    struct pollfd entries[FD_SETSIZE];
    int n = 0;
    for (int fd = 0; fd < nfds; fd++) {
        short events = 0;
        if (readers && FD_ISSET(fd, readers)) events |= POLLIN;
        if (writers && FD_ISSET(fd, writers)) events |= POLLOUT;
        if (errors && FD_ISSET(fd, errors)) events |= POLLPRI;
        if (events) entries[n++] = (struct pollfd){ fd, events, 0 };
    }
    int r = netmp_ppoll(entries, (nfds_t)n, timeout_ns, mask);
    if (r < 0) return -1;
    for (int i = 0; i < n; i++) {
        if (entries[i].revents & POLLNVAL) { errno = EBADF; return -1; }
    }
    if (readers) FD_ZERO(readers);
    if (writers) FD_ZERO(writers);
    if (errors) FD_ZERO(errors);
    int count = 0;
    for (int i = 0; i < n; i++) {
        short got = entries[i].revents, asked = entries[i].events;
        if ((asked & POLLIN) && (got & (POLLIN | POLLHUP | POLLERR))) { FD_SET(entries[i].fd, readers); count++; }
        if ((asked & POLLOUT) && (got & (POLLOUT | POLLERR))) { FD_SET(entries[i].fd, writers); count++; }
        if ((asked & POLLPRI) && (got & POLLPRI)) { FD_SET(entries[i].fd, errors); count++; }
    }
    return count;
}

static int any_netmp(int nfds, fd_set *a, fd_set *b, fd_set *c) {
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
        if ((a && FD_ISSET(fd, a)) || (b && FD_ISSET(fd, b)) || (c && FD_ISSET(fd, c)))
            if (netmp_socket_of(fd)) return 1;
    }
    return 0;
}

int select(int nfds, fd_set *readers, fd_set *writers, fd_set *errors, struct timeval *timeout) {
    if (!any_netmp(nfds, readers, writers, errors)) {
        return REAL(select)(nfds, readers, writers, errors, timeout);
    }
    if (timeout && (timeout->tv_sec < 0 || timeout->tv_usec < 0)) { errno = EINVAL; return -1; }
    long long ns = timeout ? (long long)timeout->tv_sec * 1000000000LL + (long long)timeout->tv_usec * 1000LL : -1;
    long long start = netmp_now_ns();
    int r = netmp_select(nfds, readers, writers, errors, ns, NULL);
    if (timeout && r >= 0) { // Linux writes back the time left
        long long left = ns - (netmp_now_ns() - start);
        if (left < 0) left = 0;
        timeout->tv_sec = left / 1000000000LL;
        timeout->tv_usec = (left % 1000000000LL) / 1000;
    }
    return r;
}

int pselect(int nfds, fd_set *readers, fd_set *writers, fd_set *errors, const struct timespec *timeout,
            const sigset_t *mask) {
    if (!any_netmp(nfds, readers, writers, errors)) {
        return REAL(pselect)(nfds, readers, writers, errors, timeout, mask);
    }
    long long ns = timeout ? (long long)timeout->tv_sec * 1000000000LL + timeout->tv_nsec : -1;
    return netmp_select(nfds, readers, writers, errors, ns, mask);
}
