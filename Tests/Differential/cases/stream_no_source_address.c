// recvfrom and recvmsg on a TCP socket: Linux leaves the source address empty (the
// length comes back 0, the buffer untouched), for read-the-peer programs that pass one.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001);
    char reply[16] = { 0 };
    address from;
    memset(&from, 0xAB, sizeof from);
    socklen_t length = sizeof from;
    T(send(fd, "hello", 5, 0));
    T(recvfrom(fd, reply, 5, MSG_WAITALL, (struct sockaddr *)&from, &length));
    note("recvfrom address length", (long)length);
    note("recvfrom address untouched", ((unsigned char *)&from)[0] == 0xAB);
    T(send(fd, "again", 5, 0));
    struct iovec part = { .iov_base = reply, .iov_len = 5 };
    struct msghdr message = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &part, .msg_iovlen = 1 };
    T(recvmsg(fd, &message, MSG_WAITALL));
    note("recvmsg name length", (long)message.msg_namelen);
    T(memcmp(reply, "again", 5));
    T(close(fd));
    return 0;
}
