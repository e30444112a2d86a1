// Counts heap allocations by defining the allocator's entry points in the executable, which
// the dynamic linker then binds every caller to (the Swift runtime and libc included), and
// passing each call on to glibc's own __libc_* functions. Frees are passed on uncounted.
// Only netmp-tcp-driver links this: it is a measuring tool, not part of the stack.
// A sanitizer brings its own allocator interceptors: there the count stays 0.
#if defined(__has_feature)
#  if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#    define NETMP_SANITIZED 1
#  endif
#endif
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include "netmp_allocation_count.h"

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *pointer);

static _Atomic unsigned long long allocations;

__attribute__((unused)) static void count(void) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); }

unsigned long long netmp_allocations(void) { return atomic_load_explicit(&allocations, memory_order_relaxed); }

#ifndef NETMP_SANITIZED

void *malloc(size_t size) { count(); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { count(); return __libc_calloc(n, size); }
void *realloc(void *pointer, size_t size) { count(); return __libc_realloc(pointer, size); }
void free(void *pointer) { __libc_free(pointer); }
void *memalign(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    count();
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *out = pointer;
    return 0;
}
#endif
