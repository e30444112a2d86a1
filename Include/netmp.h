// The C ABI of libnetmp: what the C shim calls in the Swift stack. Nothing else crosses.
#ifndef NETMP_H
#define NETMP_H

// Reads NETMP_* from the environment and, when NETMP_TAP is set, brings the stack up.
// Returns 0 when netmp runs, 1 when it is not configured (NETMP_TAP unset), and -1 when
// it could not start; then one line on stderr says why and the program keeps kernel sockets.
int netmp_start_from_environment(void);

#endif
