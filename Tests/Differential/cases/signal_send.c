// A signal handler that calls send(): with SA_RESTART the blocked recv goes on and gets
// the echo of what the handler sent.
#include "../trace.h"
static int echo_fd;
static volatile sig_atomic_t handled;
static void on_alarm(int signal) { (void)signal; handled = send(echo_fd, "h", 1, 0) == 1; }
int main(int argc, char **argv) {
    begin(argc, argv);
    echo_fd = connected(7001);
    struct sigaction action = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
    sigemptyset(&action.sa_mask);
    T(sigaction(SIGALRM, &action, NULL));
    T(ualarm(100000, 0) >= 0);
    char byte = 0;
    T(recv(echo_fd, &byte, 1, 0));
    note("handler sent", handled);
    note("byte is the handler's", byte == 'h');
    T(close(echo_fd));
    return 0;
}
