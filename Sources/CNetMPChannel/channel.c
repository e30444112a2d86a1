// The layout is all in include/netmp_channel.h; compiling this checks its static asserts.
#include "netmp_channel.h"
