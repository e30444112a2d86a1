// exec keeps the program's netmp connections, as the kernel keeps a process's sockets
// through exec (docs/SHIM.md, exec). Every exec function of libc is interposed (each calls
// libc's internal execve, which the preload never sees): the connections behind
// descriptors without close-on-exec go into a hand-off (netmp_exec_hand_off), whose memfd
// the new program's environment names, and the new image's constructor resumes them
// (constructor.c). An exec that returns has failed: the hand-off is undone.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "netmp.h"
#include "shim.h"

extern char **environ;

// The hand-off of the program's netmp sockets that survive this exec, or -1 for none. Raw
// fcntl: the shim's own would take a socket's descriptor for the socket.
static int hand_off(void) {
    if (!netmp_running()) return -1;
    int count = 0;
    for (int fd = 0; fd < NETMP_DESCRIPTORS; fd++) {
        if (netmp_socket_of(fd) && !((int)syscall(SYS_fcntl, fd, F_GETFD) & FD_CLOEXEC)) count++;
    }
    if (count == 0) return -1;
    int *fds = malloc(sizeof(int) * (size_t)count);
    void **sockets = malloc(sizeof(void *) * (size_t)count);
    int memfd = -1;
    if (fds && sockets) {
        int n = 0;
        for (int fd = 0; fd < NETMP_DESCRIPTORS && n < count; fd++) {
            void *socket = netmp_socket_of(fd);
            if (socket && !((int)syscall(SYS_fcntl, fd, F_GETFD) & FD_CLOEXEC)) { fds[n] = fd; sockets[n] = socket; n++; }
        }
        memfd = netmp_exec_hand_off(fds, sockets, n);
    }
    free(fds);
    free(sockets);
    return memfd;
}

// Whether the new program will load this library: its environment preloads libnetmp. One
// that does not (nginx passes only the variables its `env` directives name; sudo, env -i)
// gets no hand-off: its sockets go as before (closed with this process's image), and it
// is not left holding the library's descriptors or a listener's loopback twin.
int netmp_preloads_netmp(char *const envp[]) {
    for (size_t i = 0; envp && envp[i]; i++) {
        if (strncmp(envp[i], "LD_PRELOAD=", 11) == 0) return strstr(envp[i] + 11, "libnetmp") != NULL;
    }
    return 0;
}

// `envp` with NETMP_EXEC_HANDOFF=memfd in place of any it had (malloc'd; NULL: no memory).
static char **with_hand_off(char *const envp[], int memfd, char entry[32]) {
    snprintf(entry, 32, NETMP_EXEC_HANDOFF "=%d", memfd);
    size_t n = 0;
    while (envp && envp[n]) n++;
    char **out = malloc(sizeof(char *) * (n + 2));
    if (!out) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(envp[i], NETMP_EXEC_HANDOFF "=", sizeof NETMP_EXEC_HANDOFF) != 0) out[k++] = envp[i];
    }
    out[k++] = entry;
    out[k] = NULL;
    return out;
}

// Runs `exec` (one of libc's, which returns only on failure) with the hand-off in the
// environment, and undoes the hand-off when it returns.
#define EXEC_WITH_HAND_OFF(envp, call)                                  \
    do {                                                                \
        int memfd = netmp_preloads_netmp(envp) ? hand_off() : -1;       \
        char entry[32];                                                 \
        char **env = memfd >= 0 ? with_hand_off(envp, memfd, entry) : NULL; \
        char *const *use = env ? env : (envp);                          \
        int result = (call);                                            \
        int e = errno;                                                  \
        free(env);                                                      \
        if (memfd >= 0) netmp_exec_failed(memfd);                       \
        errno = e;                                                      \
        return result;                                                  \
    } while (0)

DEFINE_REAL(int, execve, const char *, char *const[], char *const[])
DEFINE_REAL(int, execvpe, const char *, char *const[], char *const[])
DEFINE_REAL(int, fexecve, int, char *const[], char *const[])

int execve(const char *path, char *const argv[], char *const envp[]) {
    EXEC_WITH_HAND_OFF(envp, REAL(execve)(path, argv, use));
}

int execvpe(const char *file, char *const argv[], char *const envp[]) {
    EXEC_WITH_HAND_OFF(envp, REAL(execvpe)(file, argv, use));
}

int fexecve(int fd, char *const argv[], char *const envp[]) {
    EXEC_WITH_HAND_OFF(envp, REAL(fexecve)(fd, argv, use));
}

int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }
int execvp(const char *file, char *const argv[]) { return execvpe(file, argv, environ); }

// The list forms: their arguments made into an argv (and execle's environment after it).
#define LIST_TO_ARGV(first, last_arg)                                   \
    va_list count_list;                                                 \
    va_start(count_list, first);                                        \
    size_t argc = 1;                                                    \
    while (va_arg(count_list, char *)) argc++;                          \
    va_end(count_list);                                                 \
    char *argv[argc + 1];                                               \
    argv[0] = (char *)(first);                                          \
    va_list list;                                                       \
    va_start(list, first);                                              \
    for (size_t i = 1; i <= argc; i++) argv[i] = va_arg(list, char *);  \
    last_arg;                                                           \
    va_end(list)

int execl(const char *path, const char *arg, ...) {
    LIST_TO_ARGV(arg, (void)0);
    return execve(path, argv, environ);
}

int execlp(const char *file, const char *arg, ...) {
    LIST_TO_ARGV(arg, (void)0);
    return execvpe(file, argv, environ);
}

int execle(const char *path, const char *arg, ...) {
    char *const *envp;
    LIST_TO_ARGV(arg, envp = va_arg(list, char *const *));
    return execve(path, argv, envp);
}
