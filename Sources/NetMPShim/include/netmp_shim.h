// The shim has no API of its own: it is loaded with LD_PRELOAD and interposes libc.
// Its only link to the stack is Include/netmp.h.
