// The C ABI of libnetmp: what the C shim calls in the Swift stack. Nothing else crosses.
// A socket is an opaque handle; failures return -errno (or set *error).
#ifndef NETMP_H
#define NETMP_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

// Reads NETMP_* from the environment and, when NETMP_TAP is set, attaches to the stack
// serving that TAP here, starting one (`netmp stack --background --until-idle`) when none
// does. Returns 0 when attached, 1 when netmp is not configured (NETMP_TAP unset), and -1
// when it could not attach; then one line on stderr says why and the program keeps kernel
// sockets.
int netmp_start_from_environment(void);
// 1 once attached.
int netmp_running(void);
// This process's connection to the stack (-1: none), which the shim's watcher thread
// waits on; netmp_stack_ended() when it hangs up (the stack's process ended).
int netmp_stack_connection(void);
void netmp_stack_ended(void);
// Before fork: the child's process number in the client (-1: none free), and each socket
// held by it too (`fork` numbers the fork: a socket with several descriptors counts
// once), so a close in either process leaves the socket to the other and the last
// holder's close (or end) closes it. In the child: it joins the stack as that process,
// or, without a number, leaves it (its connection closed, kernel sockets from then on).
int netmp_number_for_child(void);
void netmp_socket_share(void *socket, uint64_t fork, uint32_t number);
void netmp_join_after_fork(uint32_t number);
void netmp_leave_stack(void);
// exec: in the old image, the descriptors without close-on-exec that are netmp sockets
// (fds[i] stands for sockets[i]) go into a hand-off: its memfd (not close-on-exec; the
// connection to the stack and the names socket then are not either), or -1 when no
// connection goes across. netmp_exec_failed(memfd) undoes it when exec returns. In the new
// image, at load, with the memfd NETMP_EXEC_HANDOFF names: 0 when the process resumed and
// each kept socket's descriptors were given to `record`, -1 when not.
int netmp_exec_hand_off(const int *fds, void *const *sockets, int count);
void netmp_exec_failed(int memfd);
int netmp_resume_after_exec(int memfd, void (*record)(int fd, void *socket));

// The program is closing descriptors first..last (close, dup2/dup3 over one, close_range,
// closefrom): the library forgets any of its own kept descriptors among them.
void netmp_descriptors_closing(uint32_t first, uint32_t last);
// The descriptors the library's attachment lives on, sorted (how many; at most capacity).
int netmp_library_descriptors(int *out, int capacity);
// Whether fd is one of them (1) or not (0): the shim refuses a close or dup onto it.
int netmp_is_library_descriptor(int fd);

// socket(): stream 1 for TCP, 0 for UDP; *fd becomes the placeholder that stands for the
// socket, at the lowest free number (a copy of a kept one, or new), or -errno, when the
// caller closes the socket (netmp_socket_close). cloexec: whether *fd is close-on-exec.
// ipv6: AF_INET6 (on a stack with IPv6 addresses: netmp_serves_ipv6).
void *netmp_socket_create(int stream, int cloexec, int ipv6, int *fd);
// 1 when the stack has IPv6 addresses, so AF_INET6 sockets run on it.
int netmp_serves_ipv6(void);
// The scope id (sin6_scope_id) of the stack's link-local addresses: its TAP's interface index.
uint32_t netmp_scope_id(void);
// 1 for an AF_INET6 socket.
int netmp_is_ipv6(void *socket);
// dup() made another descriptor for the socket / one of its descriptors was closed.
void netmp_socket_retain(void *socket);
void netmp_socket_close(void *socket);
// How many of this process's descriptors name the socket (dup, dup2, F_DUPFD).
int netmp_socket_descriptors(void *socket);
int netmp_is_stream(void *socket);
// 1 while a stream socket has neither listened nor connected (a datagram socket: always).
int netmp_is_fresh(void *socket);
// 1 for a stream socket connecting, connected or listening (whose connect() answers for
// its state before it reads the address, as Linux's does).
int netmp_has_begun(void *socket);

