// posix_spawn keeps a netmp socket the child inherits, as the kernel's keeps a socket
// through its clone and exec (docs/SHIM.md, fork, daemon and exec). libc's posix_spawn
// clones a child that shares the parent's memory, runs no fork handler and calls libc's
// internal execve, which the preload never sees: the child would get placeholders. So when
// a netmp socket would reach the child (a descriptor without close-on-exec, or one the file
// actions dup2 into place), the spawn is a fork (whose handlers make the child a holder of
// the parent's sockets) that applies the attributes and file actions as libc does and execs
// through the interposed execve (which hands the sockets over). Otherwise, or when this
// library does not know the file actions or an attribute, it is libc's own spawn.
//
// The file actions are opaque: each posix_spawn_file_actions_* call is shadowed here, and a
// shadow is used only if it holds as many actions as libc's object says it has.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include "netmp.h"
#include "netmp_linux.h"
#include "shim.h"

extern char **environ;

enum step_kind { STEP_CLOSE, STEP_DUP2, STEP_OPEN, STEP_CHDIR, STEP_FCHDIR, STEP_CLOSEFROM, STEP_TCSETPGRP };

struct step {
    enum step_kind kind;
    int fd;          // the descriptor acted on (dup2: the source)
    int target;      // dup2's new descriptor
    int flags;       // open's flags
    mode_t mode;     // open's mode
    char *path;      // open's and chdir's (a copy)
};

// The shadow of one posix_spawn_file_actions_t, found by its address.
struct shadow {
    const posix_spawn_file_actions_t *actions; // NULL: a free entry
    struct step *steps;
    int count, capacity;
    int broken; // an action could not be recorded: libc's spawn is used
};

#define SHADOWS 64
static struct shadow shadows[SHADOWS];
static pthread_mutex_t shadows_lock = PTHREAD_MUTEX_INITIALIZER;

static struct shadow *shadow_of(const posix_spawn_file_actions_t *actions) {
    for (int i = 0; i < SHADOWS; i++) if (shadows[i].actions == actions) return &shadows[i];
    return NULL;
}

static void shadow_clear(struct shadow *s) {
    for (int i = 0; i < s->count; i++) free(s->steps[i].path);
    free(s->steps);
    memset(s, 0, sizeof *s);
}

// Records `step` (its path copied) for `actions`, after libc accepted it.
static void shadow_add(const posix_spawn_file_actions_t *actions, struct step step, const char *path) {
    pthread_mutex_lock(&shadows_lock);
    struct shadow *s = shadow_of(actions);
    if (s && !s->broken) {
        if (path && !(step.path = strdup(path))) s->broken = 1;
        if (!s->broken && s->count == s->capacity) {
            int capacity = s->capacity ? s->capacity * 2 : 8;
            struct step *grown = realloc(s->steps, sizeof *grown * (size_t)capacity);
            if (grown) { s->steps = grown; s->capacity = capacity; } else s->broken = 1;
        }
        if (!s->broken) s->steps[s->count++] = step;
        else free(step.path);
    }
    pthread_mutex_unlock(&shadows_lock);
}

DEFINE_REAL(int, posix_spawn_file_actions_init, posix_spawn_file_actions_t *)
DEFINE_REAL(int, posix_spawn_file_actions_destroy, posix_spawn_file_actions_t *)
DEFINE_REAL(int, posix_spawn_file_actions_addclose, posix_spawn_file_actions_t *, int)
DEFINE_REAL(int, posix_spawn_file_actions_adddup2, posix_spawn_file_actions_t *, int, int)
DEFINE_REAL(int, posix_spawn_file_actions_addopen, posix_spawn_file_actions_t *, int, const char *, int, mode_t)
DEFINE_REAL(int, posix_spawn_file_actions_addchdir_np, posix_spawn_file_actions_t *, const char *)
DEFINE_REAL(int, posix_spawn_file_actions_addfchdir_np, posix_spawn_file_actions_t *, int)
DEFINE_REAL(int, posix_spawn_file_actions_addclosefrom_np, posix_spawn_file_actions_t *, int)
DEFINE_REAL(int, posix_spawn_file_actions_addtcsetpgrp_np, posix_spawn_file_actions_t *, int)
DEFINE_REAL(int, posix_spawn, pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
            char *const[], char *const[])
DEFINE_REAL(int, posix_spawnp, pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
            char *const[], char *const[])

