// Runs when the dynamic loader maps libnetmp.so into a program (LD_PRELOAD), before main:
// with NETMP_TAP set the stack comes up here, so even `sleep 30` answers ping. Also what
// happens to the stack at exit and in a forked child (docs/SHIM.md).
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "netmp.h"
#include "routes.h"
#include "shim.h"

// The process whose threads run the stack, and the stack's own descriptors.
static pid_t stack_process;
static int stack_descriptors[1024];
static int stack_descriptor_count;
// A forked child that lost its parent's stack may start its own (see socket()).
static int restart_allowed;

// exit(): the kernel would close every socket and keep sending what the program wrote
// after the process is gone; netmp's threads die with the process, so it does that work
// before. Registered in the constructor, the handler runs after the program's own atexit
// handlers (which may still write). _exit() and fatal signals skip it. A forked child
// that never started a stack of its own skips it too: it has no protocol threads.
static void netmp_program_exiting(void) {
    if (!netmp_running() || getpid() != stack_process) return;
    for (int fd = 0; fd < NETMP_DESCRIPTORS; fd++) {
        void *socket = atomic_exchange_explicit(&netmp_sockets[fd], NULL, memory_order_acq_rel);
        if (socket) netmp_socket_close_at_exit(socket);
    }
    netmp_finish_at_exit();
}

static void stack_started(void) {
    stack_process = getpid();
    stack_descriptor_count = netmp_stack_descriptors(stack_descriptors, 1024);
}

// fork(): only the calling thread goes on in the child, so the stack's threads do not.
// The child closes the stack's descriptors (its TAP queues would otherwise swallow
// frames), and each inherited netmp socket becomes an unconnected kernel socket of the
// same kind on the same number: the parent keeps the connection, the child gets the
// errors of a socket that never connected (ENOTCONN, EPIPE) and can close it. Raw
// system calls only: the interposed ones would reach the stack.
static void netmp_forked_child(void) {
    if (!netmp_running()) return;
    for (int i = 0; i < stack_descriptor_count; i++) syscall(SYS_close, stack_descriptors[i]);
    for (int fd = 0; fd < NETMP_DESCRIPTORS; fd++) {
        // Read first: writing every slot would copy the whole table's pages in each child.
        if (!netmp_socket_of(fd)) continue;
        void *socket = atomic_exchange_explicit(&netmp_sockets[fd], NULL, memory_order_acq_rel);
        if (!socket) continue;
        int type = netmp_is_stream(socket) ? SOCK_STREAM : SOCK_DGRAM;
        int cloexec = (int)syscall(SYS_fcntl, fd, F_GETFD) & FD_CLOEXEC;
        int kernel = (int)syscall(SYS_socket, AF_INET, type, 0);
        if (kernel < 0) continue; // the eventfd stays: reads see EAGAIN, never data
        syscall(SYS_dup3, kernel, fd, cloexec ? O_CLOEXEC : 0);
        syscall(SYS_close, kernel);
    }
    netmp_epoll_after_fork();
    netmp_forget_stack();
    restart_allowed = 1;
}

// Before fork, in the parent: the protocol threads stop at a point where they hold no lock,
// the Swift runtime's included, so the child never inherits a lock held by a thread it
// does not have. They go on as soon as the fork returns in the parent.
static void netmp_forking(void) {
    if (netmp_running() && getpid() == stack_process) netmp_park_for_fork();
}

static void netmp_forked_parent(void) {
    if (netmp_running() && getpid() == stack_process) netmp_unpark_after_fork();
}

// The first socket() of a forked child whose parent is gone (daemon(): the parent exits
// right after fork) starts a stack of its own on the TAP. With the parent still alive the
// TAP is the parent's: the child stays on kernel sockets, and says so once.
void netmp_restart_in_child(void) {
    if (!restart_allowed) return;
    restart_allowed = 0;
    for (int waited = 0; getppid() == stack_process && waited < 50; waited++) {
        struct timespec pause = { 0, 10 * 1000 * 1000 };
        nanosleep(&pause, NULL);
    }
    if (getppid() == stack_process) {
        fprintf(stderr, "netmp: forked child %d: the parent's stack serves the TAP; this process uses kernel sockets\n",
                (int)getpid());
        return;
    }
    if (netmp_start_from_environment() == 0) stack_started();
}

__attribute__((constructor)) static void netmp_library_loaded(void) {
    if (netmp_routes_load() < 0) return; // said why on stderr; every call stays the kernel's
    if (netmp_start_from_environment() != 0) return;
    stack_started();
    atexit(netmp_program_exiting);
    pthread_atfork(netmp_forking, netmp_forked_parent, netmp_forked_child);
}
