// sendmsg's control messages on a netmp UDP socket, read as Linux's ip_cmsg_send (a
// datagram to an IPv4 peer) and ip6_datagram_send_ctl (to an IPv6 one) read them: the TTL
// or hop limit and the TOS or traffic class of this one datagram, and a source and
// interface (IP_PKTINFO, IPV6_PKTINFO) that must be the stack's own. What they refuse is
// refused with their errno; what they accept and netmp has no use for is accepted. UDP's
// own (udp_cmsg_send, read first): UDP_SEGMENT, this send's segment size.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include "netmp.h"
#include "shim.h"

#ifndef IPV6_FLOWINFO
#define IPV6_FLOWINFO 11 // linux/in6.h's
#endif

static int is_unspecified(const uint8_t *bytes, size_t count) {
    for (size_t i = 0; i < count; i++) if (bytes[i]) return 0;
    return 1;
}

// A source address the stack holds (or none), on its interface (or any). Another's is
// IPv4's route lookup failing (ENETUNREACH), IPv6's address check (EINVAL).
static int check_source(void *socket, const uint8_t address[16], int ipv4, uint32_t index) {
    if (index != 0 && netmp_scope_id() != 0 && index != netmp_scope_id()) return -ENODEV;
    if (ipv4 ? is_unspecified(address + 12, 4) : is_unspecified(address, 16)) return 0;
    return netmp_holds_address(socket, address) ? 0 : ipv4 ? -ENETUNREACH : -EINVAL;
}

// CMSG_OK: a header whose length runs past the buffer or is shorter than itself.
static int header_fits(const struct msghdr *m, const struct cmsghdr *c) {
    return c->cmsg_len >= sizeof(struct cmsghdr)
        && c->cmsg_len <= m->msg_controllen - (size_t)((const char *)c - (const char *)m->msg_control);
}

int netmp_read_send_control(void *socket, const struct msghdr *m, int ipv4, uint32_t *marking, int *segment) {
    *marking = 0;
    *segment = -1;
    if (!m->msg_control || m->msg_controllen == 0) return 0;
    if (m->msg_controllen < sizeof(struct cmsghdr)) return -EINVAL;
    // udp_cmsg_send first: every header checked, UDP's read (UDP_SEGMENT, a u16), before
    // any other level's.
    for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)m); c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
        if (!header_fits(m, c)) return -EINVAL;
        if (c->cmsg_level != IPPROTO_UDP) continue;
        if (c->cmsg_type != UDP_SEGMENT || c->cmsg_len != CMSG_LEN(sizeof(uint16_t))) return -EINVAL;
        uint16_t size;
        memcpy(&size, CMSG_DATA(c), sizeof size);
        *segment = size;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)m); c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
        if (!header_fits(m, c)) return -EINVAL;
        size_t length = c->cmsg_len - CMSG_LEN(0);
        const unsigned char *data = CMSG_DATA(c);
        int value;
        if (c->cmsg_level == SOL_SOCKET) {
            // __sock_cmsg_send: SCM_RIGHTS and SCM_CREDENTIALS are AF_UNIX's and ignored;
            // a mark, timestamping and a transmit time are taken; anything else is EINVAL.
            switch (c->cmsg_type) {
            case SCM_RIGHTS: case SCM_CREDENTIALS: case SO_MARK: case SO_TIMESTAMPING_OLD: case SO_TIMESTAMPING_NEW:
            case SCM_TXTIME: continue;
            default: return -EINVAL;
            }
        }
        if (c->cmsg_level == IPPROTO_IPV6 && (!ipv4 || c->cmsg_type == IPV6_PKTINFO)) {
            switch (c->cmsg_type) {
            case IPV6_PKTINFO: {
                if (length < sizeof(struct in6_pktinfo)) return -EINVAL;
                struct in6_pktinfo info;
                memcpy(&info, data, sizeof info);
                int r = check_source(socket, (const uint8_t *)&info.ipi6_addr, 0, info.ipi6_ifindex);
                if (r) return r;
                continue;
            }
            case IPV6_HOPLIMIT: case IPV6_TCLASS:
                if (length < sizeof(int)) return -EINVAL;
                memcpy(&value, data, sizeof value);
                if (value < -1 || value > 255) return -EINVAL;
                if (c->cmsg_type == IPV6_HOPLIMIT) {
                    if (value == -1) continue; // the socket's own
                    *marking = (*marking & ~0xFF00u) | (uint32_t)value << 8 | NETMP_SEND_TTL;
                } else {
                    // -1 is kept as it came, and leaves as 0xff: what Linux 6.18 puts on the wire.
                    *marking = (*marking & ~0xFFu) | (uint32_t)(value & 0xFF) | NETMP_SEND_TOS;
                }
                continue;
            case IPV6_DONTFRAG: case IPV6_FLOWINFO: continue;
            default: return -EINVAL;
            }
        }
        if (c->cmsg_level != IPPROTO_IP || !ipv4) continue; // other levels pass unread, as Linux's do
        switch (c->cmsg_type) {
        case IP_PKTINFO: {
            if (c->cmsg_len != CMSG_LEN(sizeof(struct in_pktinfo))) return -EINVAL;
            struct in_pktinfo info;
            memcpy(&info, data, sizeof info);
            uint8_t address[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
            memcpy(address + 12, &info.ipi_spec_dst, 4);
            int r = check_source(socket, address, 1, (uint32_t)info.ipi_ifindex);
            if (r) return r;
            continue;
        }
        case IP_TTL:
            if (c->cmsg_len != CMSG_LEN(sizeof(int))) return -EINVAL;
            memcpy(&value, data, sizeof value);
            if (value < 1 || value > 255) return -EINVAL;
            *marking = (*marking & ~0xFF00u) | (uint32_t)value << 8 | NETMP_SEND_TTL;
            continue;
        case IP_TOS:
            if (c->cmsg_len == CMSG_LEN(sizeof(int))) memcpy(&value, data, sizeof value);
            else if (c->cmsg_len == CMSG_LEN(1)) value = data[0];
            else return -EINVAL;
            if (value < 0 || value > 255) return -EINVAL;
            *marking = (*marking & ~0xFFu) | (uint32_t)value | NETMP_SEND_TOS;
            continue;
        default: return -EINVAL;
        }
    }
    return 0;
}
