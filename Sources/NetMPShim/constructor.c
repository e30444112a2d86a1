// Runs when the dynamic loader maps libnetmp.so into a program (LD_PRELOAD), before main:
// with NETMP_TAP set the stack comes up here, so even `sleep 30` answers ping.
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include "netmp.h"
#include "routes.h"
#include "shim.h"

// exit(): the kernel would close every socket and keep sending what the program wrote
// after the process is gone; netmp's threads die with the process, so it does that work
// before. Registered in the constructor, the handler runs after the program's own atexit
// handlers (which may still write). _exit() and fatal signals skip it (docs/SHIM.md).
// A forked child has no protocol threads (fork copies only the calling thread), so only
// the process that started the stack does this.
static pid_t stack_process;
static void netmp_program_exiting(void) {
    if (getpid() != stack_process) return;
    for (int fd = 0; fd < NETMP_DESCRIPTORS; fd++) {
        void *socket = atomic_exchange_explicit(&netmp_sockets[fd], NULL, memory_order_acq_rel);
        if (socket) netmp_socket_close_at_exit(socket);
    }
    netmp_finish_at_exit();
}

__attribute__((constructor)) static void netmp_library_loaded(void) {
    if (netmp_routes_load() < 0) return; // said why on stderr; every call stays the kernel's
    if (netmp_start_from_environment() != 0) return;
    stack_process = getpid();
    atexit(netmp_program_exiting);
}
