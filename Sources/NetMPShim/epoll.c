// epoll over any mix of netmp sockets and kernel descriptors.
//
// Every epoll instance the program makes while netmp runs gets a shadow here: for each
// descriptor in it, the program's event mask and epoll_data. The kernel instance holds the
// kernel descriptors with their own masks and data, so their events pass through as the
// kernel reports them (and the registrations mean the same to a program after exec), and
// each netmp socket's placeholder registered EPOLLIN | EPOLLET with the member's number
// under a tag as its data, so such an event maps back to its member. A netmp member counts
// as a poller on its socket for as long as it is registered, so the stack rings the bell in
// its placeholder on every readiness change and no wakeup is lost; what it reports is the
// socket's own readiness, read when the event is collected.
//
// The placeholder is an epoll instance, which the kernel refuses EPOLLEXCLUSIVE for: a
// netmp member's registration never carries it (every waiter on the set wakes, and the
// stack's accept queue sorts out who gets a connection), and the flag's rules are checked
// here as the kernel would check them for a socket.
//
// Level-triggered netmp members that were reported stay on the set's recheck list and are
// looked at again on the next wait (the kernel keeps a level-triggered item on its ready
// list the same way); they leave it when found not ready, and the next change rings them
// back. Edge-triggered members are reported once per ring; EPOLLONESHOT members are
// disabled after one report until EPOLL_CTL_MOD.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include "netmp.h"
#include "shim.h"

#define MODE_BITS (EPOLLET | EPOLLONESHOT | EPOLLWAKEUP | EPOLLEXCLUSIVE)
// The data of a netmp member's registrations: "nmp" in the top bytes, which no user-space
// pointer has, then the member's number.
#define MEMBER_TAG 0x6e6d700000000000ULL
#define MEMBER_TAG_MASK 0xffffff0000000000ULL
// A listener's kernel twin's registration carries this bit beside its member's number.
#define TWIN_BIT (1ULL << 32)

struct member {
    uint64_t data;   // the program's epoll_data
    uint32_t events; // the program's mask
    void *socket;    // the netmp socket, or NULL for a kernel descriptor
    uint64_t stamp;  // the wait that last reported it (no member twice in one answer)
    uint64_t arrivals, freed; // edge-triggered: the socket's marks at the last look
    uint32_t last_ready;      // edge-triggered: what it reported at the last look
    int twin_plus_one;        // a listener's kernel twin registered for it, + 1 (0: none)
    uint8_t present, entered, disabled, queued;
    uint8_t exclusive;        // added with EPOLLEXCLUSIVE (which the kernel registration lacks)
    uint8_t twin_arrived;     // the kernel reported the twin, and no look found it empty since
    uint8_t moving;           // its socket is becoming a kernel socket (netmp_epoll_moving)
};

struct epoll_set {
    int fd;
    pthread_mutex_t lock;
    struct member *members; // by descriptor; calloc'd, so pages are touched only as used
    int *recheck;           // level-triggered netmp members to look at again
    int recheck_count, recheck_capacity;
    struct epoll_set *next;
};

static _Atomic(struct epoll_set *) sets[NETMP_DESCRIPTORS];
static struct epoll_set *all_sets;
static struct epoll_set *spare_sets; // closed ones, for reuse
static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int set_count;
static atomic_uint_fast64_t stamps = 1;

DEFINE_REAL(int, epoll_create1, int)
DEFINE_REAL(int, poll, struct pollfd *, nfds_t, int)
DEFINE_REAL(int, epoll_ctl, int, int, int, struct epoll_event *)
DEFINE_REAL(int, epoll_pwait, int, struct epoll_event *, int, int, const sigset_t *)
DEFINE_REAL(int, epoll_pwait2, int, struct epoll_event *, int, const struct timespec *, const sigset_t *)

static struct epoll_set *set_of(int epfd) {
    if (epfd < 0 || epfd >= NETMP_DESCRIPTORS) return NULL;
    return atomic_load_explicit(&sets[epfd], memory_order_acquire);
}

