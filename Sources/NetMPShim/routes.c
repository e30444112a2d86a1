#include "routes.h"
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NETMP_MAX_KERNEL_ROUTES 32
static struct { uint32_t network, mask; } routes[NETMP_MAX_KERNEL_ROUTES];
static int route_count;

int netmp_routes_load(void) {
    routes[0].network = 0x7F000000; // 127.0.0.0/8
    routes[0].mask = 0xFF000000;
    route_count = 1;
    const char *text = getenv("NETMP_KERNEL_ROUTES");
    if (!text || !*text) return 0;
    char copy[1024];
    if (strlen(text) >= sizeof copy) goto bad;
    strcpy(copy, text);
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *slash = strchr(item, '/');
        int prefix = 32;
        if (slash) {
            *slash = 0;
            char *end = NULL;
            long p = strtol(slash + 1, &end, 10);
            if (!*(slash + 1) || *end || p < 0 || p > 32) goto bad;
            prefix = (int)p;
        }
        struct in_addr address;
        if (inet_pton(AF_INET, item, &address) != 1 || route_count == NETMP_MAX_KERNEL_ROUTES) goto bad;
        uint32_t mask = prefix == 0 ? 0 : 0xFFFFFFFFu << (32 - prefix);
        routes[route_count].network = ntohl(address.s_addr) & mask;
        routes[route_count].mask = mask;
        route_count++;
    }
    return 0;
bad:
    fprintf(stderr, "netmp: not started, using kernel sockets: NETMP_KERNEL_ROUTES: '%s' is not a list like 192.168.0.0/16,10.1.2.3/32 (at most %d)\n",
            text, NETMP_MAX_KERNEL_ROUTES - 1);
    return -1;
}

int netmp_route_to_kernel(uint32_t address) {
    for (int i = 0; i < route_count; i++)
        if ((address & routes[i].mask) == routes[i].network) return 1;
    return 0;
}