// Ports in host byte order. Addresses: 16 bytes in network order, IPv6 or IPv4 mapped
// (::ffff:a.b.c.d) whatever the socket's family.
int netmp_bind(void *socket, const uint8_t *address, uint16_t port);
int netmp_listen(void *socket, int backlog);
void *netmp_accept(void *socket, int fd, int nonblocking, int cloexec, uint8_t *address, uint16_t *port, int *error);
// unspecified: AF_UNSPEC (a UDP socket dissolves its association).
int netmp_connect(void *socket, const uint8_t *address, uint16_t port, int unspecified);
// has_destination: sendto's address was given (UDP sends to it; TCP only notes it).
// What sendmsg's control messages ask of one datagram: the TOS or traffic class in the
// low byte, the TTL or hop limit in the next, each with its flag when asked.
enum { NETMP_SEND_TOS = 1u << 16, NETMP_SEND_TTL = 1u << 17 };
// netmp_send of one datagram marked as `marking` says (0: as the socket's options say),
// cut into datagrams of `segment` bytes (UDP_SEGMENT; -1: as the socket's option says).
ssize_t netmp_send_marked(void *socket, const void *bytes, size_t count, int flags, int has_destination,
                          const uint8_t *address, uint16_t port, uint32_t marking, int segment);
// Whether `address` (16 bytes, IPv4 mapped) is one of the stack's own.
int netmp_holds_address(void *socket, const uint8_t *address);
ssize_t netmp_send(void *socket, const void *bytes, size_t count, int flags, int has_destination,
                   const uint8_t *address, uint16_t port);
// writev/sendmsg on a stream socket: `count` pieces as one write, none sent apart.
ssize_t netmp_send_gathered(void *socket, const struct iovec *pieces, int count, int flags);
// *full: a datagram's whole length (MSG_TRUNC); address/port/full may be NULL.
ssize_t netmp_recv(void *socket, void *bytes, size_t count, int flags, uint8_t *address, uint16_t *port,
                   ssize_t *full);
// What a received datagram's headers and arrival say (recvmsg's ancillary data).
typedef struct netmp_datagram_info {
    uint8_t destination[16];        // the address it was sent to (IPv4 mapped)
    uint16_t destination_port;
    uint8_t traffic_class;          // IPv4 TOS or IPv6 traffic class
    uint8_t hop_limit;              // IPv4 TTL or IPv6 hop limit
    uint32_t interface;             // the TAP's index in this namespace
    int64_t arrival;                // CLOCK_REALTIME, nanoseconds
} netmp_datagram_info;
_Static_assert(sizeof(netmp_datagram_info) == 32, "netmp_datagram_info: the Swift side writes these offsets");
// netmp_recv on a datagram socket, filling *info too (when not NULL).
ssize_t netmp_recv_datagram(void *socket, void *bytes, size_t count, int flags, uint8_t *address, uint16_t *port,
                            ssize_t *full, netmp_datagram_info *info);
