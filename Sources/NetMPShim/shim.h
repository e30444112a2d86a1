// What the shim's C files share: the descriptor table (fd -> stack handle).
#ifndef NETMP_SHIM_INTERNAL_H
#define NETMP_SHIM_INTERNAL_H
#include <stdatomic.h>
#include <stddef.h>

#define NETMP_DESCRIPTORS 65536
extern _Atomic(void *) netmp_sockets[NETMP_DESCRIPTORS];

static inline void *netmp_socket_of(int fd) {
    if (fd < 0 || fd >= NETMP_DESCRIPTORS) return NULL;
    return atomic_load_explicit(&netmp_sockets[fd], memory_order_acquire);
}
// epoll.c: descriptor fd is being closed (close, or dup2/dup3 over it).
__attribute__((visibility("hidden"))) void netmp_epoll_descriptor_closed(int fd);
// epoll.c: a forked child drops its sets' netmp members and renews their locks.
__attribute__((visibility("hidden"))) void netmp_epoll_after_fork(void);
// constructor.c: a forked child whose parent is gone may start its own stack.
__attribute__((visibility("hidden"))) void netmp_restart_in_child(void);
#endif
