// stdio on a socket, as inetd-style servers use it: fdopen, fprintf and fflush send,
// fgets reads the echo, fileno names the socket, fclose closes it. And a forked child
// writes on the socket it inherited (Linux delivers its bytes; no SIGPIPE).
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001);
    FILE *stream = fdopen(fd, "r+");
    note("fdopen gave a stream", stream != NULL);
    if (!stream) return 1;
    note("fileno is the socket", fileno(stream) == fd);
    T(fprintf(stream, "line %d\n", 1));
    T(fputs("second line\n", stream));
    T(fflush(stream));
    char line[64] = { 0 };
    note("first line back", fgets(line, sizeof line, stream) != NULL && strcmp(line, "line 1\n") == 0);
    note("second line back", fgets(line, sizeof line, stream) != NULL && strcmp(line, "second line\n") == 0);
    // A larger write than stdio's buffer goes through in pieces.
    static char big[20000];
    memset(big, 'b', sizeof big);
    big[sizeof big - 1] = '\n';
    T(fwrite(big, 1, sizeof big, stream));
    T(fflush(stream));
    static char back[20000];
    T(fread(back, 1, sizeof back, stream));
    note("big write back", memcmp(back, big, sizeof big) == 0);

    // dprintf writes through the descriptor, stdio's buffer untouched.
    T(dprintf(fd, "dprintf %s\n", "line"));
    note("dprintf line back", fgets(line, sizeof line, stream) != NULL && strcmp(line, "dprintf line\n") == 0);

    // Write after fork: the child's bytes reach the peer.
    pid_t child = fork();
    if (child == 0) {
        ssize_t n = write(fd, "from child\n", 11);
        _exit(n == 11 ? 0 : 1);
    }
    int status = -1;
    T(waitpid(child, &status, 0) == child);
    note("child exited", WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status));
    note("child's line back", fgets(line, sizeof line, stream) != NULL && strcmp(line, "from child\n") == 0);

    T(fclose(stream));
    T(write(fd, "x", 1)); // fclose closed the socket
    // A stream opened read-only on a fresh connection reads the peer's greeting.
    int hello = connected(7006);
    FILE *in = fdopen(hello, "r");
    note("fgets from a read-only stream", in && fgets(line, sizeof line, in) && strcmp(line, "hello\n") == 0);
    if (in) T(fclose(in));
    return 0;
}