// A new epoll descriptor gets its shadow (only while netmp runs or may start in this
// forked child: otherwise nothing of netmp can be added, and the kernel's epoll is used
// untouched).
static int adopt_epoll(int epfd) {
    if (epfd < 0 || !netmp_may_run()) return epfd;
    if (epfd >= NETMP_DESCRIPTORS) return epfd; // netmp sockets never have such numbers
    pthread_mutex_lock(&all_lock);
    struct epoll_set *set = spare_sets;
    if (set) spare_sets = set->next;
    pthread_mutex_unlock(&all_lock);
    if (!set) {
        set = calloc(1, sizeof *set);
        struct member *members = calloc(NETMP_DESCRIPTORS, sizeof *members);
        if (!set || !members) {
            free(set);
            free(members);
            close(epfd);
            errno = ENOMEM;
            return -1;
        }
        set->members = members;
        pthread_mutex_init(&set->lock, NULL);
    }
    pthread_mutex_lock(&set->lock);
    set->fd = epfd;
    pthread_mutex_unlock(&set->lock);
    pthread_mutex_lock(&all_lock);
    set->next = all_sets;
    all_sets = set;
    atomic_store_explicit(&sets[epfd], set, memory_order_release);
    atomic_fetch_add(&set_count, 1);
    pthread_mutex_unlock(&all_lock);
    return epfd;
}

int epoll_create1(int flags) { return adopt_epoll(REAL(epoll_create1)(flags)); }

// An epoll instance the shim never saw made (inherited through exec, or made before the
// library started) gets its shadow when a netmp socket first joins it: its kernel members
// carry the program's own data already, so they need nothing. NULL if `epfd` is no epoll
// instance or cannot be adopted.
static struct epoll_set *adopt_existing(int epfd) {
    if (epfd < 0 || epfd >= NETMP_DESCRIPTORS) return NULL;
    char path[64], target[64] = { 0 };
    snprintf(path, sizeof path, "/proc/self/fd/%d", epfd);
    if (readlink(path, target, sizeof target - 1) < 0 || strcmp(target, "anon_inode:[eventpoll]") != 0) return NULL;
    return adopt_epoll(epfd) == epfd ? set_of(epfd) : NULL;
}

int epoll_create(int size) {
    if (size <= 0) { errno = EINVAL; return -1; }
    return adopt_epoll(REAL(epoll_create1)(0));
}

static void queue_recheck(struct epoll_set *set, int fd) {
    struct member *m = &set->members[fd];
    if (m->queued) return;
    if (set->recheck_count == set->recheck_capacity) {
        int capacity = set->recheck_capacity ? set->recheck_capacity * 2 : 64;
        int *grown = realloc(set->recheck, (size_t)capacity * sizeof *grown);
        if (!grown) return; // the member is still rung on its next change
        set->recheck = grown;
        set->recheck_capacity = capacity;
    }
    set->recheck[set->recheck_count++] = fd;
    m->queued = 1;
}

// Drops a member from the shadow (the kernel side is the caller's business).
// A listener's kernel twin joins the kernel instance beside the placeholder, with the member's
// number as its data: a loopback connection arriving there is an event for the member,
// whose readiness then says readable (the shim closes a member before its socket, so the
// twin is still open when it leaves).
static void register_twin(struct epoll_set *set, int fd, struct member *m) {
    int twin = m->socket ? netmp_twin(m->socket) : -1;
    if (twin < 0 || m->twin_plus_one) return;
    struct epoll_event registration = { .events = EPOLLIN | EPOLLET, .data.u64 = MEMBER_TAG | TWIN_BIT | (uint64_t)fd };
    if (REAL(epoll_ctl)(set->fd, EPOLL_CTL_ADD, twin, &registration) == 0) {
        m->twin_plus_one = twin + 1;
        m->twin_arrived = 1; // what waited before it joined
    }
}

static void forget_member(struct epoll_set *set, int fd) {
    struct member *m = &set->members[fd];
    if (m->twin_plus_one) REAL(epoll_ctl)(set->fd, EPOLL_CTL_DEL, m->twin_plus_one - 1, NULL);
    if (m->present && m->socket && m->entered) netmp_poll_leave(m->socket, fd, 0); // edge-triggered: no count to take out
    uint8_t queued = m->queued; // a stale recheck entry stays; the scan skips it
    memset(m, 0, sizeof *m);
    m->queued = queued;
}

