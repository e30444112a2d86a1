#define _GNU_SOURCE
#include "netmp_linux.h"
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int netmp_tap_attach(const char *name, int flags, char actual[16]) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (flags & NETMP_TAP_MULTI_QUEUE) ifr.ifr_flags |= IFF_MULTI_QUEUE;
    if (flags & NETMP_TAP_VNET_HDR) ifr.ifr_flags |= IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    memcpy(actual, ifr.ifr_name, IFNAMSIZ);
    actual[IFNAMSIZ - 1] = 0;
    return fd;
}

int netmp_tap_set_offload(int fd, unsigned int offloads) {
    return ioctl(fd, TUNSETOFFLOAD, (unsigned long)offloads) < 0 ? -errno : 0;
}

int netmp_tap_set_vnet_header_size(int fd, int size) {
    return ioctl(fd, TUNSETVNETHDRSZ, &size) < 0 ? -errno : 0;
}

int netmp_tap_set_queue_enabled(int fd, int enabled) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = enabled ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
    return ioctl(fd, TUNSETQUEUE, &ifr) < 0 ? -errno : 0;
}

int netmp_tap_set_persistent(int fd, int persistent) {
    return ioctl(fd, TUNSETPERSIST, (unsigned long)persistent) < 0 ? -errno : 0;
}

int netmp_bpf_load_socket_filter(const uint64_t *instructions, int count, char *log, unsigned log_size) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = (uint64_t)(uintptr_t)instructions;
    attr.insn_cnt = (uint32_t)count;
    attr.license = (uint64_t)(uintptr_t)"GPL"; // no helper is called: the license decides nothing
    if (log && log_size) {
        log[0] = 0;
        attr.log_buf = (uint64_t)(uintptr_t)log;
        attr.log_size = log_size;
        attr.log_level = 1;
    }
    long fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
    if (fd < 0 && errno == ENOSPC && log) { // the log was too small; the program may be fine
        attr.log_buf = 0, attr.log_size = 0, attr.log_level = 0;
        fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
    }
    return fd < 0 ? -errno : (int)fd;
}

int netmp_tap_set_steering(int fd, int program) {
    return ioctl(fd, TUNSETSTEERINGEBPF, &program) < 0 ? -errno : 0;
}

// System calls, not libc: inside a preloaded program socket() is the shim's, and an
// AF_INET socket made while netmp runs would be one of netmp's (an eventfd).
static int interface_ioctl(const char *name, unsigned long request, struct ifreq *ifr) {
    int s = (int)syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
    int r = syscall(SYS_ioctl, s, request, ifr) < 0 ? -errno : 0;
    syscall(SYS_close, s);
    return r;
}

int netmp_interface_mac(const char *name, uint8_t mac[6]) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    int r = interface_ioctl(name, SIOCGIFHWADDR, &ifr);
    if (r == 0) memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    return r;
}

int netmp_interface_set_mac(const char *name, const uint8_t mac[6]) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_hwaddr.sa_family = 1; /* ARPHRD_ETHER */
    memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
    return interface_ioctl(name, SIOCSIFHWADDR, &ifr);
}

int netmp_interface_index(const char *name) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    int r = interface_ioctl(name, SIOCGIFINDEX, &ifr);
    return r < 0 ? r : ifr.ifr_ifindex;
}

int netmp_pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return -pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int netmp_allowed_cpus(int *cpus, int capacity) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) < 0) return -errno;
    int n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && n < capacity; cpu++)
        if (CPU_ISSET(cpu, &set)) cpus[n++] = cpu;
    return n;
}

int netmp_memfd(const char *name) {
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    return fd < 0 ? -errno : fd;
}

int netmp_seal_size(int fd) {
    return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0 ? -errno : 0;
}

int netmp_seal_read_only(int fd) {
    int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL;
    return fcntl(fd, F_ADD_SEALS, seals) < 0 ? -errno : 0;
}

#include <linux/falloc.h>
int netmp_punch_hole(int fd, long offset, long length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) < 0 ? -errno : 0;
}

int netmp_enter_network_namespace(int fd) { return setns(fd, CLONE_NEWNET) < 0 ? -errno : 0; }

