// Runs when the dynamic loader maps libnetmp.so into a program (LD_PRELOAD), before main,
// and at the program's first AF_INET socket(), where the stack comes up (with NETMP_TAP
// set): a preloaded program that never touches the network puts no stack on the TAP. Also
// what happens to the stack at exit and in a forked child (docs/SHIM.md).
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
// Attached to a stack service, every process closes the sockets it holds (one another
// process still holds is only forgotten) and the stack finishes sending.
static void netmp_program_exiting(void) {
    if (!netmp_running() || (!netmp_attached() && getpid() != stack_process)) return;
    for (int fd = 0; fd < NETMP_DESCRIPTORS; fd++) {
        void *socket = atomic_exchange_explicit(&netmp_sockets[fd], NULL, memory_order_acq_rel);
        if (socket) netmp_socket_close_at_exit(socket);
    }
    if (!netmp_attached()) netmp_finish_at_exit();
}

static void stack_started(void) {
    stack_process = getpid();
    stack_descriptor_count = netmp_stack_descriptors(stack_descriptors, 1024);
}

// An inherited netmp socket the child does not take over becomes an unconnected kernel
// socket of the same kind on the same number: the parent keeps the connection, the child
// gets the errors of a socket that never connected (ENOTCONN, EPIPE) and can close it.
// Raw system calls only: the interposed ones would reach the stack.
static void becomes_kernel_socket(int fd, int stream) {
    int cloexec = (int)syscall(SYS_fcntl, fd, F_GETFD) & FD_CLOEXEC;
    int kernel = (int)syscall(SYS_socket, AF_INET, stream ? SOCK_STREAM : SOCK_DGRAM, 0);
    if (kernel < 0) return; // the eventfd stays: reads see EAGAIN, never data
    syscall(SYS_dup3, kernel, fd, cloexec ? O_CLOEXEC : 0);
    syscall(SYS_close, kernel);
}

// A master process (nginx's) opens its listeners and forks workers that accept on them,
// while it listens no more itself. A child of a parent whose every netmp socket is a
// listener keeps those listeners aside, with the parent's TAP queues, and opens (then
// detaches) queues of its own at once, while it still has the parent's privileges. The
// first call that puts an inherited listener to use (netmp_socket_in_use) takes them over:
// the child starts a stack of its own on its queues, which join the device, detaches the
// parent's, and listens again. Each worker then answers the connections the TAP's queue
// choice gives it.
static atomic_int inherited_fd[256];
static void *inherited_socket[256];
static atomic_int inherited_count;
static int parent_queues[256];
static int parent_queue_count;
atomic_int netmp_inherited_pending;
static pthread_mutex_t takeover_lock = PTHREAD_MUTEX_INITIALIZER;

// 1 when the stack's sockets are all listeners (and there is one).
static int parent_only_listens(void) {
    int listeners = 0;
    for (int fd = 0; fd < NETMP_DESCRIPTORS; fd++) {
        void *socket = netmp_socket_of(fd);
        if (!socket) continue;
        if (!netmp_is_listener(socket)) return 0;
        listeners++;
    }
    return listeners > 0;
}

