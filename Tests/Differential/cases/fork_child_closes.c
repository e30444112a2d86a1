// fork: the child closes its copy of a connected socket and exits; the parent's
// connection goes on untouched.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001);
    pid_t child = fork();
    if (child == 0) { close(fd); _exit(7); }
    int status = 0;
    T(waitpid(child, &status, 0) == child);
    note("child exit status", WEXITSTATUS(status));
    char bytes[8];
    T(send(fd, "after", 5, 0));
    T(recv(fd, bytes, 5, MSG_WAITALL));
    T(close(fd));
    return 0;
}