// EPOLLEXCLUSIVE as do_epoll_ctl allows it: on an add, with nothing beside it but EPOLLIN,
// EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLWAKEUP and EPOLLET (EPOLLEXCLUSIVE_OK_BITS); never on a
// modify, nor on a member added with it.
static int exclusive_refused(struct epoll_set *set, int op, int fd, struct epoll_event *event) {
    const uint32_t allowed = EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;
    if (op == EPOLL_CTL_ADD) return (event->events & EPOLLEXCLUSIVE) && (event->events & ~allowed);
    if (op != EPOLL_CTL_MOD) return 0;
    struct member *m = &set->members[fd];
    return (event->events & EPOLLEXCLUSIVE) || (m->present && m->socket && m->exclusive);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event) {
    if (netmp_socket_of(epfd)) { // as socket_as_epoll, after the kernel's EBADF for the target
        errno = fd < 0 || fcntl(fd, F_GETFD) < 0 ? EBADF : EINVAL;
        return -1;
    }
    struct epoll_set *set = set_of(epfd);
    if (!set && op == EPOLL_CTL_ADD && netmp_socket_of(fd)) set = adopt_existing(epfd);
    if (!set) return REAL(epoll_ctl)(epfd, op, fd, event);
    if (fd < 0 || fd >= NETMP_DESCRIPTORS) {
        // Beyond the shadow's table: EBADF for a number that is not open, else ENOSPC.
        if (fd < 0 || fcntl(fd, F_GETFD) < 0) { errno = EBADF; return -1; }
        errno = ENOSPC;
        return -1;
    }
    if (op != EPOLL_CTL_DEL && !event) { errno = EFAULT; return -1; }
    void *socket = netmp_socket_of(fd);
    pthread_mutex_lock(&set->lock);
    if (socket && exclusive_refused(set, op, fd, event)) {
        pthread_mutex_unlock(&set->lock);
        errno = EINVAL;
        return -1;
    }
    struct epoll_event registration = { 0 };
    if (event) registration.events = socket ? EPOLLIN | EPOLLET : event->events;
    registration.data.u64 = socket ? MEMBER_TAG | (uint64_t)fd : event ? event->data.u64 : 0;
    int r = REAL(epoll_ctl)(epfd, op, fd, op == EPOLL_CTL_DEL ? NULL : &registration);
    if (r < 0) {
        int e = errno;
        pthread_mutex_unlock(&set->lock);
        errno = e;
        return -1;
    }
    struct member *m = &set->members[fd];
    switch (op) {
    case EPOLL_CTL_ADD:
        forget_member(set, fd); // a kernel descriptor closed without DEL left its entry
        m->present = 1;
        m->socket = socket;
        m->data = event->data.u64;
        m->events = event->events;
        // Register as a poller before the first look (the recheck on the next wait).
        if (socket) {
            m->entered = netmp_poll_enter(socket, fd) >= 0;
            m->exclusive = (event->events & EPOLLEXCLUSIVE) != 0;
            register_twin(set, fd, m);
            queue_recheck(set, fd);
        }
        break;
    case EPOLL_CTL_MOD:
        if (m->present && m->socket != socket) { // the number now names another socket
            forget_member(set, fd);
            m->present = 1;
            m->socket = socket;
            if (socket) m->entered = netmp_poll_enter(socket, fd) >= 0;
        }
        if (socket) register_twin(set, fd, m); // listen() may have made one since the ADD
        m->present = 1;
        m->data = event->data.u64;
        m->events = event->events;
        m->disabled = 0;
        m->last_ready = 0; // re-armed: what is ready now is reported, as the kernel does
        if (m->twin_plus_one) m->twin_arrived = 1;
        if (socket) queue_recheck(set, fd);
        break;
    case EPOLL_CTL_DEL:
        forget_member(set, fd);
        break;
    }
    pthread_mutex_unlock(&set->lock);
    return 0;
}

// What a netmp member reports now: the socket's readiness within the program's mask
// (errors and hang-ups always, as the kernel does).
// A listener whose twin is registered looks at the twin (a system call) only after the
// kernel reported it, until a look finds it empty: a level-triggered listener is looked at
// on every wait, and a server busy with netmp's connections would poll the twin each time.
static uint32_t member_events(struct member *m, int fd) {
    if (!m->entered) m->entered = netmp_poll_enter(m->socket, fd) >= 0; // a UDP socket bound since
    uint32_t asked = (m->events & ~MODE_BITS) | EPOLLERR | EPOLLHUP;
    if (!m->twin_plus_one) return (uint32_t)(uint16_t)netmp_readiness(m->socket) & asked;
    uint32_t ready = (uint32_t)(uint16_t)netmp_readiness_own(m->socket);
    if (m->twin_arrived && !(ready & EPOLLIN)) {
        struct pollfd p = { m->twin_plus_one - 1, POLLIN, 0 };
        if (REAL(poll)(&p, 1, 0) > 0 && (p.revents & POLLIN)) ready |= EPOLLIN;
        else m->twin_arrived = 0;
    }
    return ready & asked;
}

