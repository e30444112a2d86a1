// A buffer the program may not use makes the call fail with EFAULT, as the kernel's copy
// does: nothing sent from it, stream data kept for the next receive, a datagram dropped as
// udp_recvmsg drops it. Memory that is there but read-only can be sent from, not received
// into. A fault of the program's own still gets its disposition: its handler, the default
// (death by SIGSEGV), or nothing for an ignored SIGSEGV sent by kill.
#include "../trace.h"
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/resource.h>

static sigjmp_buf back;
// An address nothing is mapped at (volatile: the compiler must not see through it).
static char *volatile unmapped = (char *)16;
static volatile sig_atomic_t caught;
static void on_fault(int signal) { caught = signal; siglongjmp(back, 1); }

int main(int argc, char **argv) {
    begin(argc, argv);
    long page = sysconf(_SC_PAGESIZE);
    char *pages = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(pages, 'r', 2 * page);
    char *readonly = pages + page, *none = pages + 2 * page;
    mprotect(readonly, page, PROT_READ);
    mprotect(none, page, PROT_NONE);
    char *bad = unmapped;
    char good[64];

    // Sending: the count service answers how many bytes arrived.
    int fd = connected(7002);
    T(send(fd, bad, 100, 0));
    T(write(fd, none, 10));
    T(send(fd, none - 10, 100, 0)); // reaches the page it may not read
    T(send(fd, readonly, 10, 0));
    struct iovec pieces[2] = { { readonly, 5 }, { bad, 5 } };
    T(writev(fd, pieces, 2));
    T(writev(fd, (struct iovec *)bad, 2));
    T(sendmsg(fd, (struct msghdr *)bad, 0));
    T(shutdown(fd, SHUT_WR));
    wait_readable(fd, 3);
    T(read_exactly(fd, good, 3));
    note("count service saw", strtol(good, NULL, 10));
    T(close(fd));

    // Receiving: the data stays for the receive that can take it.
    fd = connected(7001);
    T(send(fd, "hello", 5, 0));
    wait_readable(fd, 5);
    T(recv(fd, bad, 5, 0));
    T(recv(fd, readonly, 5, 0));
    T(read(fd, none, 5));
    struct iovec into[2] = { { good, 2 }, { readonly, 3 } };
    T(readv(fd, into, 2));
    T(recvmsg(fd, (struct msghdr *)bad, 0));
    T(recv(fd, good, 5, 0));
    note("got hello", memcmp(good, "hello", 5) == 0);
    T(close(fd));

    // A datagram the copy fails on is gone.
    int udp = FD(socket(FAMILY, SOCK_DGRAM, 0));
    address echo = peer(7010);
    T(connect(udp, &echo.sa, ADDRLEN));
    T(sendto(udp, bad, 4, 0, NULL, 0));
    T(send(udp, "ping", 4, 0));
    wait_readable(udp, 4);
    T(recv(udp, none, 4, 0));
    T(recv(udp, good, 4, MSG_DONTWAIT));
    T(send(udp, "pong", 4, 0));
    wait_readable(udp, 4);
    T(recv(udp, good, 4, 0));
    T(close(udp));

    // The program's own faults.
    signal(SIGSEGV, on_fault);
    if (sigsetjmp(back, 1) == 0) *(volatile char *)none = 1;
    note("own handler caught SIGSEGV", caught == SIGSEGV);
    signal(SIGSEGV, SIG_IGN);
    T(kill(getpid(), SIGSEGV));
    note("ignored SIGSEGV from kill: still running", 1);
    signal(SIGSEGV, SIG_DFL);
    pid_t child = fork();
    if (child == 0) {
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        *(volatile char *)bad = 1;
        _exit(0);
    }
    int status = 0;
    T(waitpid(child, &status, 0) == child);
    note("child killed by SIGSEGV", WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
    fd = connected(7002);
    T(send(fd, bad, 1, 0)); // still EFAULT after all that
    T(close(fd));
    return 0;
}
