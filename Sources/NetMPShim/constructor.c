// Runs when the dynamic loader maps libnetmp.so into a program (LD_PRELOAD), before main:
// with NETMP_TAP set the stack comes up here, so even `sleep 30` answers ping.
#include "netmp.h"
#include "routes.h"

__attribute__((constructor)) static void netmp_library_loaded(void) {
    if (netmp_routes_load() < 0) return; // said why on stderr; every call stays the kernel's
    (void)netmp_start_from_environment();
}