// Inherited listener `i` listens again on this process's stack, on a fresh eventfd at the
// same number (the old one is shared with the parent). A descriptor that duplicates an
// earlier one shares its new socket, as it shared the old.
static void listen_here(int i) {
    int fd = atomic_load(&inherited_fd[i]);
    int cloexec = (int)syscall(SYS_fcntl, fd, F_GETFD) & FD_CLOEXEC;
    for (int j = 0; j < i; j++) {
        int twin_fd = atomic_load(&inherited_fd[j]);
        void *twin = twin_fd >= 0 && inherited_socket[j] == inherited_socket[i] ? netmp_socket_of(twin_fd) : NULL;
        if (!twin) continue;
        if (syscall(SYS_dup3, twin_fd, fd, cloexec ? O_CLOEXEC : 0) < 0) break;
        netmp_socket_retain(twin);
        atomic_store_explicit(&netmp_sockets[fd], twin, memory_order_release);
        return;
    }
    int error = 0;
    void *socket = NULL;
    int event = (int)syscall(SYS_eventfd2, 0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (event >= 0 && syscall(SYS_dup3, event, fd, cloexec ? O_CLOEXEC : 0) >= 0)
        socket = netmp_listen_again(inherited_socket[i], fd, &error);
    else
        error = errno;
    if (event >= 0) syscall(SYS_close, event);
    if (socket) {
        atomic_store_explicit(&netmp_sockets[fd], socket, memory_order_release);
        return;
    }
    fprintf(stderr, "netmp: forked child %d: descriptor %d cannot listen again (%s); it is a kernel socket now\n",
            (int)getpid(), fd, strerror(error));
    becomes_kernel_socket(fd, 1);
}

// Ends the pending state; the caller holds takeover_lock.
static void settle_inherited(void) {
    inherited_count = 0;
    atomic_store_explicit(&netmp_inherited_pending, 0, memory_order_release);
}

static void take_over_listeners(void) {
    pthread_mutex_lock(&takeover_lock);
    if (atomic_load_explicit(&netmp_inherited_pending, memory_order_acquire)) {
        int started = netmp_start_like_parent() == 0;
        if (started) stack_started();
        restart_allowed = 0;
        // Only now, so that the device always has a queue someone reads.
        netmp_release_parent_queues(started);
        for (int i = 0; i < inherited_count; i++) {
            int fd = atomic_load(&inherited_fd[i]);
            if (fd < 0) continue;
            if (started) listen_here(i); else becomes_kernel_socket(fd, 1);
        }
        settle_inherited();
    }
    pthread_mutex_unlock(&takeover_lock);
}

// Whether fd is an inherited listener, without the lock: the stack's own calls (its
// threads' poll, the takeover's ioctl and close of TAP queues) pass through the shim while
// a takeover holds it, on descriptors that are never inherited listeners.
static int is_inherited(int fd) {
    for (int i = 0; i < inherited_count; i++) if (atomic_load(&inherited_fd[i]) == fd) return 1;
    return 0;
}

void *netmp_take_over_inherited(int fd) {
    if (is_inherited(fd)) take_over_listeners();
    return netmp_socket_of(fd);
}

// close() or dup2() over an inherited listener not yet taken over: it is gone; once all
// are, so are the parent's queues and the child's own.
void netmp_inherited_closed(int fd) {
    if (fd < 0 || !atomic_load_explicit(&netmp_inherited_pending, memory_order_acquire) || !is_inherited(fd)) return;
    pthread_mutex_lock(&takeover_lock);
    int left = 0;
    for (int i = 0; i < inherited_count; i++) {
        if (atomic_load(&inherited_fd[i]) == fd) atomic_store(&inherited_fd[i], -1);
        if (atomic_load(&inherited_fd[i]) >= 0) left++;
    }
    if (left == 0 && atomic_load_explicit(&netmp_inherited_pending, memory_order_acquire)) {
        netmp_release_parent_queues(0);
        netmp_release_child_queues();
        settle_inherited();
    }
    pthread_mutex_unlock(&takeover_lock);
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

// Attached: the number of the child of the fork under way (prepare handler), -1 for none.
static int child_number = -1;

// fork(): only the calling thread goes on in the child, so the stack's threads do not.
// The child closes the stack's descriptors (its TAP queues would otherwise swallow
// frames), and each inherited netmp socket becomes an unconnected kernel socket, except
// the listeners of a parent that only listens, kept for a takeover (above).
static void netmp_forked_child(void) {
    if (!netmp_running()) return;
    // Attached to a stack service, the child keeps the client (its region is shared
    // memory) and the sockets it inherited, as a kernel child does: the parent made it
    // their holder before the fork. It joins the stack over a connection of its own, so
    // that its end is seen apart from its parent's.
    if (netmp_attached()) {
        if (child_number >= 0) {
            netmp_join_after_fork((uint32_t)child_number);
            start_watching_stack();
        } else {
            for (int fd = 0; fd < NETMP_DESCRIPTORS; fd++) {
                if (!netmp_socket_of(fd)) continue;
                void *socket = atomic_exchange_explicit(&netmp_sockets[fd], NULL, memory_order_acq_rel);
                if (socket) becomes_kernel_socket(fd, netmp_is_stream(socket));
            }
        }
        netmp_epoll_after_fork();
        return;
    }
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    takeover_lock = fresh;
    int master = parent_only_listens() && netmp_open_child_queues() == 0;
    parent_queue_count = master ? netmp_stack_queues(parent_queues, 256) : 0;
    for (int i = 0; i < stack_descriptor_count; i++) {
        int queue = 0;
        for (int q = 0; q < parent_queue_count; q++) queue |= parent_queues[q] == stack_descriptors[i];
        if (!queue) syscall(SYS_close, stack_descriptors[i]);
    }
    inherited_count = 0;
    for (int fd = 0; fd < NETMP_DESCRIPTORS; fd++) {
        // Read first: writing every slot would copy the whole table's pages in each child.
        if (!netmp_socket_of(fd)) continue;
        void *socket = atomic_exchange_explicit(&netmp_sockets[fd], NULL, memory_order_acq_rel);
        if (!socket) continue;
        if (master && inherited_count < 256) {
            atomic_store(&inherited_fd[inherited_count], fd);
            inherited_socket[inherited_count++] = socket;
            continue;
        }
        becomes_kernel_socket(fd, netmp_is_stream(socket));
    }
    netmp_epoll_after_fork();
    netmp_forget_stack();
    restart_allowed = 1;
    if (inherited_count) atomic_store_explicit(&netmp_inherited_pending, 1, memory_order_release);
}

// Before fork, in the parent: the protocol threads stop at a point where they hold no lock,
// the Swift runtime's included, so the child never inherits a lock held by a thread it
// does not have. They go on as soon as the fork returns in the parent.
static void netmp_forking(void) {
    if (netmp_attached()) {
        // The child's number in the client, and each socket held by it too, however many
        // descriptors this process has for it (a dup'ed descriptor shares its handle). A
        // fork that fails leaves the number taken and its sockets held: they then close
        // when the client's last process ends. 64 processes at most per client: past
        // that, a child's inherited sockets become kernel sockets (below).
        static uint64_t forks;
        forks++;
        child_number = netmp_number_for_child();
        if (child_number < 0) return;
        for (int fd = 0; fd < NETMP_DESCRIPTORS; fd++) {
            void *socket = netmp_socket_of(fd);
            if (socket) netmp_socket_share(socket, forks, (uint32_t)child_number);
        }
        return;
    }
    if (netmp_running() && getpid() == stack_process) netmp_park_for_fork();
}

// vfork() is fork() here (POSIX allows it): a vfork child runs no fork handlers, so it
// would keep the parent's TAP queues and sockets as they are, and the parent could not
// step aside (below). dash runs every command through vfork. A wrapper cannot call the
// real vfork: the child would return through this frame, which the suspended parent
// still needs.
pid_t vfork(void) { return fork(); }

// A parent with no netmp socket (a shell about to exec a preloaded program in the child)
// steps aside from the TAP until its next socket(): NetworkStack.stepAside.
static void netmp_forked_parent(void) {
    if (!netmp_running() || netmp_attached() || getpid() != stack_process) return;
    netmp_unpark_after_fork();
    for (int fd = 0; fd < NETMP_DESCRIPTORS; fd++) if (netmp_socket_of(fd)) return;
    netmp_step_aside();
}

// Whether netmp runs or may start later in this process (epoll instances made now get
// their shadow: a program makes its epoll set before its first socket, and the sockets
// it adds later must be watched through the shadow).
static int start_pending; // set at load, cleared when a start fails (below)
int netmp_may_run(void) {
    return netmp_running() || start_pending || restart_allowed
        || atomic_load_explicit(&netmp_inherited_pending, memory_order_acquire);
}

// The first socket() of a forked child whose parent is gone (daemon(): the parent exits
// right after fork) starts a stack of its own on the TAP. With the parent still alive the
// TAP is the parent's: the child stays on kernel sockets, and says so once. A new socket
// is no takeover of a master's listeners (above): a child that makes a connection of its
// own before it uses them must not take the master's queues away.
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
    if (netmp_start_like_parent() == 0) stack_started();
}

// The stack starts at the first AF_INET socket() (any thread; once), not at load: in
// `nc -l | sha256sum` with both preloaded, a stack in sha256sum would take frames of nc's
// connection from the TAP (its queues join the device's flow steering) and answer them
// with resets. A forked child of a process that never started one starts its own the
// same way.
static pthread_once_t first_socket = PTHREAD_ONCE_INIT;
static void start_stack(void) {
    if (netmp_start_from_environment() == 0) {
        stack_started();
        if (netmp_attached()) start_watching_stack();
    }
    else start_pending = 0; // no NETMP_TAP, or said why on stderr: kernel sockets from now on
}
void netmp_start_on_first_socket(void) {
    if (start_pending) pthread_once(&first_socket, start_stack);
}

__attribute__((constructor)) static void netmp_library_loaded(void) {
    if (netmp_routes_load() < 0) return; // said why on stderr; every call stays the kernel's
    if (netmp_check_environment() != 0) return; // not configured, or said why: the kernel's
    start_pending = 1;
    atexit(netmp_program_exiting);
    pthread_atfork(netmp_forking, netmp_forked_parent, netmp_forked_child);
}
