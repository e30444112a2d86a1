// system(3) and popen(3) keep the netmp sockets their shell inherits, as the kernel's keep
// sockets through the shell's clone and exec. libc runs both through its internal spawn,
// which neither the interposed posix_spawn nor the interposed exec sees: the shell and
// what it runs would get placeholders (an inetd-style server's `system("date")` with the
// connection as standard output would write nothing). So when a netmp socket would reach
// the shell, both are done here, as glibc does them, through the interposed posix_spawn
// (spawn.c), which forks and execs through the interposed exec. Otherwise they are libc's.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "netmp.h"
#include "shim.h"

extern char **environ;

DEFINE_REAL(int, system, const char *)
DEFINE_REAL(FILE *, popen, const char *, const char *)
DEFINE_REAL(int, pclose, FILE *)

// Waits for `pid` through EINTR: its wait status, or -1.
static int wait_for(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0) if (errno != EINTR) return -1;
    return status;
}

// SIGINT and SIGQUIT are ignored in the caller while any thread is in system(), and put
// back when the last leaves, as glibc does; the child gets back what was not ignored.
static pthread_mutex_t system_lock = PTHREAD_MUTEX_INITIALIZER;
static int system_callers;
static struct sigaction saved_interrupt, saved_quit;

int system(const char *command) {
    if (!command || !netmp_spawn_keeps_sockets(environ)) return REAL(system)(command);
    struct sigaction ignore = { .sa_handler = SIG_IGN };
    sigemptyset(&ignore.sa_mask);
    sigset_t child_signal, mask, reset;
    sigemptyset(&child_signal);
    sigaddset(&child_signal, SIGCHLD);
    sigemptyset(&reset);
    pthread_mutex_lock(&system_lock);
    if (system_callers++ == 0) {
        sigaction(SIGINT, &ignore, &saved_interrupt);
        sigaction(SIGQUIT, &ignore, &saved_quit);
    }
    if (saved_interrupt.sa_handler != SIG_IGN) sigaddset(&reset, SIGINT);
    if (saved_quit.sa_handler != SIG_IGN) sigaddset(&reset, SIGQUIT);
    pthread_mutex_unlock(&system_lock);
    pthread_sigmask(SIG_BLOCK, &child_signal, &mask);

    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &mask);
    posix_spawnattr_setsigdefault(&attr, &reset);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    char *argv[] = { "sh", "-c", "--", (char *)command, NULL };
    pid_t pid;
    int error = posix_spawn(&pid, "/bin/sh", NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    int status = error ? W_EXITCODE(127, 0) : wait_for(pid);

    pthread_mutex_lock(&system_lock);
    if (--system_callers == 0) {
        sigaction(SIGINT, &saved_interrupt, NULL);
        sigaction(SIGQUIT, &saved_quit, NULL);
    }
    pthread_mutex_unlock(&system_lock);
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
    if (error) errno = error;
    return status;
}

// The streams popen made here, with their shells, for pclose and for the next popen's
// shell, which must not inherit them (POSIX). Held across the spawn, as glibc holds its
// list, so two threads' shells do not inherit each other's.
struct opened {
    FILE *stream;
    pid_t pid;
    struct opened *next;
};
static struct opened *opened_streams;
static pthread_mutex_t opened_lock = PTHREAD_MUTEX_INITIALIZER;

FILE *popen(const char *command, const char *mode) {
    int reading = 0, writing = 0, close_on_exec = 0;
    for (const char *m = mode; *m; m++) {
        if (*m == 'r') reading = 1;
        else if (*m == 'w') writing = 1;
        else if (*m == 'e') close_on_exec = 1;
        else { errno = EINVAL; return NULL; }
    }
    if (reading == writing) { errno = EINVAL; return NULL; }
    pthread_mutex_lock(&opened_lock);
    // Once a stream of ours is open, every popen is ours: libc's shell would not close it.
    if (!opened_streams && !netmp_spawn_keeps_sockets(environ)) {
        pthread_mutex_unlock(&opened_lock);
        return REAL(popen)(command, mode);
    }
    struct opened *entry = malloc(sizeof *entry);
    int ends[2];
    if (!entry || pipe2(ends, O_CLOEXEC) < 0) {
        int error = entry ? errno : ENOMEM;
        free(entry);
        pthread_mutex_unlock(&opened_lock);
        errno = error;
        return NULL;
    }
    int ours = reading ? ends[0] : ends[1], theirs = reading ? ends[1] : ends[0];
    int standard = reading ? 1 : 0;
    posix_spawn_file_actions_t actions;
    int error = posix_spawn_file_actions_init(&actions);
    // A dup2 onto itself clears close-on-exec: the pipe's end stays open in the shell.
    if (!error) error = posix_spawn_file_actions_adddup2(&actions, theirs, standard);
    for (struct opened *o = opened_streams; o && !error; o = o->next) {
        int fd = fileno(o->stream);
        if (fd >= 0 && fd != standard) error = posix_spawn_file_actions_addclose(&actions, fd);
    }
    pid_t pid = 0;
    char *argv[] = { "sh", "-c", "--", (char *)command, NULL };
    if (!error) error = posix_spawn(&pid, "/bin/sh", &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    syscall(SYS_close, theirs);
    FILE *stream = NULL;
    if (!error) {
        if (!close_on_exec) fcntl(ours, F_SETFD, 0);
        stream = fdopen(ours, reading ? "r" : "w");
        if (!stream) {
            error = errno;
            syscall(SYS_close, ours);
            wait_for(pid);
        }
    } else syscall(SYS_close, ours);
    if (stream) {
        *entry = (struct opened){ stream, pid, opened_streams };
        opened_streams = entry;
    } else free(entry);
    pthread_mutex_unlock(&opened_lock);
    if (!stream) errno = error;
    return stream;
}

// A child forked while another thread held a lock here must not find it held for good
// (its own popen or system would wait forever), as glibc resets its popen list's lock.
static void locks_after_fork(void) {
    pthread_mutex_init(&system_lock, NULL);
    system_callers = 0; // the child has no thread in system()
    pthread_mutex_init(&opened_lock, NULL);
}

__attribute__((constructor)) static void register_fork_handler(void) {
    pthread_atfork(NULL, NULL, locks_after_fork);
}

int pclose(FILE *stream) {
    pthread_mutex_lock(&opened_lock);
    struct opened **link = &opened_streams;
    while (*link && (*link)->stream != stream) link = &(*link)->next;
    struct opened *entry = *link;
    if (entry) *link = entry->next;
    pthread_mutex_unlock(&opened_lock);
    if (!entry) return REAL(pclose)(stream);
    pid_t pid = entry->pid;
    free(entry);
    fclose(stream);
    return wait_for(pid);
}
