// recvmsg's control messages for a netmp datagram (and for an error from the error queue,
// netmp_put_error), laid out as Linux's udp_recvmsg and udpv6_recvmsg lay them out: the timestamp first (sock_recv_cmsgs), then on an IPv6
// socket IPV6_PKTINFO, then IPv4's (ip_cmsg_recv: PKTINFO, TTL, TOS, ORIGDSTADDR) for an
// IPv4 datagram or IPv6's (HOPLIMIT, TCLASS, ORIGDSTADDR) for an IPv6 one. Each takes
// CMSG_SPACE of the buffer; one that does not fit is cut short or left out, and MSG_CTRUNC
// says so (Linux's put_cmsg).
#define _GNU_SOURCE
#include <linux/time_types.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <linux/errqueue.h> // after time.h: its timestamping structs use struct timespec
#include "netmp.h"
#include "shim.h"

static void put(struct msghdr *m, size_t *used, int level, int type, const void *data, size_t length) {
    size_t left = m->msg_control ? m->msg_controllen - *used : 0;
    if (left < sizeof(struct cmsghdr)) { m->msg_flags |= MSG_CTRUNC; return; }
    size_t size = CMSG_LEN(length);
    if (left < size) { m->msg_flags |= MSG_CTRUNC; size = left; }
    struct cmsghdr header = { .cmsg_len = size, .cmsg_level = level, .cmsg_type = type };
    char *at = (char *)m->msg_control + *used;
    memcpy(at, &header, sizeof header);
    if (size > CMSG_LEN(0)) memcpy(at + CMSG_LEN(0), data, size - CMSG_LEN(0));
    size_t space = CMSG_SPACE(length);
    *used += space < left ? space : left;
}

static int is_mapped(const uint8_t address[16]) {
    static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    return memcmp(address, prefix, 12) == 0;
}

void netmp_put_ancillary(struct msghdr *m, uint32_t wanted, int ipv6_socket, const netmp_datagram_info *info) {
    size_t used = 0;
    if (wanted & NETMP_ANCILLARY_TIMESTAMP) {
        long long seconds = info->arrival / 1000000000LL, nanoseconds = info->arrival % 1000000000LL;
        int ns = (wanted & NETMP_ANCILLARY_NANOSECONDS) != 0, new = (wanted & NETMP_ANCILLARY_NEW_TIMESTAMP) != 0;
        if (new && ns) {
            struct __kernel_timespec t = { seconds, nanoseconds };
            put(m, &used, SOL_SOCKET, SO_TIMESTAMPNS_NEW, &t, sizeof t);
        } else if (new) {
            struct __kernel_sock_timeval t = { seconds, nanoseconds / 1000 };
            put(m, &used, SOL_SOCKET, SO_TIMESTAMP_NEW, &t, sizeof t);
        } else if (ns) {
            struct timespec t = { seconds, nanoseconds };
            put(m, &used, SOL_SOCKET, SO_TIMESTAMPNS_OLD, &t, sizeof t);
        } else {
            struct timeval t = { seconds, nanoseconds / 1000 };
            put(m, &used, SOL_SOCKET, SO_TIMESTAMP_OLD, &t, sizeof t);
        }
    }
    if (ipv6_socket && (wanted & NETMP_ANCILLARY_PKTINFO6)) {
        struct in6_pktinfo pktinfo;
        memcpy(&pktinfo.ipi6_addr, info->destination, 16);
        pktinfo.ipi6_ifindex = info->interface;
        put(m, &used, IPPROTO_IPV6, IPV6_PKTINFO, &pktinfo, sizeof pktinfo);
    }
    if (is_mapped(info->destination)) {
        struct in_addr to;
        memcpy(&to, info->destination + 12, 4);
        if (wanted & NETMP_ANCILLARY_PKTINFO) {
            struct in_pktinfo pktinfo = { .ipi_ifindex = (int)info->interface, .ipi_spec_dst = to, .ipi_addr = to };
            put(m, &used, IPPROTO_IP, IP_PKTINFO, &pktinfo, sizeof pktinfo);
        }
        if (wanted & NETMP_ANCILLARY_TTL) {
            int ttl = info->hop_limit;
            put(m, &used, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
        }
        if (wanted & NETMP_ANCILLARY_TOS) put(m, &used, IPPROTO_IP, IP_TOS, &info->traffic_class, 1);
        if (wanted & NETMP_ANCILLARY_ORIGDSTADDR) {
            struct sockaddr_in original = { .sin_family = AF_INET, .sin_port = htons(info->destination_port), .sin_addr = to };
            put(m, &used, IPPROTO_IP, IP_ORIGDSTADDR, &original, sizeof original);
        }
    } else if (ipv6_socket) {
        if (wanted & NETMP_ANCILLARY_HOPLIMIT6) {
            int hops = info->hop_limit;
            put(m, &used, IPPROTO_IPV6, IPV6_HOPLIMIT, &hops, sizeof hops);
        }
        if (wanted & NETMP_ANCILLARY_TCLASS6) {
            int tclass = info->traffic_class;
            put(m, &used, IPPROTO_IPV6, IPV6_TCLASS, &tclass, sizeof tclass);
        }
        if (wanted & NETMP_ANCILLARY_ORIGDSTADDR6) {
            struct sockaddr_in6 original = { .sin6_family = AF_INET6, .sin6_port = htons(info->destination_port) };
            memcpy(&original.sin6_addr, info->destination, 16);
            // A link-local destination names its link, as Linux's sockaddr does.
            if (info->destination[0] == 0xfe && (info->destination[1] & 0xc0) == 0x80) original.sin6_scope_id = info->interface;
            put(m, &used, IPPROTO_IPV6, IPV6_ORIGDSTADDR, &original, sizeof original);
        }
    }
    m->msg_controllen = used;
}

// An error's control message, as ip_recv_error and ipv6_recv_error lay it out: the
// sock_extended_err, then the offender (the ICMP message's source; IPv4 mapped on an IPv6
// socket) as SO_EE_OFFENDER finds it.
void netmp_put_error(struct msghdr *m, int ipv6_socket, const netmp_error_info *info) {
    struct sock_extended_err ee = {
        .ee_errno = (uint32_t)info->error, .ee_origin = info->origin, .ee_type = info->type, .ee_code = info->code,
        .ee_info = info->info,
    };
    // A local error (EMSGSIZE of a send) has no offender: all zeros, as Linux leaves it.
    int offender = info->origin != SO_EE_ORIGIN_LOCAL;
    size_t used = 0;
    if (ipv6_socket) {
        struct { struct sock_extended_err ee; struct sockaddr_in6 offender; } header;
        memset(&header, 0, sizeof header);
        header.ee = ee;
        if (offender) {
            header.offender.sin6_family = AF_INET6;
            memcpy(&header.offender.sin6_addr, info->offender, 16);
        }
        put(m, &used, IPPROTO_IPV6, IPV6_RECVERR, &header, sizeof header);
    } else {
        struct { struct sock_extended_err ee; struct sockaddr_in offender; } header;
        memset(&header, 0, sizeof header);
        header.ee = ee;
        if (offender) {
            header.offender.sin_family = AF_INET;
            memcpy(&header.offender.sin_addr, info->offender + 12, 4);
        }
        put(m, &used, IPPROTO_IP, IP_RECVERR, &header, sizeof header);
    }
    m->msg_controllen = used;
}
