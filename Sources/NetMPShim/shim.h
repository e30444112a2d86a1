// What the shim's C files share: the descriptor table (fd -> stack handle).
#ifndef NETMP_SHIM_INTERNAL_H
#define NETMP_SHIM_INTERNAL_H
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#define NETMP_DESCRIPTORS 65536
extern _Atomic(void *) netmp_sockets[NETMP_DESCRIPTORS];

static inline void *netmp_socket_of(int fd) {
    if (fd < 0 || fd >= NETMP_DESCRIPTORS) return NULL;
    return atomic_load_explicit(&netmp_sockets[fd], memory_order_acquire);
}
// constructor.c: set in a forked child that holds listeners of a parent that did nothing
// but listen (a master process), until the child takes them over or closes them all.
extern atomic_int netmp_inherited_pending __attribute__((visibility("hidden")));
__attribute__((visibility("hidden"))) void *netmp_take_over_inherited(int fd);
__attribute__((visibility("hidden"))) void netmp_inherited_closed(int fd);

// netmp_socket_of for the calls that put a socket to use (accept, listen, poll, select,
// epoll_ctl ADD/MOD, options, names): in such a child, the first of them on an inherited
// listener takes the listeners over. close, dup and epoll_ctl DEL do not: a child that only
// drops what it inherited (redis' BGSAVE child) leaves the parent's stack alone.
static inline void *netmp_socket_in_use(int fd) {
    void *socket = netmp_socket_of(fd);
    if (!socket && atomic_load_explicit(&netmp_inherited_pending, memory_order_acquire))
        socket = netmp_take_over_inherited(fd);
    return socket;
}
// Monotonic time in nanoseconds (poll, epoll and recvmmsg deadlines).
static inline long long netmp_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}
// epoll.c: descriptor fd is being closed (close, or dup2/dup3 over it).
__attribute__((visibility("hidden"))) void netmp_epoll_descriptor_closed(int fd);
// epoll.c: a forked child drops its sets' netmp members and renews their locks.
__attribute__((visibility("hidden"))) void netmp_epoll_after_fork(void);
// constructor.c: 1 while netmp runs, or in a forked child that may still start a stack.
__attribute__((visibility("hidden"))) int netmp_may_run(void);
// constructor.c: a forked child whose parent is gone may start its own stack.
__attribute__((visibility("hidden"))) void netmp_restart_in_child(void);
__attribute__((visibility("hidden"))) void netmp_start_on_first_socket(void);
#endif
