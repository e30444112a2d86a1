// Shared by the C references: pin the calling thread to one CPU, as the Swift side does.
#ifndef NETMP_BENCH_PIN_H
#define NETMP_BENCH_PIN_H
#include <pthread.h>
#include <sched.h>
static inline void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}
#endif
