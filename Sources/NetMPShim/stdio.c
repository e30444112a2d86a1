// stdio on netmp sockets. glibc's FILE streams and dprintf do their I/O through libc's
// internal system calls, which the preload never sees: on a netmp socket they would reach
// the placeholder that stands in for it, where every read and write fails with EINVAL.
// So a stream opened on a netmp socket
// is a cookie stream (fopencookie) whose reads, writes and close are the socket's, and
// dprintf formats first and then writes through the shim.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "shim.h"

static ssize_t stream_read(void *cookie, char *bytes, size_t count) {
    return read((int)(intptr_t)cookie, bytes, count); // the shim's read
}

// stdio counts a short write as a failed flush, as the kernel file path never returns one
// on a blocking descriptor: write until done, or until the socket refuses (EAGAIN on a
// non-blocking one, a reset), which stdio then reports.
static ssize_t write_all(int fd, const char *bytes, size_t count) {
    size_t done = 0;
    while (done < count) {
        ssize_t n = write(fd, bytes + done, count - done);
        if (n < 0) return done > 0 ? (ssize_t)done : -1;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static ssize_t stream_write(void *cookie, const char *bytes, size_t count) {
    return write_all((int)(intptr_t)cookie, bytes, count);
}

// A socket does not seek; stdio ignores ESPIPE where a stream cannot (fflush of input).
static int stream_seek(void *cookie, off64_t *position, int whence) {
    (void)cookie, (void)position, (void)whence;
    errno = ESPIPE;
    return -1;
}

static int stream_close(void *cookie) { return close((int)(intptr_t)cookie); }

// A stream whose I/O is the shim's calls on descriptor fd.
static FILE *socket_stream(int fd, const char *mode) {
    cookie_io_functions_t functions = { stream_read, stream_write, stream_seek, stream_close };
    FILE *stream = fopencookie((void *)(intptr_t)fd, mode, functions);
    // fileno() names the socket, as it does for a stream on a kernel socket; glibc's cookie
    // stream does its I/O through the functions above whatever the number says.
    if (stream) stream->_fileno = fd;
    return stream;
}

DEFINE_REAL(FILE *, fdopen, int, const char *)
DEFINE_REAL(int, vdprintf, int, const char *, va_list)
DEFINE_REAL(int, __vdprintf_chk, int, int, const char *, va_list)

FILE *fdopen(int fd, const char *mode) {
    if (!netmp_socket_of(fd)) return REAL(fdopen)(fd, mode);
    return socket_stream(fd, mode);
}

// A program that puts a socket on descriptor 0, 1 or 2 (dup2 of an accepted connection,
// as inetd-style servers do, or a socket made after close(1)) then reads and writes it
// through stdin, stdout or stderr: glibc's own streams would use the placeholder. The standard
// stream becomes, once, a cookie stream on that number: its I/O goes through the shim, so
// it stays right whatever the number refers to later (a kernel file passes straight
// through). It keeps the old stream's buffering once that was settled (a terminal's stdout
// stays line-buffered, stderr unbuffered), as glibc's stream would; else it is a socket's,
// full. Output the old stream still held moves to the new one, as it would have gone to
// the new descriptor.
enum { glibc_unbuffered = 0x0002, glibc_line_buffered = 0x0200 }; // _IO_UNBUFFERED, _IO_LINE_BUF
void netmp_stdio_follow(int fd) {
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static FILE *made[3];
    if (fd < 0 || fd > 2) return;
    pthread_mutex_lock(&lock);
    if (!made[fd] && (made[fd] = socket_stream(fd, fd == 0 ? "r" : "w"))) {
        FILE *old = fd == 0 ? stdin : fd == 1 ? stdout : stderr, *stream = made[fd];
        if (old->_flags & glibc_unbuffered) setvbuf(stream, NULL, _IONBF, 0);
        else if (old->_flags & glibc_line_buffered) setvbuf(stream, NULL, _IOLBF, BUFSIZ);
        if (fd != 0) {
            flockfile(old);
            if (old->_IO_write_ptr > old->_IO_write_base) {
                fwrite(old->_IO_write_base, 1, (size_t)(old->_IO_write_ptr - old->_IO_write_base), stream);
                old->_IO_write_ptr = old->_IO_write_base;
            }
            funlockfile(old);
        }
        if (fd == 0) stdin = stream;
        else if (fd == 1) stdout = stream;
        else stderr = stream;
    }
    pthread_mutex_unlock(&lock);
}

// glibc's checking formatter: with flag > 0 (a program built with _FORTIFY_SOURCE) it
// refuses %n in a writable format, as the kernel path's __vdprintf_chk does.
extern int __vsnprintf_chk(char *, size_t, int, size_t, const char *, va_list);

// dprintf on a netmp socket: format, then write through the shim. Most lines fit the stack
// buffer; a longer one is formatted once more into the heap.
static int format_and_write(int fd, int flag, const char *format, va_list arguments) {
    char line[1024];
    va_list again;
    va_copy(again, arguments);
    int length = __vsnprintf_chk(line, sizeof line, flag, sizeof line, format, arguments);
    char *text = line;
    if (length >= (int)sizeof line) {
        text = malloc((size_t)length + 1);
        if (!text) { va_end(again); errno = ENOMEM; return -1; }
        __vsnprintf_chk(text, (size_t)length + 1, flag, (size_t)length + 1, format, again);
    }
    va_end(again);
    if (length < 0) return -1;
    ssize_t n = write_all(fd, text, (size_t)length);
    if (text != line) free(text);
    return n < length ? -1 : length;
}

int vdprintf(int fd, const char *format, va_list arguments) {
    if (!netmp_socket_of(fd)) {
        return REAL(vdprintf)(fd, format, arguments);
    }
    return format_and_write(fd, 0, format, arguments);
}

int dprintf(int fd, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    int n = vdprintf(fd, format, arguments);
    va_end(arguments);
    return n;
}

// The _FORTIFY_SOURCE forms, which a program built with it calls instead.
int __vdprintf_chk(int fd, int flag, const char *format, va_list arguments) {
    if (!netmp_socket_of(fd)) {
        return REAL(__vdprintf_chk)(fd, flag, format, arguments);
    }
    return format_and_write(fd, flag, format, arguments);
}

int __dprintf_chk(int fd, int flag, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    int n = __vdprintf_chk(fd, flag, format, arguments);
    va_end(arguments);
    return n;
}
