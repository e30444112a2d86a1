// Runs when the dynamic loader maps libnetmp.so into a program (LD_PRELOAD), before main,
// and at the program's first AF_INET socket(), where the program attaches to the stack
// serving NETMP_TAP (starting it if none does). Also what a forked child does: it joins
// the stack as a process of its own (docs/SHIM.md). Exit needs nothing: the stack sees
// the process's connection close and closes what only it held.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "netmp.h"
#include "routes.h"
#include "shim.h"

// An inherited netmp socket a forked child cannot share (a client has 64 processes at
// most) becomes an unconnected kernel socket of the same kind on the same number: the
// parent keeps the connection, the child gets the errors of a socket that never connected
// (ENOTCONN, EPIPE) and can close it. Raw system calls only: the interposed ones would
// reach the stack.
static void becomes_kernel_socket(int fd, int stream) {
    int cloexec = (int)syscall(SYS_fcntl, fd, F_GETFD) & FD_CLOEXEC;
    int kernel = (int)syscall(SYS_socket, AF_INET, stream ? SOCK_STREAM : SOCK_DGRAM, 0);
    if (kernel < 0) return; // the placeholder stays: reads and writes fail with EINVAL
    syscall(SYS_dup3, kernel, fd, cloexec ? O_CLOEXEC : 0);
    syscall(SYS_close, kernel);
}

// Attached: a thread of the library's own waits on the process's connection to the stack
// and, when it hangs up (the stack's process ended, SIGKILL included), fails every netmp
// socket and wakes every waiter, so that no call hangs on a stack that will never answer.
// It blocks every signal (the program's handlers run on the program's threads) and makes
// raw system calls only.
static void *watch_stack(void *arg) {
    int fd = (int)(intptr_t)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        struct pollfd p = { fd, POLLIN | POLLRDHUP, 0 };
        long r = syscall(SYS_ppoll, &p, 1, NULL, NULL, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return NULL;
        char byte;
        long n = syscall(SYS_recvfrom, fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT, NULL, NULL);
        if (n == 0 || (p.revents & (POLLHUP | POLLERR | POLLRDHUP))) break;
        if (n < 0 && errno != EAGAIN && errno != EINTR) break;
        if (n > 0) syscall(SYS_recvfrom, fd, &byte, 1, MSG_DONTWAIT, NULL, NULL); // the stack says nothing: drop it
    }
    // This process closed its own connection (a forked child replaces its parent's) only
    // before it starts its own watcher, so a hang-up here is the stack's.
    if (netmp_stack_connection() == fd) netmp_stack_ended();
    return NULL;
}

static void start_watching_stack(void) {
    int fd = netmp_stack_connection();
    if (fd < 0) return;
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 64 * 1024);
    if (pthread_create(&thread, &attributes, watch_stack, (void *)(intptr_t)fd) != 0)
        fprintf(stderr, "netmp: process %d: cannot start the thread that watches the stack; calls may hang if it ends\n",
                (int)getpid());
    pthread_attr_destroy(&attributes);
}

// The number of the child of the fork under way (prepare handler), -1 for none.
static int child_number = -1;

// fork(): the child keeps the client (its region is shared memory) and the sockets it
// inherited, as a kernel child does: the parent made it their holder before the fork. It
// joins the stack over a connection of its own, so that its end is seen apart from its
// parent's. A child without a number leaves the stack: its inherited sockets become
// kernel sockets, and so do its new ones.
static void netmp_forked_child(void) {
    if (!netmp_running()) return;
    if (child_number >= 0) {
        netmp_join_after_fork((uint32_t)child_number);
        start_watching_stack();
    } else {
        for (int fd = 0; fd < NETMP_DESCRIPTORS; fd++) {
            if (!netmp_socket_of(fd)) continue; // read first: writing every slot would copy the table's pages
            void *socket = atomic_exchange_explicit(&netmp_sockets[fd], NULL, memory_order_acq_rel);
            if (socket) becomes_kernel_socket(fd, netmp_is_stream(socket));
        }
        netmp_leave_stack();
    }
    netmp_epoll_after_fork();
}

// Before fork, in the parent: the child's number in the client, and each socket held by
// it too, however many descriptors this process has for it (a dup'ed descriptor shares
// its handle). A fork that fails leaves the number taken and its sockets held: they then
// close when the client's last process ends.
static void netmp_forking(void) {
    if (!netmp_running()) return;
    static uint64_t forks;
    forks++;
    child_number = netmp_number_for_child();
    if (child_number < 0) return;
    for (int fd = 0; fd < NETMP_DESCRIPTORS; fd++) {
        void *socket = netmp_socket_of(fd);
        if (socket) netmp_socket_share(socket, forks, (uint32_t)child_number);
    }
}

// vfork() is fork() here (POSIX allows it): a vfork child runs no fork handlers and shares
// the parent's memory, so a close before its exec (shells close descriptors there) would
// drop the parent's hold on a socket. A wrapper cannot call the real vfork: the child
// would return through this frame, which the suspended parent still needs.
pid_t vfork(void) { return fork(); }

// Whether netmp runs or may start later in this process (epoll instances made now get
// their shadow: a program makes its epoll set before its first socket, and the sockets
// it adds later must be watched through the shadow).
static int start_pending; // set at load, cleared when a start fails (below)
int netmp_may_run(void) { return netmp_running() || start_pending; }

// The program attaches to the stack (starting one if none serves its TAP) at its first
// AF_INET socket() (any thread; once), not at load: a preloaded sha256sum in a pipeline
// never touches the network.
static pthread_once_t first_socket = PTHREAD_ONCE_INIT;
static void start_stack(void) {
    if (netmp_start_from_environment() == 0) start_watching_stack();
    else start_pending = 0; // no NETMP_TAP, or said why on stderr: kernel sockets from now on
}
void netmp_start_on_first_socket(void) {
    if (start_pending) pthread_once(&first_socket, start_stack);
}

// After exec (exec.c): the sockets the old image handed over stand behind their
// descriptors again, in the table as socket() records them.
static void record_inherited(int fd, void *socket) {
    if (fd < 0 || fd >= NETMP_DESCRIPTORS) { netmp_socket_close(socket); return; }
    atomic_store_explicit(&netmp_sockets[fd], socket, memory_order_release);
    netmp_stdio_follow(fd);
}

// The hand-off's memfd, from NETMP_EXEC_HANDOFF (-1: none), for resume_stack.
static int handed_off = -1;

// A program exec'd by a netmp program that held connections: it attaches at load, over
// the connection its old image kept, and takes them over (or, if that fails, attaches as
// a program of its own would).
static void resume_stack(void) {
    if (netmp_resume_after_exec(handed_off, record_inherited) == 0) start_watching_stack();
    else start_stack();
}

__attribute__((constructor)) static void netmp_library_loaded(void) {
    const char *handoff = getenv(NETMP_EXEC_HANDOFF);
    if (handoff) {
        handed_off = atoi(handoff);
        unsetenv(NETMP_EXEC_HANDOFF); // this program's own children get their own, if any
    }
    if (netmp_routes_load() < 0 || netmp_check_environment() != 0) {
        // Not configured, or said why on stderr: the kernel's. Kept connections are let go.
        if (handed_off >= 0) netmp_resume_after_exec(handed_off, NULL);
        return;
    }
    start_pending = 1;
    pthread_atfork(netmp_forking, NULL, netmp_forked_child);
    if (handed_off >= 0) pthread_once(&first_socket, resume_stack);
}