// What to report for netmp member `m` now (0: nothing). Level-triggered: its readiness.
// Edge-triggered: its readiness only if something new happened since the last look: a bit
// newly set, data arrived (for EPOLLIN) or send space freed (for EPOLLOUT), as the kernel
// reports an edge per arrival; a ring for anything else (an ACK under EPOLLIN) is no edge.
static uint32_t collect(struct member *m, int fd) {
    uint32_t ready = member_events(m, fd);
    if (!(m->events & EPOLLET)) return ready;
    uint64_t arrivals = 0, freed = 0;
    netmp_edge_marks(m->socket, &arrivals, &freed);
    uint32_t fresh = ready & ~m->last_ready;
    if ((ready & EPOLLIN) && arrivals != m->arrivals) fresh |= EPOLLIN;
    if ((ready & EPOLLOUT) && freed != m->freed) fresh |= EPOLLOUT;
    m->last_ready = ready;
    m->arrivals = arrivals;
    m->freed = freed;
    return fresh ? ready : 0;
}

// Records one report of netmp member `fd` and keeps its mode's promise.
static void report(struct epoll_set *set, int fd, uint32_t ready, struct epoll_event *out, int *n, uint64_t stamp,
                   int *keep) {
    struct member *m = &set->members[fd];
    out[*n].events = ready;
    out[*n].data.u64 = m->data;
    (*n)++;
    m->stamp = stamp;
    if (m->events & EPOLLONESHOT) m->disabled = 1;
    *keep = !(m->events & (EPOLLET | EPOLLONESHOT)); // level-triggered: look again next time
}

// Looks at the recheck list: reports what is ready (reported level-triggered members go
// to the back, for fairness when there are more than `max`), drops what is not.
static void scan_recheck(struct epoll_set *set, struct epoll_event *out, int *n, int max, uint64_t stamp) {
    int count = set->recheck_count, front = 0, back_count = 0;
    int back_small[64];
    int *back = count <= 64 ? back_small : malloc((size_t)count * sizeof *back);
    if (!back) back = back_small, count = count < 64 ? count : 64;
    for (int i = 0; i < set->recheck_count; i++) {
        int fd = set->recheck[i];
        struct member *m = &set->members[fd];
        if (!m->present || !m->socket || m->disabled) { m->queued = 0; continue; }
        if (*n >= max || i >= count || m->stamp == stamp) { set->recheck[front++] = fd; continue; }
        uint32_t ready = collect(m, fd);
        if (!ready) { m->queued = 0; continue; }
        int keep = 0;
        report(set, fd, ready, out, n, stamp, &keep);
        if (keep) back[back_count++] = fd;
        else m->queued = 0;
    }
    memcpy(set->recheck + front, back, (size_t)back_count * sizeof *back);
    set->recheck_count = front + back_count;
    if (back != back_small) free(back);
}