#include <sys/random.h>
int netmp_random(void *buffer, unsigned long length) {
    return getrandom(buffer, length, 0) == (long)length ? 0 : -errno;
}

#include <sys/eventfd.h>
int netmp_eventfd(void) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

#include <linux/futex.h>
#include <sys/syscall.h>
int netmp_futex_wait(uint32_t *word, uint32_t expected, long timeout_ns) {
    struct timespec ts = { timeout_ns / 1000000000L, timeout_ns % 1000000000L };
    long r = syscall(SYS_futex, word, FUTEX_WAIT, expected, timeout_ns >= 0 ? &ts : NULL, NULL, 0);
    return r < 0 ? -errno : 0;
}

int netmp_futex_wake(uint32_t *word, int count) {
    long r = syscall(SYS_futex, word, FUTEX_WAKE, count, NULL, NULL, 0);
    return r < 0 ? -errno : (int)r;
}

#include <numaif.h>
// The NUMA node holding the page at `address`, or -errno.
int netmp_node_of_address(void *address) {
    int status = -1;
    void *pages[1] = { address };
    if (move_pages(0, 1, pages, NULL, &status, 0) < 0) return -errno;
    return status;
}

int netmp_doorbell_ring(int fd) {
    uint64_t one = 1;
    long r = syscall(SYS_write, fd, &one, sizeof one);
    return r < 0 ? -errno : 0;
}

int netmp_doorbell_drain(int fd) {
    uint64_t value;
    long r = syscall(SYS_read, fd, &value, sizeof value);
    return r < 0 ? -errno : 0;
}

#include <sys/epoll.h>
int netmp_placeholder(int cloexec) {
    int fd = (int)syscall(SYS_epoll_create1, cloexec ? EPOLL_CLOEXEC : 0);
    return fd < 0 ? -errno : fd;
}

int netmp_placeholder_join(int placeholder, int common) {
    struct epoll_event edge = { .events = EPOLLIN | EPOLLET };
    // A placeholder named again (its first name failed) or kept for a later socket has it.
    if (syscall(SYS_epoll_ctl, placeholder, EPOLL_CTL_ADD, common, &edge) < 0 && errno != EEXIST) return -errno;
    return 0;
}

