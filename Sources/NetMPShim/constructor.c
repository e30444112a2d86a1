// Runs when the dynamic loader maps libnetmp.so into a program (LD_PRELOAD), before main:
// with NETMP_TAP set the stack comes up here, so even `sleep 30` answers ping.
#include "netmp.h"

__attribute__((constructor)) static void netmp_library_loaded(void) {
    (void)netmp_start_from_environment();
}
