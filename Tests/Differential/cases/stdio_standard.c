// A socket dup'ed onto descriptors 0 and 1, then used through stdin and stdout (printf,
// puts, fgets), as simple inetd-style servers do; the descriptors restored after.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int fd = connected(7001);
    int saved_out = FD(dup(1)), saved_in = FD(dup(0));
    // Output through stdout: nothing is traced while descriptor 1 is the socket.
    fflush(stdout);
    int r1 = dup2(fd, 1);
    printf("hello %d\n", 42);
    puts("line two");
    int flushed = fflush(stdout);
    int r2 = dup2(saved_out, 1);
    note("dup2 onto stdout", r1 == 1);
    note("fflush", flushed);
    note("restored", r2 == 1);
    char back[64] = { 0 };
    T(read_exactly(fd, back, 18));
    note("the echo of stdout's lines", strcmp(back, "hello 42\nline two\n") == 0);
    // Input through stdin.
    T(send(fd, "input line\n", 11, 0));
    T(dup2(fd, 0));
    char line[64] = { 0 };
    note("fgets from stdin", fgets(line, sizeof line, stdin) != NULL && strcmp(line, "input line\n") == 0);
    T(dup2(saved_in, 0));
    T(close(fd));
    return 0;
}
