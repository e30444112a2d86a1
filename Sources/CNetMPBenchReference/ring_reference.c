#define _GNU_SOURCE
#include "netmp_bench_reference.h"
#include "pin.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ring {
    _Alignas(64) atomic_long tail;
    _Alignas(64) atomic_long head;
    long capacity;
    char *storage;
};

struct producer { struct ring *r; long total, chunk; int cpu; };

static void *produce(void *a) {
    struct producer *p = a;
    pin(p->cpu);
    char *data = malloc(p->chunk);
    memset(data, 0x5a, p->chunk);
    long sent = 0;
    while (sent < p->total) {
        long t = atomic_load_explicit(&p->r->tail, memory_order_relaxed);
        long free = p->r->capacity - (t - atomic_load_explicit(&p->r->head, memory_order_acquire));
        long n = p->chunk < free ? p->chunk : free;
        if (n > p->total - sent) n = p->total - sent;
        if (n <= 0) { sched_yield(); continue; }
        for (long done = 0; done < n;) {
            long pos = (t + done) % p->r->capacity;
            long c = n - done < p->r->capacity - pos ? n - done : p->r->capacity - pos;
            memcpy(p->r->storage + pos, data + done, c);
            done += c;
        }
        atomic_store_explicit(&p->r->tail, t + n, memory_order_release);
        sent += n;
    }
    free(data);
    return NULL;
}

double netmp_reference_ring_rate(long bytes, long capacity, long chunk, const int *cpus, int cpu_count) {
    struct ring r = { 0, 0, capacity, aligned_alloc(64, capacity) };
    char *out = malloc(chunk);
    pin(cpus[0]);
    struct producer p = { &r, bytes, chunk, cpus[1 % cpu_count] };
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pthread_t thread;
    pthread_create(&thread, NULL, produce, &p);
    long received = 0, sum = 0;
    while (received < bytes) {
        long h = atomic_load_explicit(&r.head, memory_order_relaxed);
        long available = atomic_load_explicit(&r.tail, memory_order_acquire) - h;
        long n = available < chunk ? available : chunk;
        if (n <= 0) { sched_yield(); continue; }
        for (long done = 0; done < n;) {
            long pos = (h + done) % capacity;
            long c = n - done < capacity - pos ? n - done : capacity - pos;
            memcpy(out + done, r.storage + pos, c);
            done += c;
        }
        sum += out[0];
        atomic_store_explicit(&r.head, h + n, memory_order_release);
        received += n;
    }
    pthread_join(thread, NULL);
    clock_gettime(CLOCK_MONOTONIC, &end);
    free(r.storage);
    free(out);
    double seconds = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    return sum >= 0 ? received / seconds : 0;
}