int netmp_bell_into(int placeholder) {
    char path[64], target[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", placeholder);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0) return -errno;
    target[n] = 0;
    if (strcmp(target, "anon_inode:[eventpoll]") != 0) return -EINVAL;
    int bell = (int)syscall(SYS_eventfd2, 0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (bell < 0) return -errno;
    struct epoll_event edge = { .events = EPOLLIN | EPOLLET };
    if (syscall(SYS_epoll_ctl, placeholder, EPOLL_CTL_ADD, bell, &edge) < 0) {
        int error = errno;
        syscall(SYS_close, bell);
        return -error;
    }
    return bell;
}

int netmp_placeholder_drain(int placeholder) {
    struct epoll_event events[4];
    long r = syscall(SYS_epoll_wait, placeholder, events, 4, 0);
    return r < 0 ? -errno : 0;
}

int netmp_bells_make(void) {
    int fd = (int)syscall(SYS_epoll_create1, EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int netmp_bells_add(int bells, int bell) {
    struct epoll_event edge = { .events = EPOLLIN | EPOLLET };
    return syscall(SYS_epoll_ctl, bells, EPOLL_CTL_ADD, bell, &edge) < 0 ? -errno : 0;
}

int netmp_bells_remove(int bells, int bell) {
    return syscall(SYS_epoll_ctl, bells, EPOLL_CTL_DEL, bell, NULL) < 0 ? -errno : 0;
}

int netmp_bells_drain(int bells) {
    struct epoll_event events[16];
    long r;
    while ((r = syscall(SYS_epoll_wait, bells, events, 16, 0)) == 16) {}
    return r < 0 ? -errno : 0;
}

// Signals that ran on this thread with a handler installed without SA_RESTART (counted by
// the shim's signal trampoline). A blocking socket call that sees the count change across
// an interrupted futex wait fails with EINTR, as the kernel's would; other signals restart.
static _Thread_local unsigned interrupting_signals;
unsigned netmp_interrupting_signals(void) { return interrupting_signals; }
void netmp_note_interrupting_signal(void) { interrupting_signals++; }

// The wait word this thread sleeps on (WaitWord.wait): its count of sleepers, which the
// thread joined, and the word. A signal handler may interrupt the sleep and jump out of it
// (siglongjmp), past the wait's own step out of the count, which would stay one too high
// for good. So the trampoline steps out for it before the handler runs
// (netmp_handler_begins) and back in if the handler returns (netmp_handler_ends), moving
// the word as it does, so that a futex wait the kernel restarts returns at once and looks
// again rather than sleep through a wake it was not counted for.
static _Thread_local uint32_t *volatile sleeping_count;
static _Thread_local uint32_t *volatile sleeping_word;

void netmp_sleep_announce(uint32_t *count, uint32_t *word) {
    __atomic_fetch_add(count, 1, __ATOMIC_SEQ_CST);
    sleeping_word = word;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    sleeping_count = count;
}

void netmp_sleep_withdraw(void) {
    uint32_t *count = sleeping_count;
    sleeping_count = NULL;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (count) __atomic_fetch_sub(count, 1, __ATOMIC_SEQ_CST);
}

netmp_sleep netmp_handler_begins(void) {
    netmp_sleep taken = { sleeping_count, sleeping_word };
    if (taken.count) {
        sleeping_count = NULL;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        __atomic_fetch_sub(taken.count, 1, __ATOMIC_SEQ_CST);
    }
    return taken;
}

void netmp_handler_ends(netmp_sleep taken) {
    if (!taken.count) return;
    __atomic_fetch_add(taken.count, 1, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(taken.word, 1, __ATOMIC_SEQ_CST);
    sleeping_word = taken.word;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    sleeping_count = taken.count;
}

// Signals deferred while this thread is between taking a place in a shared ring and
// publishing it (docs/SHIM.md, Signals). A handler that jumped out of that stretch
// (iperf3's longjmps to its exit) would leave a reservation nobody commits, and every later
// writer of the ring, and the core reading it, would wait behind it forever. The kernel
// never runs a handler in the middle of its own copy either: it runs it on the way out of
// the call. The shim's trampoline asks `netmp_signal_deferred` first; a deferred signal is
// queued again to this thread, with its siginfo, when the stretch ends.
#include <signal.h>
static _Thread_local volatile sig_atomic_t deferring;
enum { deferred_slots = 8 };
static _Thread_local volatile sig_atomic_t deferred_signal[deferred_slots]; // 0: free
static _Thread_local siginfo_t deferred_info[deferred_slots];
static _Thread_local volatile sig_atomic_t deferred_any;

void netmp_defer_signals(void) {
    deferring++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

// Queues every deferred signal again to this thread, with its own siginfo (a thread may
// queue any siginfo to itself, kill's and SIGCHLD's too); each handler runs on the way out
// of the system call, where the program's code would have met it.
static void redeliver(void) {
    pid_t process = getpid(), thread = (pid_t)syscall(SYS_gettid);
    for (int i = 0; i < deferred_slots; i++) {
        int signal = deferred_signal[i];
        if (signal == 0) continue;
        siginfo_t info = deferred_info[i];
        deferred_signal[i] = 0;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        if (syscall(SYS_rt_tgsigqueueinfo, process, thread, signal, &info) != 0) syscall(SYS_tgkill, process, thread, signal);
    }
    // Only now: a handler that jumps out of the loop above leaves the rest for the end
    // of the next stretch.
    deferred_any = 0;
}

void netmp_deliver_deferred_signals(void) {
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (deferring == 0) return; // a stretch a fault ended (netmp_signal_deferred)
    if (--deferring == 0 && deferred_any) redeliver();
}

int netmp_signal_deferred(int signal, const void *info) {
    if (!deferring) return 0;
    // A fault is this thread's own instruction: it must run now, or it would fault again.
    // Its handler may jump out of the stretch (a program that recovers from its own bad
    // pointer), so the stretch ends here: signals must not wait for an end that never comes.
    if (signal == SIGSEGV || signal == SIGBUS || signal == SIGFPE || signal == SIGILL || signal == SIGTRAP || signal == SIGSYS) {
        deferring = 0;
        if (deferred_any) redeliver(); // their handlers run at once, before the fault's
        return 0;
    }
    int free = -1;
    for (int i = 0; i < deferred_slots; i++) {
        if (deferred_signal[i] == signal && signal < SIGRTMIN) return 1; // pending once, as the kernel keeps it
        if (deferred_signal[i] == 0 && free < 0) free = i;
    }
    if (free < 0) return 0; // more than the slots hold: this one runs now
    deferred_info[free] = *(const siginfo_t *)info;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    deferred_signal[free] = signal;
    deferred_any = 1;
    return 1;
}

#include <stddef.h>
#include <sys/resource.h>
#include <sys/un.h>
// The abstract address of `name` (a leading NUL, no terminator); its length, or -ENAMETOOLONG.
static int abstract_address(const char *name, struct sockaddr_un *address) {
    size_t length = strlen(name);
    if (length + 1 > sizeof(address->sun_path)) return -ENAMETOOLONG;
    memset(address, 0, sizeof *address);
    address->sun_family = AF_UNIX;
    memcpy(address->sun_path + 1, name, length);
    return (int)(offsetof(struct sockaddr_un, sun_path) + 1 + length);
}

int netmp_attach_listen(const char *name) {
    struct sockaddr_un address;
    int length = abstract_address(name, &address);
    if (length < 0) return length;
    int fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    if (syscall(SYS_bind, fd, &address, length) < 0 || syscall(SYS_listen, fd, 128) < 0) {
        int error = errno;
        syscall(SYS_close, fd);
        return -error;
    }
    return fd;
}

int netmp_attach_connect(const char *name) {
    struct sockaddr_un address;
    int length = abstract_address(name, &address);
    if (length < 0) return length;
    int fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (syscall(SYS_connect, fd, &address, length) < 0) {
        int error = errno;
        syscall(SYS_close, fd);
        return -error;
    }
    return fd;
}

int netmp_attach_accept(int listener, uint32_t *uid, int32_t *pid) {
    int fd = (int)syscall(SYS_accept4, listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return -errno;
    struct ucred credentials;
    socklen_t size = sizeof credentials;
    if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_PEERCRED, &credentials, &size) < 0) {
        int error = errno;
        syscall(SYS_close, fd);
        return -error;
    }
    *uid = credentials.uid;
    *pid = credentials.pid;
    return fd;
}

#define NETMP_MESSAGE_FDS 64
int netmp_message_send(int fd, const void *bytes, int length, const int *fds, int count) {
    if (count < 0 || count > NETMP_MESSAGE_FDS) return -EINVAL;
    union { struct cmsghdr align; char space[CMSG_SPACE(sizeof(int) * NETMP_MESSAGE_FDS)]; } control;
    struct iovec part = { (void *)bytes, (size_t)length };
    struct msghdr message = { .msg_iov = &part, .msg_iovlen = 1 };
    if (count > 0) {
        memset(&control, 0, sizeof control);
        message.msg_control = control.space;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * count);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * count);
    }
    long sent;
    do sent = syscall(SYS_sendmsg, fd, &message, MSG_NOSIGNAL); while (sent < 0 && errno == EINTR);
    return sent < 0 ? -errno : (int)sent;
}

int netmp_message_receive(int fd, void *bytes, int length, int *fds, int capacity, int *count) {
    union { struct cmsghdr align; char space[CMSG_SPACE(sizeof(int) * NETMP_MESSAGE_FDS)]; } control;
    struct iovec part = { bytes, (size_t)length };
    struct msghdr message = { .msg_iov = &part, .msg_iovlen = 1,
                              .msg_control = control.space, .msg_controllen = sizeof control.space };
    *count = 0;
    long received;
    do received = syscall(SYS_recvmsg, fd, &message, MSG_CMSG_CLOEXEC); while (received < 0 && errno == EINTR);
    if (received < 0) return -errno;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        int carried = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *given = (int *)CMSG_DATA(header);
        for (int i = 0; i < carried; i++) {
            if (*count < capacity) fds[(*count)++] = given[i];
            else syscall(SYS_close, given[i]);
        }
    }
    return (int)received;
}

long netmp_raise_descriptor_limit(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) < 0) return -errno;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) < 0) return -errno;
    return (long)limit.rlim_cur;
}

