#define _GNU_SOURCE
#include "netmp_bench_reference.h"
#include "pin.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#define CAPACITY 1024
struct message { long sender, number; };
struct port {
    _Alignas(64) atomic_long tail;
    _Alignas(64) long head;
    _Alignas(64) atomic_bool sleeping;
    int fd;
    atomic_long sequence[CAPACITY];
    struct message slot[CAPACITY];
};

static int port_send(struct port *p, struct message m) {
    long pos = atomic_load_explicit(&p->tail, memory_order_relaxed);
    for (;;) {
        long seq = atomic_load_explicit(&p->sequence[pos & (CAPACITY - 1)], memory_order_acquire);
        long diff = seq - pos;
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&p->tail, &pos, pos + 1, memory_order_relaxed, memory_order_relaxed)) break;
        } else if (diff < 0) {
            return 0;
        } else {
            pos = atomic_load_explicit(&p->tail, memory_order_relaxed);
        }
    }
    p->slot[pos & (CAPACITY - 1)] = m;
    atomic_store_explicit(&p->sequence[pos & (CAPACITY - 1)], pos + 1, memory_order_seq_cst);
    if (atomic_load(&p->sleeping) && atomic_exchange(&p->sleeping, 0)) {
        uint64_t one = 1;
        (void)!write(p->fd, &one, 8);
    }
    return 1;
}

static int port_receive(struct port *p, struct message *m) {
    long slot = p->head & (CAPACITY - 1);
    if (atomic_load_explicit(&p->sequence[slot], memory_order_acquire) != p->head + 1) return 0;
    *m = p->slot[slot];
    atomic_store_explicit(&p->sequence[slot], p->head + CAPACITY, memory_order_release);
    p->head++;
    return 1;
}

static void port_wait(struct port *p) {
    atomic_store(&p->sleeping, 1);
    if (atomic_load(&p->sequence[p->head & (CAPACITY - 1)]) == p->head + 1) { atomic_store(&p->sleeping, 0); return; }
    struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
    while (atomic_load(&p->sleeping) && poll(&pfd, 1, -1) < 0) {}
    atomic_store(&p->sleeping, 0);
    uint64_t v;
    (void)!read(p->fd, &v, 8);
}

struct producer_arg { struct port *p; long id, count; int cpu; };

static void *producer(void *a) {
    struct producer_arg *arg = a;
    pin(arg->cpu);
    for (long n = 0; n < arg->count; n++) {
        struct message m = { arg->id, n };
        while (!port_send(arg->p, m)) sched_yield();
    }
    return NULL;
}

double netmp_reference_port_rate(long messages, int producers, const int *cpus, int cpu_count) {
    struct port *p = aligned_alloc(64, sizeof *p);
    atomic_init(&p->tail, 0);
    p->head = 0;
    atomic_init(&p->sleeping, 0);
    p->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    for (long i = 0; i < CAPACITY; i++) atomic_init(&p->sequence[i], i);
    pin(cpus[0]);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pthread_t threads[64];
    struct producer_arg args[64];
    long per = messages / producers;
    for (int i = 0; i < producers; i++) {
        args[i] = (struct producer_arg){ p, i, per, cpus[(i + 1) % cpu_count] };
        pthread_create(&threads[i], NULL, producer, &args[i]);
    }
    long received = 0, checksum = 0;
    struct message m;
    while (received < per * producers) {
        if (port_receive(p, &m)) { received++; checksum += m.number; }
        else port_wait(p);
    }
    for (int i = 0; i < producers; i++) pthread_join(threads[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &end);
    close(p->fd);
    free(p);
    double seconds = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    return checksum >= 0 ? received / seconds : 0;
}
