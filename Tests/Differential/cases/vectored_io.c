// writev/readv and sendmsg/recvmsg with several pieces.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001);
    char a[] = "abc", b[] = "defgh", c[] = "ij";
    struct iovec out[3] = { { a, 3 }, { b, 5 }, { c, 2 } };
    T(writev(fd, out, 3));
    char x[4] = { 0 }, y[6] = { 0 };
    struct iovec in[2] = { { x, 4 }, { y, 6 } };
    wait_readable(fd, 10); // the whole echo is in, however it was segmented
    T(readv(fd, in, 2));
    printf("pieces: %.4s %.6s\n", x, y);
    struct msghdr message = { .msg_iov = out, .msg_iovlen = 2 };
    T(sendmsg(fd, &message, 0));
    struct msghdr reply = { .msg_iov = in, .msg_iovlen = 2 };
    wait_readable(fd, 8);
    T(recvmsg(fd, &reply, 0));
    note("msg_flags", reply.msg_flags);
    volatile int negative = -1; // a count the compiler cannot see
    T(writev(fd, out, negative));
    T(close(fd));
    return 0;
}
