// C references for netmp's benchmarks: the same algorithms, written the way a C stack would,
// measured in the same run so the benchmark prints a ratio.
#ifndef NETMP_BENCH_REFERENCE_H
#define NETMP_BENCH_REFERENCE_H
// Messages per second through a bounded MPSC ring (Vyukov) with an eventfd wakeup, from
// `producers` threads to one consumer; threads pinned round-robin over `cpus`.
double netmp_reference_port_rate(long messages, int producers, const int *cpus, int cpu_count);


// Bytes per second through a Lamport single-producer ring of `capacity` bytes, producer
// writing `chunk`-byte pieces on cpus[1 % n], consumer reading on cpus[0].
double netmp_reference_ring_rate(long bytes, long capacity, long chunk, const int *cpus, int cpu_count);
#endif
