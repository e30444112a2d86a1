// Which signals interrupt a blocking netmp call. The kernel restarts a blocked socket call
// after a handler installed with SA_RESTART and fails it with EINTR otherwise. A netmp call
// blocks on a futex, which the kernel always interrupts, so the stack must learn whether
// the handler that ran wanted a restart: every handler the program installs runs through
// a trampoline that counts the ones without SA_RESTART (netmp_note_interrupting_signal,
// per thread) before calling the program's handler. sigaction() reports the program's own
// handler back, never the trampoline.
//
// The trampoline also lets a handler wait while the thread holds a place in a shared ring
// (netmp_signal_deferred, CNetMPLinux): the handler then runs when the place is published.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include "netmp_linux.h"
#include "shim.h"

// The program's action, for signals we wrap. The trampoline reads a record on any thread
// while sigaction may be writing it on another, so each has a version, odd while written:
// a reader copies the record and keeps the copy only if the version was even and unchanged
// across it. A writer blocks every signal on its own thread first (a trampoline there
// would wait for it forever) and writers take turns.
static struct sigaction programs[NSIG];
static atomic_uint versions[NSIG];
static atomic_flag writing = ATOMIC_FLAG_INIT;
static volatile sig_atomic_t wrapped[NSIG];

DEFINE_REAL(int, sigaction, int, const struct sigaction *, struct sigaction *)

static void read_program(int signal, struct sigaction *copy) {
    for (;;) {
        unsigned before = atomic_load_explicit(&versions[signal], memory_order_acquire);
        if (before & 1) continue; // another thread is writing it: a few stores away
        memcpy(copy, (const void *)&programs[signal], sizeof *copy);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&versions[signal], memory_order_relaxed) == before) return;
    }
}

static void write_program(int signal, const struct sigaction *action) {
    unsigned version = atomic_load_explicit(&versions[signal], memory_order_relaxed);
    atomic_store_explicit(&versions[signal], version + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    memcpy((void *)&programs[signal], action, sizeof *action);
    atomic_store_explicit(&versions[signal], version + 2, memory_order_release);
}

static struct sigaction through_trampoline(const struct sigaction *program);

static void trampoline(int signal, siginfo_t *info, void *context) {
    int saved = errno;
    struct sigaction program;
    read_program(signal, &program);
    if (netmp_signal_deferred(signal, info)) {
        // Queued again when the thread publishes; SA_RESETHAND made this delivery reset the
        // action, so the trampoline goes back in for that one.
        if (program.sa_flags & SA_RESETHAND) {
            struct sigaction again = through_trampoline(&program);
            REAL(sigaction)(signal, &again, NULL);
        }
        errno = saved;
        return;
    }
    if (!(program.sa_flags & SA_RESTART)) netmp_note_interrupting_signal();
    // A handler that jumps out of a sleep on a wait word must not leave the word's count
    // of sleepers one too high: out of the count while it runs, back in if it returns.
    netmp_sleep taken = netmp_handler_begins();
    errno = saved;
    if (program.sa_flags & SA_SIGINFO) program.sa_sigaction(signal, info, context);
    else program.sa_handler(signal);
    saved = errno;
    netmp_handler_ends(taken);
    errno = saved;
}

static struct sigaction through_trampoline(const struct sigaction *program) {
    struct sigaction through = *program;
    through.sa_flags |= SA_SIGINFO;
    through.sa_sigaction = trampoline;
    return through;
}

static int is_handler(const struct sigaction *action) {
    if (action->sa_flags & SA_SIGINFO) return action->sa_sigaction != NULL;
    return action->sa_handler != SIG_IGN && action->sa_handler != SIG_DFL;
}

int sigaction(int signal, const struct sigaction *action, struct sigaction *old) {
    if (signal <= 0 || signal >= NSIG) return REAL(sigaction)(signal, action, old);
    sigset_t all, mask;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &mask);
    while (atomic_flag_test_and_set_explicit(&writing, memory_order_acquire)) sched_yield();
    struct sigaction before = programs[signal];
    int was_wrapped = wrapped[signal];
    struct sigaction kernel_old;
    int r;
    if (action && is_handler(action)) {
        // Recorded before the kernel sees the trampoline, so it never runs a stale action.
        write_program(signal, action);
        struct sigaction through = through_trampoline(action);
        r = REAL(sigaction)(signal, &through, &kernel_old);
        if (r == 0) wrapped[signal] = 1;
        else write_program(signal, &before);
    } else {
        r = REAL(sigaction)(signal, action, &kernel_old);
        if (r == 0 && action) wrapped[signal] = 0;
    }
    int e = errno;
    atomic_flag_clear_explicit(&writing, memory_order_release);
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
    errno = e;
    if (r == 0 && old) *old = was_wrapped && kernel_old.sa_sigaction == trampoline ? before : kernel_old;
    return r;
}

// signal() and its BSD name install with SA_RESTART (glibc's semantics); glibc's own
// signal() calls an internal sigaction, so it is wrapped here too.
static sighandler_t install(int signal, sighandler_t handler, int flags) {
    struct sigaction action, old;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    action.sa_flags = flags;
    sigemptyset(&action.sa_mask);
    if (signal > 0 && signal < NSIG) sigaddset(&action.sa_mask, signal);
    if (sigaction(signal, &action, &old) < 0) return SIG_ERR;
    return (old.sa_flags & SA_SIGINFO) ? (sighandler_t)(void *)old.sa_sigaction : old.sa_handler;
}

sighandler_t signal(int signal, sighandler_t handler) { return install(signal, handler, SA_RESTART); }
sighandler_t bsd_signal(int signal, sighandler_t handler) { return install(signal, handler, SA_RESTART); }
