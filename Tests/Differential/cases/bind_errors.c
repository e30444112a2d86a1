// bind: a port in use, an address not ours, a wildcard then getsockname.
#include "../trace.h"
int main(int argc, char **argv) {
    begin(argc, argv);
    int a = FD(socket(AF_INET, SOCK_STREAM, 0));
    int b = FD(socket(AF_INET, SOCK_STREAM, 0));
    struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons(7200) };
    T(bind(a, (struct sockaddr *)&any, sizeof any));
    T(listen(a, 4));
    T(bind(b, (struct sockaddr *)&any, sizeof any));
    struct sockaddr_in foreign = { .sin_family = AF_INET, .sin_port = htons(7201) };
    inet_pton(AF_INET, "10.99.99.99", &foreign.sin_addr);
    T(bind(b, (struct sockaddr *)&foreign, sizeof foreign));
    struct sockaddr_in name;
    socklen_t length = sizeof name;
    T(getsockname(a, (struct sockaddr *)&name, &length));
    note("port", ntohs(name.sin_port));
    note("address is wildcard", name.sin_addr.s_addr == 0);
    any.sin_port = 0;
    T(bind(b, (struct sockaddr *)&any, sizeof any));
    length = sizeof name;
    T(getsockname(b, (struct sockaddr *)&name, &length));
    note("ephemeral port chosen", ntohs(name.sin_port) != 0);
    T(close(a));
    T(close(b));
    return 0;
}
