// Which signals interrupt a blocking netmp call. The kernel restarts a blocked socket call
// after a handler installed with SA_RESTART and fails it with EINTR otherwise. A netmp call
// blocks on a futex, which the kernel always interrupts, so the stack must learn whether
// the handler that ran wanted a restart: every handler the program installs runs through
// a trampoline that counts the ones without SA_RESTART (netmp_note_interrupting_signal,
// per thread) before calling the program's handler. sigaction() reports the program's own
// handler back, never the trampoline.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include "shim.h"

void netmp_note_interrupting_signal(void); // CNetMPLinux

static struct sigaction programs[NSIG]; // the program's action, for signals we wrap
static volatile sig_atomic_t wrapped[NSIG];

DEFINE_REAL(int, sigaction, int, const struct sigaction *, struct sigaction *)

static void trampoline(int signal, siginfo_t *info, void *context) {
    int saved = errno;
    const struct sigaction *program = &programs[signal];
    if (!(program->sa_flags & SA_RESTART)) netmp_note_interrupting_signal();
    errno = saved;
    if (program->sa_flags & SA_SIGINFO) program->sa_sigaction(signal, info, context);
    else program->sa_handler(signal);
}

static int is_handler(const struct sigaction *action) {
    if (action->sa_flags & SA_SIGINFO) return action->sa_sigaction != NULL;
    return action->sa_handler != SIG_IGN && action->sa_handler != SIG_DFL;
}

int sigaction(int signal, const struct sigaction *action, struct sigaction *old) {
    if (signal <= 0 || signal >= NSIG) return REAL(sigaction)(signal, action, old);
    struct sigaction before = programs[signal];
    int was_wrapped = wrapped[signal];
    struct sigaction kernel_old;
    int r;
    if (action && is_handler(action)) {
        // Recorded before the kernel sees the trampoline, so it never runs a stale action.
        programs[signal] = *action;
        struct sigaction through = *action;
        through.sa_flags |= SA_SIGINFO;
        through.sa_sigaction = trampoline;
        r = REAL(sigaction)(signal, &through, &kernel_old);
        if (r == 0) wrapped[signal] = 1;
        else programs[signal] = before;
    } else {
        r = REAL(sigaction)(signal, action, &kernel_old);
        if (r == 0 && action) wrapped[signal] = 0;
    }
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
