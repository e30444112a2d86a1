#pragma once
/// Heap allocations made by the whole process so far (malloc, calloc, realloc and the
/// aligned allocators): linked only into netmp-tcp-driver, whose interop tests prove that
/// a bulk transfer allocates nothing per packet.
unsigned long long netmp_allocations(void);