// The wait. timeout_ns < 0: forever.
static int wait_set(struct epoll_set *set, int epfd, struct epoll_event *out, int max, long long timeout_ns,
                    const sigset_t *mask) {
    if (max <= 0 || max > (int)(INT_MAX / sizeof(struct epoll_event))) { errno = EINVAL; return -1; }
    struct epoll_event small[64];
    struct epoll_event *kernel = max <= 64 ? small : malloc((size_t)max * sizeof *kernel);
    if (!kernel) { errno = ENOMEM; return -1; }
    long long deadline = timeout_ns < 0 ? -1 : netmp_now_ns() + timeout_ns;
    uint64_t stamp = atomic_fetch_add(&stamps, 1);
    int n = 0, result;
    for (;;) {
        pthread_mutex_lock(&set->lock);
        scan_recheck(set, out, &n, max, stamp);
        pthread_mutex_unlock(&set->lock);
        int timeout_ms = 0;
        if (n == 0) {
            long long left = deadline < 0 ? -1 : deadline - netmp_now_ns();
            timeout_ms = left < 0 ? (deadline < 0 ? -1 : 0) : (int)((left + 999999) / 1000000);
        }
        int r = n < max ? REAL(epoll_pwait)(epfd, kernel, max - n, timeout_ms, mask) : 0;
        if (r < 0) {
            if (n > 0) { result = n; break; }
            result = -1;
            break;
        }
        pthread_mutex_lock(&set->lock);
        for (int i = 0; i < r; i++) {
            uint64_t data = kernel[i].data.u64;
            if ((data & MEMBER_TAG_MASK) != MEMBER_TAG) { out[n++] = kernel[i]; continue; } // a kernel member's own
            int fd = (int)(data & 0xffffffffULL);
            if (fd < 0 || fd >= NETMP_DESCRIPTORS) continue;
            struct member *m = &set->members[fd];
            if (!m->present || !m->socket) continue; // removed while the event was on its way
            if (data & TWIN_BIT) m->twin_arrived = 1;
            if (m->disabled || m->stamp == stamp) continue;
            uint32_t ready = collect(m, fd);
            if (!ready) continue; // a ring for a change that is not in the program's mask
            int keep = 0;
            report(set, fd, ready, out, &n, stamp, &keep);
            if (keep) queue_recheck(set, fd);
        }
        pthread_mutex_unlock(&set->lock);
        if (n > 0 || timeout_ms == 0 || (deadline >= 0 && netmp_now_ns() >= deadline)) { result = n; break; }
    }
    if (kernel != small) free(kernel);
    return result;
}

// A netmp socket's placeholder is an epoll instance underneath, which the program must not
// be able to use as one: Linux's socket is no epoll, and says EINVAL.
static int socket_as_epoll(int epfd) {
    if (!netmp_socket_of(epfd)) return 0;
    errno = EINVAL;
    return 1;
}

int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout_ms, const sigset_t *mask) {
    if (socket_as_epoll(epfd)) return -1;
    struct epoll_set *set = set_of(epfd);
    if (!set) return REAL(epoll_pwait)(epfd, events, max, timeout_ms, mask);
    return wait_set(set, epfd, events, max, timeout_ms < 0 ? -1 : (long long)timeout_ms * 1000000LL, mask);
}

int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout_ms) {
    return epoll_pwait(epfd, events, max, timeout_ms, NULL);
}

int epoll_pwait2(int epfd, struct epoll_event *events, int max, const struct timespec *timeout, const sigset_t *mask) {
    if (socket_as_epoll(epfd)) return -1;
    struct epoll_set *set = set_of(epfd);
    if (!set) {
        if (!REAL(epoll_pwait2)) { errno = ENOSYS; return -1; }
        return REAL(epoll_pwait2)(epfd, events, max, timeout, mask);
    }
    if (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000L)) {
        errno = EINVAL;
        return -1;
    }
    return wait_set(set, epfd, events, max, timeout ? (long long)timeout->tv_sec * 1000000000LL + timeout->tv_nsec : -1, mask);
}

// close() (or dup2 over) descriptor `fd`: an epoll descriptor drops its shadow; any other
// leaves every set it was in, as the kernel's close does for the last descriptor of a file.
void netmp_epoll_descriptor_closed(int fd) {
    if (atomic_load_explicit(&set_count, memory_order_acquire) == 0 || fd < 0 || fd >= NETMP_DESCRIPTORS) return;
    pthread_mutex_lock(&all_lock);
    struct epoll_set *closing = atomic_exchange_explicit(&sets[fd], NULL, memory_order_acq_rel);
    if (closing) {
        for (struct epoll_set **link = &all_sets; *link; link = &(*link)->next) {
            if (*link == closing) { *link = closing->next; break; }
        }
        atomic_fetch_sub(&set_count, 1);
    }
    for (struct epoll_set *set = all_sets; set; set = set->next) {
        pthread_mutex_lock(&set->lock);
        struct member *m = &set->members[fd];
        // A socket's placeholder may outlive this descriptor (the library keeps a copy of
        // a named one for the slot's next socket), and the kernel drops a registration
        // only with the file's last descriptor: taken out here, while fd still names it.
        if (m->present && m->socket) REAL(epoll_ctl)(set->fd, EPOLL_CTL_DEL, fd, NULL);
        if (m->present) forget_member(set, fd);
        pthread_mutex_unlock(&set->lock);
    }
    pthread_mutex_unlock(&all_lock);
    if (!closing) return;
    // Emptied and kept for the next epoll_create: a thread still inside a wait on the
    // closed descriptor (which Linux allows) must not find freed memory.
    pthread_mutex_lock(&closing->lock);
    for (int member = 0; member < NETMP_DESCRIPTORS; member++) {
        struct member *m = &closing->members[member];
        if (m->present) forget_member(closing, member);
        m->queued = 0;
    }
    closing->recheck_count = 0;
    closing->fd = -1;
    pthread_mutex_unlock(&closing->lock);
    pthread_mutex_lock(&all_lock);
    closing->next = spare_sets;
    spare_sets = closing;
    pthread_mutex_unlock(&all_lock);
}