// An error from a UDP socket's error queue (MSG_ERRQUEUE), as Linux's ip_recv_error and
// ipv6_recv_error return it: the datagram's payload as the error quoted it into bytes, and
// this beside it.
typedef struct netmp_error_info {
    uint8_t destination[16];        // where the datagram went (IPv4 mapped): msg_name
    uint8_t offender[16];           // who reported it (SO_EE_OFFENDER)
    uint16_t destination_port;
    uint8_t origin;                 // SO_EE_ORIGIN_ICMP or SO_EE_ORIGIN_ICMP6
    uint8_t type;                   // the ICMP or ICMPv6 type and code
    uint8_t code;
    uint8_t reserved[3];
    int32_t error;                  // ee_errno
    uint32_t info;                  // ee_info: the MTU of a "fragmentation needed" or "too big"
} netmp_error_info;
_Static_assert(sizeof(netmp_error_info) == 48, "netmp_error_info: the Swift side writes these offsets");
// The next error of a datagram socket's error queue: its payload's length (copied up to
// count), or -EAGAIN when there is none.
ssize_t netmp_recv_error(void *socket, void *bytes, size_t count, ssize_t *full, netmp_error_info *info);
// The ancillary data the socket asked for: NETMP_ANCILLARY_* bits.
uint32_t netmp_ancillary(void *socket);
enum {
    NETMP_ANCILLARY_PKTINFO = 1 << 0, NETMP_ANCILLARY_TTL = 1 << 1, NETMP_ANCILLARY_TOS = 1 << 2,
    NETMP_ANCILLARY_ORIGDSTADDR = 1 << 3, NETMP_ANCILLARY_TIMESTAMP = 1 << 4, NETMP_ANCILLARY_NANOSECONDS = 1 << 5,
    NETMP_ANCILLARY_NEW_TIMESTAMP = 1 << 6, NETMP_ANCILLARY_PKTINFO6 = 1 << 8, NETMP_ANCILLARY_HOPLIMIT6 = 1 << 9,
    NETMP_ANCILLARY_TCLASS6 = 1 << 10, NETMP_ANCILLARY_ORIGDSTADDR6 = 1 << 11,
};
int netmp_shutdown(void *socket, int how);
// getsockname (peer 0) / getpeername (peer 1).
int netmp_name(void *socket, int peer, uint8_t *address, uint16_t *port);
int netmp_setsockopt(void *socket, int level, int name, const void *value, uint32_t length);
int netmp_getsockopt(void *socket, int level, int name, void *value, uint32_t *length);
// The index-th option the program set (the last value for each level and name, as it
// passed it), for a hand-off to the kernel to set again; 0 past the last. *length: the
// buffer's size in, the value's length out.
// A wildcard listener's kernel twin on 127.0.0.1 (-1: none); setting it returns 0 if
// the listener had one already (the caller closes its fd then).
int netmp_twin(void *socket);
int netmp_set_twin(void *socket, int fd);
// Connections waiting in a listener's netmp queues (a bound).
int netmp_accept_pending(void *socket);
// At load: 0 when the environment configures a stack (started at the first socket), 1
// when it does not (no NETMP_TAP), -1 after one line on stderr saying what is wrong.
int netmp_check_environment(void);
int netmp_set_option_at(void *socket, int index, int *level, int *name, void *value, uint32_t *length);
void netmp_set_nonblocking(void *socket, int on);
int netmp_is_nonblocking(void *socket);
// The queue ioctls, as Linux answers them: `which` 0 SIOCINQ, 1 SIOCOUTQ, 2 SIOCOUTQNSD,
// 3 SIOCATMARK. The count, or -errno (EINVAL on a listener, ENOTTY where the protocol
// knows no such ioctl).
int netmp_ioctl_count(void *socket, int which);

// poll(2) bits the socket would report now.
short netmp_readiness(void *socket);
// The same without a listener's kernel twin (no system call): for an epoll set that has
// the twin registered in its kernel instance, which reports the twin's arrivals itself.
short netmp_readiness_own(void *socket);
// A poller arrives through `fd`, the program's descriptor for the socket (a placeholder
// the stack's bell rings): the descriptor to sleep on, `fd` (-1: nothing can change, and no
// leave). Check readiness after entering and before sleeping; leave after waking.
// Entered, the poller holds the socket: a close by another thread meanwhile does not free it.
int netmp_poll_enter(void *socket, int fd);
// Counters that move on each arrival and each freeing of send space (edge-triggered epoll).
void netmp_edge_marks(void *socket, uint64_t *arrivals, uint64_t *freed);
// A poller that entered leaves; `rung`: the kernel reported its placeholder readable (a
// count the last poller takes out; epoll's edge-triggered registrations never need it
// taken). `fd`: the placeholder, or -1 when the number no longer names the socket.
void netmp_poll_leave(void *socket, int fd, int rung);

#endif