int posix_spawn_file_actions_init(posix_spawn_file_actions_t *actions) {
    int r = REAL(posix_spawn_file_actions_init)(actions);
    if (r != 0) return r;
    pthread_mutex_lock(&shadows_lock);
    struct shadow *s = shadow_of(actions); // an object initialized again without a destroy
    if (s) shadow_clear(s);
    else s = shadow_of(NULL); // none free: this object's spawns are libc's
    if (s) s->actions = actions;
    pthread_mutex_unlock(&shadows_lock);
    return 0;
}

int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *actions) {
    pthread_mutex_lock(&shadows_lock);
    struct shadow *s = shadow_of(actions);
    if (s) shadow_clear(s);
    pthread_mutex_unlock(&shadows_lock);
    return REAL(posix_spawn_file_actions_destroy)(actions);
}

#define SHADOWED(call, ...)                                  \
    do {                                                     \
        int r = (call);                                      \
        if (r == 0) shadow_add(actions, __VA_ARGS__);        \
        return r;                                            \
    } while (0)

int posix_spawn_file_actions_addclose(posix_spawn_file_actions_t *actions, int fd) {
    SHADOWED(REAL(posix_spawn_file_actions_addclose)(actions, fd), (struct step){ .kind = STEP_CLOSE, .fd = fd }, NULL);
}

int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *actions, int fd, int target) {
    SHADOWED(REAL(posix_spawn_file_actions_adddup2)(actions, fd, target),
             (struct step){ .kind = STEP_DUP2, .fd = fd, .target = target }, NULL);
}

int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *actions, int fd, const char *path, int flags,
                                     mode_t mode) {
    SHADOWED(REAL(posix_spawn_file_actions_addopen)(actions, fd, path, flags, mode),
             (struct step){ .kind = STEP_OPEN, .fd = fd, .flags = flags, .mode = mode }, path);
}

int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *actions, const char *path) {
    SHADOWED(REAL(posix_spawn_file_actions_addchdir_np)(actions, path), (struct step){ .kind = STEP_CHDIR }, path);
}

int posix_spawn_file_actions_addfchdir_np(posix_spawn_file_actions_t *actions, int fd) {
    SHADOWED(REAL(posix_spawn_file_actions_addfchdir_np)(actions, fd), (struct step){ .kind = STEP_FCHDIR, .fd = fd }, NULL);
}

int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from) {
    SHADOWED(REAL(posix_spawn_file_actions_addclosefrom_np)(actions, from),
             (struct step){ .kind = STEP_CLOSEFROM, .fd = from }, NULL);
}

int posix_spawn_file_actions_addtcsetpgrp_np(posix_spawn_file_actions_t *actions, int fd) {
    SHADOWED(REAL(posix_spawn_file_actions_addtcsetpgrp_np)(actions, fd),
             (struct step){ .kind = STEP_TCSETPGRP, .fd = fd }, NULL);
}

// Whether a netmp socket would stand behind a descriptor of the child once the steps ran:
// the sockets' descriptors, with close-on-exec, followed through the steps.
static int child_inherits_socket(const struct step *steps, int count) {
    int sockets = 0, dups = 0;
    for (int fd = 0; fd < NETMP_DESCRIPTORS; fd++) if (netmp_socket_of(fd)) sockets++;
    for (int i = 0; i < count; i++) if (steps[i].kind == STEP_DUP2) dups++;
    if (sockets == 0) return 0;
    // Each entry: a descriptor that holds a socket, and whether it closes at the exec.
    struct held { int fd, closes; } *held = malloc(sizeof *held * (size_t)(sockets + dups));
    if (!held) return 1; // the fork: a socket may be inherited, and the fork keeps it right
    int n = 0;
    for (int fd = 0; fd < NETMP_DESCRIPTORS && n < sockets; fd++) {
        if (netmp_socket_of(fd)) held[n++] = (struct held){ fd, (int)syscall(SYS_fcntl, fd, F_GETFD) & FD_CLOEXEC };
    }
    for (int i = 0; i < count; i++) {
        const struct step *s = &steps[i];
        int source = -1;
        if (s->kind == STEP_DUP2)
            for (int k = 0; k < n; k++) if (held[k].fd == s->fd) source = k;
        for (int k = 0; k < n; k++) {
            int gone = (s->kind == STEP_CLOSE || s->kind == STEP_OPEN) ? held[k].fd == s->fd
                     : s->kind == STEP_CLOSEFROM ? held[k].fd >= s->fd
                     : s->kind == STEP_DUP2 && s->fd != s->target ? held[k].fd == s->target : 0;
            if (gone) { held[k] = held[--n]; if (source == n) source = k; k--; }
        }
        if (s->kind == STEP_DUP2 && source >= 0) {
            if (s->fd == s->target) held[source].closes = 0; // dup2 onto itself clears close-on-exec
            else held[n++] = (struct held){ s->target, 0 };
        }
    }
    int inherits = 0;
    for (int k = 0; k < n; k++) if (!held[k].closes) inherits = 1;
    free(held);
    return inherits;
}

