// exec: a SOCK_CLOEXEC socket is gone in the new program, another stays open.
#include "../trace.h"
int main(int argc, char **argv) {
    if (argc == 4) { // the exec'd program: are the two descriptors there?
        printf("after exec: closing one %s, keeping one %s\n",
               fcntl(atoi(argv[2]), F_GETFD) < 0 ? "gone" : "open", fcntl(atoi(argv[3]), F_GETFD) < 0 ? "gone" : "open");
        return 0;
    }
    begin(argc, argv);
    int closing = FD(socket(FAMILY, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int keeping = FD(socket(FAMILY, SOCK_STREAM, 0));
    note("FD_CLOEXEC", fcntl(closing, F_GETFD) & FD_CLOEXEC);
    T(fcntl(keeping, F_SETFD, FD_CLOEXEC));
    T(fcntl(keeping, F_SETFD, 0));
    fflush(stdout);
    char a[16], b[16];
    snprintf(a, sizeof a, "%d", closing);
    snprintf(b, sizeof b, "%d", keeping);
    execl("/proc/self/exe", argv[0], argv[1], a, b, (char *)NULL);
    printf("exec failed\n");
    return 1;
}
