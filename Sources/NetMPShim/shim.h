// What the shim's C files share: the descriptor table (fd -> stack handle).
#ifndef NETMP_SHIM_INTERNAL_H
#define NETMP_SHIM_INTERNAL_H
#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

// The one way the shim reaches libc's own definition of a symbol it interposes: the next
// definition (dlsym RTLD_NEXT), looked up on first use (a call may come before the
// library's constructor, from another library's). A file declares each it calls with
// DEFINE_REAL(result, name, parameter types...) and calls REAL(name)(arguments); REAL(name)
// is NULL where libc lacks the symbol (an older glibc's epoll_pwait2).
#define REAL(name) real_##name()
#define DEFINE_REAL(ret, name, ...)                                              \
    static ret (*name##_next)(__VA_ARGS__);                                      \
    static inline ret (*real_##name(void))(__VA_ARGS__) {                        \
        if (!name##_next) name##_next = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name); \
        return name##_next;                                                      \
    }

#define NETMP_DESCRIPTORS 65536
extern _Atomic(void *) netmp_sockets[NETMP_DESCRIPTORS];

static inline void *netmp_socket_of(int fd) {
    if (fd < 0 || fd >= NETMP_DESCRIPTORS) return NULL;
    return atomic_load_explicit(&netmp_sockets[fd], memory_order_acquire);
}
// Monotonic time in nanoseconds (poll, epoll and recvmmsg deadlines).
static inline long long netmp_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}
// epoll.c: descriptor fd is being closed (close, or dup2/dup3 over it).
__attribute__((visibility("hidden"))) void netmp_epoll_descriptor_closed(int fd);
// epoll.c: descriptor fd changes from a netmp socket to a kernel socket (interpose.c's
// to_kernel): `moving` before the kernel socket takes the number, `moved` after, with
// whether it did (0: the netmp socket keeps it). Every set that held fd holds it after.
__attribute__((visibility("hidden"))) void netmp_epoll_moving(int fd);
__attribute__((visibility("hidden"))) void netmp_epoll_moved(int fd, int moved);
// epoll.c: a forked child drops its sets' netmp members and renews their locks.
__attribute__((visibility("hidden"))) void netmp_epoll_after_fork(void);
// signals.c: whether the program may read (`storing`: and write) each page of
// [start, start + length), touched under a guard against the fault: 0 where the kernel's
// copy would fail with EFAULT.
__attribute__((visibility("hidden"))) int netmp_accessible(const void *start, size_t length, int storing);
// interpose.c: the calling thread's 64 KiB buffer for sendfile and splice (NULL: no memory).
#define NETMP_TRANSFER_BUFFER (1 << 16)
__attribute__((visibility("hidden"))) char *netmp_transfer_buffer(void);
// stdio.c: a netmp socket now stands at descriptor fd; 0, 1 and 2 take their stream along.
__attribute__((visibility("hidden"))) void netmp_stdio_follow(int fd);
// ancillary.c: recvmsg's control messages for a received datagram, as Linux lays them out.
struct msghdr;
struct netmp_datagram_info;
__attribute__((visibility("hidden"))) void netmp_put_ancillary(struct msghdr *m, unsigned int wanted, int ipv6_socket,
                                                               const struct netmp_datagram_info *info);
// send_control.c: sendmsg's control messages for one datagram (its marking: NETMP_SEND_*),
// or -errno as Linux refuses them. `ipv4`: the datagram goes to an IPv4 peer.
struct msghdr;
__attribute__((visibility("hidden"))) int netmp_read_send_control(void *socket, const struct msghdr *m, int ipv4,
                                                                   uint32_t *marking, int *segment);
// ... and the one control message of an error from the error queue (IP_RECVERR, IPV6_RECVERR).
struct netmp_error_info;
__attribute__((visibility("hidden"))) void netmp_put_error(struct msghdr *m, int ipv6_socket, const struct netmp_error_info *info);
// exec.c and constructor.c: the environment variable that names the exec hand-off's memfd.
#define NETMP_EXEC_HANDOFF "NETMP_EXEC_HANDOFF"
// exec.c: whether an exec's environment preloads libnetmp (only then are sockets handed over).
__attribute__((visibility("hidden"))) int netmp_preloads_netmp(char *const envp[]);
// spawn.c: whether a child spawned now with environment `envp` would inherit a netmp
// socket that the interposed posix_spawn keeps for it (shell.c: system and popen).
__attribute__((visibility("hidden"))) int netmp_spawn_keeps_sockets(char *const envp[]);
// constructor.c: 1 while netmp runs, or before the first socket of a program it may run.
__attribute__((visibility("hidden"))) int netmp_may_run(void);
__attribute__((visibility("hidden"))) void netmp_start_on_first_socket(void);
#endif