// A netmp socket handed to the kernel (a UDP datagram or a connect to loopback) keeps its
// descriptor number, and on Linux it stays the same file, so every epoll set it was in
// still holds it with the program's mask and data. Before the kernel socket takes the
// number, the placeholder's registration leaves each set (while fd still names it: the
// kernel would keep it as long as any copy of the placeholder lives) and the member stops
// polling the netmp socket, which is closed after; the member keeps its mask and data.
// Without this, a member would keep a pointer to the closed socket, and the next wait or
// EPOLL_CTL_MOD would read freed memory.
void netmp_epoll_moving(int fd) {
    if (atomic_load_explicit(&set_count, memory_order_acquire) == 0 || fd < 0 || fd >= NETMP_DESCRIPTORS) return;
    pthread_mutex_lock(&all_lock);
    for (struct epoll_set *set = all_sets; set; set = set->next) {
        pthread_mutex_lock(&set->lock);
        struct member *m = &set->members[fd];
        if (m->present && m->socket) {
            REAL(epoll_ctl)(set->fd, EPOLL_CTL_DEL, fd, NULL);
            if (m->twin_plus_one) REAL(epoll_ctl)(set->fd, EPOLL_CTL_DEL, m->twin_plus_one - 1, NULL);
            if (m->entered) netmp_poll_leave(m->socket, fd, 0);
            m->twin_plus_one = 0;
            m->twin_arrived = 0;
            m->entered = 0;
            m->moving = 1;
        }
        pthread_mutex_unlock(&set->lock);
    }
    pthread_mutex_unlock(&all_lock);
}

// After the move: the kernel socket now at fd joins each set the socket was in, with the
// program's mask and data (one that EPOLLONESHOT had disabled joins with no events, as
// the kernel keeps a disabled item); where the kernel refuses, the member is gone. When
// the move failed, the netmp socket rejoins as a member again.
void netmp_epoll_moved(int fd, int moved) {
    if (atomic_load_explicit(&set_count, memory_order_acquire) == 0 || fd < 0 || fd >= NETMP_DESCRIPTORS) return;
    void *socket = moved ? NULL : netmp_socket_of(fd);
    pthread_mutex_lock(&all_lock);
    for (struct epoll_set *set = all_sets; set; set = set->next) {
        pthread_mutex_lock(&set->lock);
        struct member *m = &set->members[fd];
        if (m->present && m->moving) {
            m->moving = 0;
            struct epoll_event registration = { .events = m->disabled ? m->events & MODE_BITS : m->events,
                                                .data.u64 = m->data };
            if (socket) registration = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u64 = MEMBER_TAG | (uint64_t)fd };
            if (REAL(epoll_ctl)(set->fd, EPOLL_CTL_ADD, fd, &registration) < 0) {
                forget_member(set, fd);
            } else {
                m->socket = socket;
                m->stamp = 0;
                if (socket) {
                    m->entered = netmp_poll_enter(socket, fd) >= 0;
                    register_twin(set, fd, m);
                    queue_recheck(set, fd);
                }
            }
        }
        pthread_mutex_unlock(&set->lock);
    }
    pthread_mutex_unlock(&all_lock);
}

// A forked child has one thread, and locks other threads held at fork stay held: they are
// made anew. netmp members leave the sets (their sockets became kernel sockets, which the
// kernel's set does not hold).
void netmp_epoll_after_fork(void) {
    pthread_mutex_init(&all_lock, NULL);
    for (struct epoll_set *set = all_sets; set; set = set->next) {
        pthread_mutex_init(&set->lock, NULL);
        for (int fd = 0; fd < NETMP_DESCRIPTORS; fd++) {
            // Reads only, unless there is something to clear: untouched pages stay shared.
            if (set->members[fd].socket || set->members[fd].queued) memset(&set->members[fd], 0, sizeof set->members[fd]);
        }
        set->recheck_count = 0;
    }
}