// In the child: moves the descriptor that reports a failure to the parent (`*report`) out
// of the way of a step about to take descriptor `fd`, or of a closefrom of it (then below
// `fd` if a free number is there; else the report is given up: the parent sees the child
// start and its exit status says 127).
static void clear_report(int *report, int fd, int from) {
    if (*report < 0 || (from ? *report < fd : *report != fd)) return;
    int moved = (int)syscall(SYS_fcntl, *report, F_DUPFD_CLOEXEC, 0);
    syscall(SYS_close, *report);
    *report = moved;
    if (from && moved >= fd) { syscall(SYS_close, moved); *report = -1; }
    else if (!from && moved == fd) *report = -1;
}

static int run_step(const struct step *s, int *report) {
    switch (s->kind) {
    case STEP_CLOSE:
        clear_report(report, s->fd, 0);
        close(s->fd); // libc's spawn ignores a close that fails too
        return 0;
    case STEP_DUP2:
        if (s->fd == s->target) {
            int flags = fcntl(s->fd, F_GETFD);
            return flags < 0 || fcntl(s->fd, F_SETFD, flags & ~FD_CLOEXEC) < 0 ? -1 : 0;
        }
        clear_report(report, s->target, 0);
        return dup2(s->fd, s->target) < 0 ? -1 : 0;
    case STEP_OPEN: {
        clear_report(report, s->fd, 0);
        int opened = open(s->path, s->flags, s->mode);
        if (opened < 0) return -1;
        if (opened != s->fd) {
            int r = dup2(opened, s->fd);
            close(opened);
            if (r < 0) return -1;
        }
        return 0;
    }
    case STEP_CHDIR: return chdir(s->path);
    case STEP_FCHDIR: return fchdir(s->fd);
    case STEP_CLOSEFROM:
        clear_report(report, s->fd, 1);
        closefrom(s->fd);
        return 0;
    case STEP_TCSETPGRP: return tcsetpgrp(s->fd, getpgrp());
    }
    return 0;
}

// The forked child: what libc's spawn does in its child, in its order, then the exec. It
// returns only by _exit, having written errno to `report` if something failed.
__attribute__((noreturn))
static void spawned_child(int report, const char *file, int search, const struct step *steps, int count,
                          const posix_spawnattr_t *attr, char *const argv[], char *const envp[],
                          const sigset_t *parent_mask) {
    short flags = 0;
    sigset_t defaults, mask;
    sigemptyset(&defaults);
    if (attr) {
        posix_spawnattr_getflags(attr, &flags);
        posix_spawnattr_getsigdefault(attr, &defaults);
    }
    // No handler of the parent's runs in the child: each becomes the default, as do the
    // signals the attributes name; ignored ones stay ignored.
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction now;
        if (sigaction(sig, NULL, &now) != 0) continue; // glibc's own signals, and none such
        int named = (flags & POSIX_SPAWN_SETSIGDEF) && sigismember(&defaults, sig) == 1;
        if (named || (now.sa_handler != SIG_IGN && now.sa_handler != SIG_DFL)) {
            struct sigaction dfl;
            memset(&dfl, 0, sizeof dfl);
            dfl.sa_handler = SIG_DFL;
            sigaction(sig, &dfl, NULL);
        }
    }
    int failed = 0;
    if (attr && (flags & (POSIX_SPAWN_SETSCHEDULER | POSIX_SPAWN_SETSCHEDPARAM))) {
        struct sched_param parameter;
        int policy = 0;
        posix_spawnattr_getschedparam(attr, &parameter);
        posix_spawnattr_getschedpolicy(attr, &policy);
        if (flags & POSIX_SPAWN_SETSCHEDULER) failed = sched_setscheduler(0, policy, &parameter) < 0;
        else failed = sched_setparam(0, &parameter) < 0;
    }
    if (!failed && (flags & POSIX_SPAWN_SETSID)) failed = setsid() < 0;
    if (!failed && (flags & POSIX_SPAWN_SETPGROUP)) {
        pid_t group = 0;
        posix_spawnattr_getpgroup(attr, &group);
        failed = setpgid(0, group) < 0;
    }
    if (!failed && (flags & POSIX_SPAWN_RESETIDS)) failed = setegid(getgid()) < 0 || seteuid(getuid()) < 0;
    for (int i = 0; i < count && !failed; i++) failed = run_step(&steps[i], &report) < 0;
    if (!failed) {
        if (attr && (flags & POSIX_SPAWN_SETSIGMASK)) posix_spawnattr_getsigmask(attr, &mask);
        else mask = *parent_mask;
        pthread_sigmask(SIG_SETMASK, &mask, NULL);
        if (search) execvpe(file, argv, envp); // the interposed exec functions: the hand-off
        else execve(file, argv, envp);
    }
    int error = errno;
    if (report >= 0) syscall(SYS_write, report, &error, sizeof error);
    _exit(127);
}

