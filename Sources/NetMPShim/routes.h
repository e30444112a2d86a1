// Which destinations stay with the kernel: loopback always (netmp has no loopback
// interface), and the CIDR blocks in NETMP_KERNEL_ROUTES (e.g. "192.168.0.0/16,10.1.2.3/32").
#ifndef NETMP_ROUTES_H
#define NETMP_ROUTES_H
#include <stdint.h>

// Reads NETMP_KERNEL_ROUTES once, from the constructor. Returns -1 (and says why on stderr)
// if it does not parse; netmp then stays off.
int netmp_routes_load(void);
// 1 if a socket for `address` (host order) must be a kernel socket.
int netmp_route_to_kernel(uint32_t address);
#endif