int netmp_spawn_stack(const char *path, char *const argv[], char *const envp[]) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    if (posix_spawn_file_actions_init(&actions) != 0) return -ENOMEM;
    if (posix_spawnattr_init(&attributes) != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return -ENOMEM;
    }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    // Default signal dispositions and an empty mask: the program's (an ignored SIGTERM, a
    // blocked SIGINT) are not the stack's.
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    // A process group of its own, out of the terminal's reach, but the program's session:
    // the stack shares its scheduling group (Stack.swift's detach says why that matters).
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int e = posix_spawn(&pid, path, &actions, &attributes, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (e != 0) return -e;
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -errno; // ECHILD: the program reaped it (SIGCHLD ignored or a handler)
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int netmp_close_from(int first) {
    return syscall(SYS_close_range, (unsigned)first, ~0U, 0) < 0 ? -errno : 0;
}

const char *netmp_object_path(const void *address) {
    Dl_info info;
    return dladdr(address, &info) != 0 ? info.dli_fname : NULL;
}

// Raw system calls here and below: in a client they run inside a preloaded program,
// whose dup3, fcntl and close the shim interposes (an F_DUPFD of a socket's descriptor
// would count as another descriptor of the socket).
int netmp_place_file(int from, int onto, int cloexec) {
    return syscall(SYS_dup3, from, onto, cloexec ? O_CLOEXEC : 0) < 0 ? -errno : 0;
}

int netmp_copy_descriptor(int fd, int cloexec) {
    long copy = syscall(SYS_fcntl, fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
    return copy < 0 ? -errno : (int)copy;
}

int netmp_close_descriptor(int fd) {
    return syscall(SYS_close, fd) < 0 ? -errno : 0;
}

int netmp_set_close_on_exec(int fd, int on) {
    return syscall(SYS_fcntl, fd, F_SETFD, on ? FD_CLOEXEC : 0) < 0 ? -errno : 0;
}

int netmp_hand_down(const void *bytes, long length) {
    int fd = memfd_create("netmp-exec", 0); // not close-on-exec: it is what the exec carries
    if (fd < 0) return -errno;
    for (long done = 0; done < length;) {
        long n = syscall(SYS_pwrite64, fd, (const char *)bytes + done, length - done, done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { int e = n < 0 ? errno : EIO; syscall(SYS_close, fd); return -e; }
        done += n;
    }
    return fd;
}

long netmp_take_handed_down(int fd, void *bytes, long capacity) {
    long done = 0;
    while (done < capacity) {
        long n = syscall(SYS_pread64, fd, (char *)bytes + done, capacity - done, done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { done = -errno; break; }
        if (n == 0) break;
        done += n;
    }
    syscall(SYS_close, fd);
    return done;
}

int netmp_duplicate_high(int fd) {
    if (fd < 0) return fd;
    struct rlimit limit;
    long base = 0;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur >= 256) {
        base = (long)(limit.rlim_cur > 65536 ? 65536 : limit.rlim_cur) - 128;
    }
    long copy = syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, base);
    if (copy < 0 && base > 0) copy = syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 0); // none free up there
    return copy < 0 ? -errno : (int)copy;
}

int netmp_move_high(int fd) {
    if (fd < 0) return fd;
    int moved = netmp_duplicate_high(fd);
    if (moved < 0) return fd; // no copy: it stays where it is
    syscall(SYS_close, fd);
    return moved;
}

int netmp_descriptor_readable(int fd) {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    struct timespec now = { 0, 0 };
    long r = syscall(SYS_ppoll, &p, 1, &now, NULL, 0);
    return r < 0 ? -errno : (r > 0 && (p.revents & POLLIN)) ? 1 : 0;
}