// Every attribute flag this file carries out; any other (a newer glibc's) means libc's spawn.
#define KNOWN_FLAGS (POSIX_SPAWN_RESETIDS | POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | \
                     POSIX_SPAWN_SETSCHEDPARAM | POSIX_SPAWN_SETSCHEDULER | POSIX_SPAWN_USEVFORK | POSIX_SPAWN_SETSID)

int netmp_spawn_keeps_sockets(char *const envp[]) {
    return netmp_running() && netmp_preloads_netmp(envp) && child_inherits_socket(NULL, 0);
}

// The steps of `actions` to run in a forked child (*steps, *count), or 0 if the spawn is
// libc's: nothing of netmp would reach the child, or this library cannot carry it out.
static int spawn_by_fork(const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attr,
                         char *const envp[], struct step **steps, int *count) {
    *steps = NULL;
    *count = 0;
    if (!netmp_running() || !netmp_preloads_netmp(envp)) return 0;
    short flags = 0;
    if (attr && (posix_spawnattr_getflags(attr, &flags) != 0 || (flags & ~KNOWN_FLAGS))) return 0;
    if (actions) {
        pthread_mutex_lock(&shadows_lock);
        struct shadow *s = shadow_of(actions);
        int usable = s && !s->broken && s->count == actions->__used;
        if (usable && s->count > 0) {
            *steps = malloc(sizeof **steps * (size_t)s->count);
            if (*steps) { memcpy(*steps, s->steps, sizeof **steps * (size_t)s->count); *count = s->count; }
            else usable = 0;
        }
        pthread_mutex_unlock(&shadows_lock);
        if (!usable) return 0;
    }
    // The paths stay the shadow's: the program may not destroy the actions during its call.
    if (child_inherits_socket(*steps, *count)) return 1;
    free(*steps);
    *steps = NULL;
    return 0;
}

static int spawn(pid_t *pid, const char *file, int search, const struct step *steps, int count,
                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
    // All signals blocked across the fork: the child must not run a handler of the parent's
    // before it has made them the defaults.
    sigset_t all, parent_mask;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &parent_mask);
    // Up among the library's descriptors, where no file action of the program names one.
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) {
        int error = errno;
        pthread_sigmask(SIG_SETMASK, &parent_mask, NULL);
        return error;
    }
    report[0] = netmp_move_high(report[0]);
    report[1] = netmp_move_high(report[1]);
    pid_t child = fork();
    if (child == 0) {
        syscall(SYS_close, report[0]);
        spawned_child(report[1], file, search, steps, count, attr, argv, envp ? envp : environ, &parent_mask);
    }
    int error = child < 0 ? errno : 0;
    syscall(SYS_close, report[1]);
    pthread_sigmask(SIG_SETMASK, &parent_mask, NULL);
    if (child > 0) {
        // The child's exec closes its end (close-on-exec): nothing read means it started.
        int reported = 0;
        long n;
        do n = syscall(SYS_read, report[0], &reported, sizeof reported); while (n < 0 && errno == EINTR);
        if (n == (long)sizeof reported && reported != 0) {
            error = reported;
            while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {}
        }
    }
    syscall(SYS_close, report[0]);
    if (error == 0 && pid) *pid = child;
    return error;
}

typedef int spawn_call(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
                       char *const[], char *const[]);

// posix_spawn (`search` 0) or posix_spawnp (1): by fork where a socket reaches the child,
// else libc's `call`.
static int spawn_either(spawn_call *call, int search, pid_t *pid, const char *file,
                        const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attr,
                        char *const argv[], char *const envp[]) {
    struct step *steps;
    int count;
    if (!spawn_by_fork(actions, attr, envp, &steps, &count)) return call(pid, file, actions, attr, argv, envp);
    int r = spawn(pid, file, search, steps, count, attr, argv, envp);
    free(steps);
    return r;
}

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attr,
                char *const argv[], char *const envp[]) {
    return spawn_either(REAL(posix_spawn), 0, pid, path, actions, attr, argv, envp);
}

int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attr,
                 char *const argv[], char *const envp[]) {
    return spawn_either(REAL(posix_spawnp), 1, pid, file, actions, attr, argv, envp);
}
