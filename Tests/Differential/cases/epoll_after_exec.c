// An epoll instance inherited through exec: the new program adds a socket of its own to
// it, and events come for the socket and for the pipe the old program registered, each
// with its own data; a level-triggered member drained is quiet again.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    if (argc < 4) {
        int epfd = FD(epoll_create1(0));
        int pipe_fds[2];
        T(pipe(pipe_fds));
        struct epoll_event e = { .events = EPOLLIN, .data.u64 = 1234 };
        T(epoll_ctl(epfd, EPOLL_CTL_ADD, pipe_fds[0], &e));
        T(write(pipe_fds[1], "p", 1));
        char epoll_text[16], pipe_text[16];
        snprintf(epoll_text, sizeof epoll_text, "%d", epfd);
        snprintf(pipe_text, sizeof pipe_text, "%d", pipe_fds[0]);
        fflush(stdout);
        execl("/proc/self/exe", argv[0], argv[1], epoll_text, pipe_text, (char *)NULL);
        printf("exec failed: %s\n", strerrorname_np(errno));
        return 1;
    }
    int epfd = atoi(argv[2]), pipe_read = atoi(argv[3]);
    printf("after exec\n");
    int fd = connected(7001);
    struct epoll_event e = { .events = EPOLLIN, .data.u64 = 777 };
    T(epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e));
    T(send(fd, "x", 1, 0));
    wait_readable(fd, 1);
    // Both are ready: the pipe since before the exec, the socket with the echo.
    long seen_socket = 0, seen_pipe = 0, other = 0;
    for (int round = 0; round < 50 && !(seen_socket && seen_pipe); round++) {
        struct epoll_event events[8];
        int n = epoll_wait(epfd, events, 8, 100);
        for (int i = 0; i < n; i++) {
            if (events[i].data.u64 == 777 && (events[i].events & EPOLLIN)) seen_socket = 1;
            else if (events[i].data.u64 == 1234 && (events[i].events & EPOLLIN)) seen_pipe = 1;
            else other++;
        }
    }
    note("socket reported with its data", seen_socket);
    note("pipe reported with its data", seen_pipe);
    note("other events", other);
    char byte;
    T(read(pipe_read, &byte, 1));
    T(recv(fd, &byte, 1, 0));
    struct epoll_event events[8];
    T(epoll_wait(epfd, events, 8, 200)); // both drained: nothing
    T(epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL));
    T(close(fd));
    T(close(epfd));
    return 0;
}
