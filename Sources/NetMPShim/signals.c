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
//
// And it catches the faults of netmp_accessible: a buffer the program passes is touched,
// a byte a page, before netmp copies it, and a fault there makes the call fail with EFAULT
// as the kernel's copy would, instead of killing the program. For that SIGSEGV and SIGBUS
// go through the trampoline from the first probe on, whatever the program set; a fault
// that is not a probe's gets the program's disposition (its handler, or the default).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
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

// A writer's turn: every signal blocked on its thread (its mask before into *mask), then
// the flag taken; and its end.
static void begin_writing(sigset_t *mask) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, mask);
    while (atomic_flag_test_and_set_explicit(&writing, memory_order_acquire)) sched_yield();
}

static void end_writing(const sigset_t *mask) {
    atomic_flag_clear_explicit(&writing, memory_order_release);
    pthread_sigmask(SIG_SETMASK, mask, NULL);
}

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
static int is_handler(const struct sigaction *action);

// The probe running on this thread: where a fault in it returns to.
static __thread sigjmp_buf probe_return;
static __thread volatile sig_atomic_t probing;
// SIGSEGV and SIGBUS go through the trampoline (set once, by the first probe).
static volatile sig_atomic_t guarded[NSIG];

static int is_fault(int signal) { return signal == SIGSEGV || signal == SIGBUS; }

// A signal the program has no handler for reached the trampoline (a guarded fault signal,
// or one whose handler another thread just took away): what the kernel would have done. A
// fault's own instruction runs again under the default (which the kernel forces on a fault
// even if ignored); any other is ignored if the program ignores it, else sent again under
// the default.
static void as_program_would(int signal, siginfo_t *info, const struct sigaction *program) {
    int sent = !is_fault(signal) || info->si_code <= 0;
    if (sent && program->sa_handler == SIG_IGN) return;
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    REAL(sigaction)(signal, &fallback, NULL);
    if (sent) {
        sigset_t unblock;
        sigemptyset(&unblock);
        sigaddset(&unblock, signal);
        syscall(SYS_rt_tgsigqueueinfo, getpid(), (pid_t)syscall(SYS_gettid), signal, info);
        pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    }
}

static void trampoline(int signal, siginfo_t *info, void *context) {
    if (is_fault(signal) && probing) {
        // The probe touched a page the program may not use: back to it, with the fault
        // signals unblocked again (the jump does not restore the mask).
        probing = 0;
        sigset_t faults;
        sigemptyset(&faults);
        sigaddset(&faults, SIGSEGV);
        sigaddset(&faults, SIGBUS);
        pthread_sigmask(SIG_UNBLOCK, &faults, NULL);
        siglongjmp(probe_return, 1);
    }
    int saved = errno;
    struct sigaction program;
    read_program(signal, &program);
    if (!is_handler(&program)) {
        as_program_would(signal, info, &program);
        errno = saved;
        return;
    }
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

// SIGSEGV's and SIGBUS's action for the trampoline when the program set no handler.
static struct sigaction guard_action(const struct sigaction *program) {
    struct sigaction through = *program;
    through.sa_flags = SA_SIGINFO | SA_ONSTACK | (program->sa_flags & SA_RESTART);
    sigemptyset(&through.sa_mask);
    through.sa_sigaction = trampoline;
    return through;
}

int sigaction(int signal, const struct sigaction *action, struct sigaction *old) {
    if (signal <= 0 || signal >= NSIG) return REAL(sigaction)(signal, action, old);
    sigset_t mask;
    begin_writing(&mask);
    struct sigaction before = programs[signal];
    int was_wrapped = wrapped[signal] || guarded[signal];
    struct sigaction kernel_old;
    int r;
    if (action && is_handler(action)) {
        // Recorded before the kernel sees the trampoline, so it never runs a stale action.
        write_program(signal, action);
        struct sigaction through = through_trampoline(action);
        r = REAL(sigaction)(signal, &through, &kernel_old);
        if (r == 0) wrapped[signal] = 1;
        else write_program(signal, &before);
    } else if (action && guarded[signal]) {
        // The default or ignore, kept for faults that are not a probe's: the trampoline stays.
        write_program(signal, action);
        struct sigaction through = guard_action(action);
        r = REAL(sigaction)(signal, &through, &kernel_old);
        if (r == 0) wrapped[signal] = 0;
        else write_program(signal, &before);
    } else {
        r = REAL(sigaction)(signal, action, &kernel_old);
        if (r == 0 && action) wrapped[signal] = 0;
    }
    int e = errno;
    end_writing(&mask);
    errno = e;
    if (r == 0 && old) *old = was_wrapped && kernel_old.sa_sigaction == trampoline ? before : kernel_old;
    return r;
}

// Puts SIGSEGV and SIGBUS through the trampoline, once, keeping what the program set.
static void guard_faults(void) {
    sigset_t mask;
    begin_writing(&mask);
    int signals[] = { SIGSEGV, SIGBUS };
    for (int i = 0; i < 2; i++) {
        int signal = signals[i];
        if (!wrapped[signal]) {
            struct sigaction current;
            if (REAL(sigaction)(signal, NULL, &current) != 0) continue;
            write_program(signal, &current);
            struct sigaction through = guard_action(&current);
            if (REAL(sigaction)(signal, &through, NULL) != 0) continue;
        }
        guarded[signal] = 1;
    }
    end_writing(&mask);
}

static pthread_once_t guard_once = PTHREAD_ONCE_INIT;

// Touches one byte of each page of [start, start + length) (`storing`: reads it and writes
// it back, which a read-only page refuses) with the fault signals caught: 1 if every touch
// went through, 0 if one faulted, as the kernel's copy would have (EFAULT).
int netmp_accessible(const void *start, size_t length, int storing) {
    if (length == 0) return 1;
    uintptr_t first = (uintptr_t)start, last = first + length - 1;
    if (last < first) return 0; // wraps around the address space: no user range does
    pthread_once(&guard_once, guard_faults);
    const uintptr_t page = 4096; // the smallest page: each touch reaches a new one at most
    if (sigsetjmp(probe_return, 0)) return 0;
    probing = 1;
    for (uintptr_t at = first;; at = (at & ~(page - 1)) + page) {
        volatile char *byte = (volatile char *)at;
        char value = *byte;
        if (storing) *byte = value;
        if (at >= (last & ~(page - 1))) break;
    }
    volatile char *end = (volatile char *)last;
    char value = *end;
    if (storing) *end = value;
    probing = 0;
    return 1;
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
