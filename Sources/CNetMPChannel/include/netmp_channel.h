// The memory a socket's application side and its owner core share, in C layout: the one
// definition both sides read (Swift through MemoryLayout offsets, C directly), with offsets
// instead of pointers so it can be mapped at different addresses in different processes
// (docs/STACK-SERVICE.md). The fields below that change are accessed only atomically; the
// layout keeps each side's fields on its own cache line (explicit padding, which Swift
// imports, rather than _Alignas, which it does not), so a writer and the owner do not
// bounce one line between cores. Blocks start cache-line aligned.
#ifndef NETMP_CHANNEL_H
#define NETMP_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#define NETMP_CACHE_LINE 64

/// A futex word and the count of threads about to sleep on it (WaitWord).
typedef struct netmp_wait_word {
    uint32_t generation;
    uint32_t waiters;
} netmp_wait_word;

/// A send ring's control block (a stream socket's is in its table entry; other rings'
/// are in front of their data): writers (application threads) reserve and commit
/// positions; the owner core releases what is acknowledged. Positions are byte counts
/// since the ring was made, never wrapped; the data index is position % capacity. A block
/// of zeros is a fresh ring, so a new ring needs no write. Where the data lies and how
/// large it is belong to whoever describes the ring (the slot's stride and the sizes in
/// the stream slot, checked against the stride), not to the block the other side may write.
typedef struct netmp_send_ring {
    int64_t reserved;               // writers
    int64_t committed;              // writers, in reservation order
    int64_t limit;                  // writers: the most they may hold (SO_SNDBUF); 0: the capacity
    uint8_t writers_line_end[40];
    int64_t released;               // owner
    netmp_wait_word writers;        // writers waiting for space
    int64_t sent;                   // owner: the position up to which data has left (SND.MAX)
    uint8_t owner_line_end[40];
} netmp_send_ring;

/// A receive ring's control block (where a send ring's is): the owner core writes and
/// publishes (tail, end of stream); readers (application threads) claim by moving head.
typedef struct netmp_receive_ring {
    int64_t tail;                   // owner
    uint32_t end_of_stream;         // owner: 1 once the peer's FIN is in
    uint8_t owner_line_end[52];
    int64_t head;                   // readers
    netmp_wait_word readers;        // readers waiting for data
    uint8_t readers_line_end[48];
} netmp_receive_ring;

/// A stream socket's published state, which both sides read: the owner core publishes
/// states (and the errno of a failure); application threads raise requests and shut
/// directions; each writer counts itself in `active_writers` while it copies.
typedef struct netmp_stream_slot {
    uint32_t status;                // NETMP_STATUS_* bits
    int32_t error;                  // errno of a failed connection, taken once (SO_ERROR)
    int64_t owner;                  // the owner core, -1 before one owns the connection
    int64_t active_writers;         // application threads inside a write
    netmp_wait_word changes;        // connection-state changes
    uint16_t local_port;            // the connection's 4-tuple, written by the owner before
    uint16_t remote_port;           // it publishes ATTACHED for a connect (the core picks the
    uint32_t send_capacity;         // the rings' sizes, written by whoever placed them in the
    uint32_t receive_capacity;      // slot's stride, before the slot is named
    uint32_t doorbell_slot;         // + 1: the slot whose entry holds the socket's doorbell
    uint32_t output_options;        // NETMP_OUTPUT_*: set by the application before the
                                    // writes they govern, read by the owner at each look
    uint32_t bound_port;            // the application: the port its bind (or an unbound
                                    // listen) took from the client's | families << 16
                                    // | 1 << 31 (0: none), which the stack lets go if the
                                    // socket's last process ends without closing it
    uint64_t local_address[2];      // local port) and read once the status says so:
    uint64_t remote_address[2];     // getsockname without asking the core. Addresses are
                                    // IPv6, IPv4 mapped (::ffff:a.b.c.d), as two halves,
                                    // the most significant first, in host order
    uint64_t urgent;                // urgent data received (NETMP_URGENT_*): receive ring
                                    // position << 16 | state << 8 | the byte; 0: none
    int64_t urgent_up;              // the application: the send ring position just past
                                    // its last send(MSG_OOB) (its last byte is urgent)
    uint8_t line_end[24];
} netmp_stream_slot;

/// The states of `urgent` (Linux's urg_data): the peer's urgent pointer names a byte not
/// yet received; the byte is in (and in the word); recv(MSG_OOB) took it. The owner sets
/// the first two; readers move VALID to READ and clear the word once they read past it.
static const uint64_t NETMP_URGENT_NOT_YET = 1;
static const uint64_t NETMP_URGENT_VALID = 2;
static const uint64_t NETMP_URGENT_READ = 3;

/// The status bits of a stream slot. States, published by the owner:
static const uint32_t NETMP_STATUS_ATTACHED = 1u << 0;     // a core owns the connection
static const uint32_t NETMP_STATUS_ESTABLISHED = 1u << 1;  // the handshake completed
static const uint32_t NETMP_STATUS_FAILED = 1u << 2;       // failed; `error` holds the errno
static const uint32_t NETMP_STATUS_CLOSED = 1u << 3;       // reached CLOSED
static const uint32_t NETMP_STATUS_DRAINED = 1u << 6;      // all written, FIN included, acknowledged
/// Set by the application:
static const uint32_t NETMP_STATUS_WRITE_SHUT = 1u << 4;   // shutdown(SHUT_WR) or close
static const uint32_t NETMP_STATUS_READ_SHUT = 1u << 5;    // shutdown(SHUT_RD)
/// Options that decide what the owner sends, in `output_options`: in effect for every
/// write after the setsockopt that set them, whatever records are still on their way.
static const uint32_t NETMP_OUTPUT_CORK = 1u << 0;      // TCP_CORK
static const uint32_t NETMP_OUTPUT_NODELAY = 1u << 1;   // TCP_NODELAY
static const uint32_t NETMP_OUTPUT_SET = 1u << 31;      // the application set them: they
                                                        // override the connection's own
/// Requests, raised by the application and cleared by the owner before it acts:
static const uint32_t NETMP_STATUS_OUTPUT_REQUESTED = 1u << 16;  // "send what I wrote"
static const uint32_t NETMP_STATUS_WINDOW_REQUESTED = 1u << 17;  // "I read: the window may reopen"

/// A queue of whole records (a UDP socket's datagrams received on one core): one producer
/// moves `tail`, readers claim whole records by moving `head`; the record data follows.
typedef struct netmp_record_queue {
    int64_t tail;                   // the producing core
    uint8_t producer_line_end[56];
    int64_t head;                   // readers
    uint8_t readers_line_end[56];
} netmp_record_queue;

/// The header of each record in a UDP socket's receive queue, then the payload: what the
/// datagram's IP and UDP headers and its arrival say, for the ancillary data a program may
/// ask for (IP_PKTINFO, IP_RECVTOS, IP_RECVTTL, IP_RECVORIGDSTADDR, SO_TIMESTAMP and IPv6's).
typedef struct netmp_datagram_record {
    uint32_t length;                // the payload's
    uint16_t source_port;
    uint16_t destination_port;
    uint8_t traffic_class;          // IPv4 TOS or IPv6 traffic class
    uint8_t hop_limit;              // IPv4 TTL or IPv6 hop limit
    uint8_t reserved[6];
    uint64_t source[2];             // IPv6, or IPv4 mapped: two halves
    uint64_t destination[2];        // the address it was sent to
    int64_t arrival;                // the stack's monotonic clock, nanoseconds
} netmp_datagram_record;

/// A datagram socket's shared state beside its queues and its send ring. The first line is
/// what moves; the second what bind and connect set.
typedef struct netmp_datagram_slot {
    uint32_t peer_version;          // connect(): odd while the peer below is being written
    uint32_t output_requested;      // raised by a sender, cleared by the home core
    int32_t error;                  // an ICMP error for a connected socket, taken once (SO_ERROR)
    uint32_t mapped_marking;        // an IPv6 socket's IP_TOS | IP_TTL << 8, for its IPv4-mapped peers
    int64_t turn;                   // which core's queue a reader looks at first
    int64_t overflows;              // datagrams dropped for a full queue (SO_RXQ_OVFL)
    netmp_wait_word arrivals;       // readers waiting for a datagram
    uint16_t port;                  // the bound port, and where the rings lie: written by
    uint16_t home_core;             // the lessor before the slot is named (every core's
    uint16_t cores;                 // view reads them)
    uint16_t families;              // NETMP_FAMILY_*: whose datagrams the socket takes
    uint32_t queue_capacity;        // each core's queue of received datagrams
    uint32_t send_capacity;
    uint32_t doorbell_slot;         // + 1: the slot whose entry holds the socket's doorbell
    uint8_t line_end[4];
    uint64_t peer_address[2];       // connect(): the peer (IPv6, IPv4 mapped, two halves),
    uint32_t peer_port;             // under peer_version: 1 << 16 | port once connected, 0 not
    uint32_t marking;               // IP_TOS | IP_TTL << 8 (IPv6's pair), read as each datagram leaves
    uint64_t bound_address[2];      // bind(): the address datagrams must be sent to (::, or
                                    // ::ffff:0.0.0.0: any), written before the slot is named
    uint32_t multicast;             // NETMP_MULTICAST_*: how datagrams to groups leave, and
                                    // which groups' datagrams the socket takes
    uint32_t receive_errors;        // NETMP_RECEIVE_ERRORS_*: IP_RECVERR and IPV6_RECVERR set
    uint32_t error_capacity;        // the error queue's (after the send ring), written by the lessor
    uint8_t second_line_end[12];
} netmp_datagram_slot;

/// A datagram slot's `multicast` word: IP_MULTICAST_TTL in the low byte, IPV6_MULTICAST_HOPS
/// in the next, then the flags (each family's IP_MULTICAST_LOOP and IP_MULTICAST_ALL).
static const uint32_t NETMP_MULTICAST_LOOP = 1u << 16;
static const uint32_t NETMP_MULTICAST_ALL = 1u << 17;
static const uint32_t NETMP_MULTICAST_LOOP6 = 1u << 18;
static const uint32_t NETMP_MULTICAST_ALL6 = 1u << 19;

/// A datagram slot's `receive_errors` word: the ICMP (ICMPv6) errors about the socket's
/// datagrams go to its error queue (MSG_ERRQUEUE) and are its next error, whatever their
/// kind and whether it is connected (Linux's inet->recverr, np->recverr).
static const uint32_t NETMP_RECEIVE_ERRORS_IPV4 = 1u << 0;
static const uint32_t NETMP_RECEIVE_ERRORS_IPV6 = 1u << 1;

/// Which families' datagrams a UDP socket takes (an IPv4 socket IPv4's; an IPv6 one both,
/// or IPv6's alone when IPV6_V6ONLY or bound to an IPv6 address).
static const uint16_t NETMP_FAMILY_IPV4 = 1;
static const uint16_t NETMP_FAMILY_IPV6 = 2;

/// A socket's doorbell (Doorbell): how poll, select and epoll in the application learn that
/// the socket changed. It lies in the entry of the slot the socket was made in; a socket
/// that connects again after a failed connect moves to a new slot but keeps its first
/// slot's doorbell, which every slot's words name (`doorbell_slot`).
typedef struct netmp_doorbell {
    int32_t eventfd;                // + 1: the application's eventfd to ring, 0 before it has one
    uint32_t pollers;               // pollers and epoll registrations: rung only while > 0
    uint32_t rings;                 // rings made while polled (edge-triggered epoll's marks)
    uint32_t names;                 // names sent to the stack for this doorbell (a client's
                                    // kept copy of a named file is the stack's while this holds)
} netmp_doorbell;

/// The options a stream socket set that shape a connection from its first segment, as the
/// shared layouts carry them: a connect record for its connection, a listen slot for the
/// connections its listener makes (ConnectOptions reads and writes them).
typedef struct netmp_stream_options {
    uint16_t mss;                   // TCP_MAXSEG
    uint8_t congestion;             // TCP_CONGESTION: NETMP_CONGESTION_*
    uint8_t tos;                    // IP_TOS (IPV6_TCLASS for an IPv6 socket)
    uint32_t receive_buffer;        // SO_RCVBUF, as Linux doubled it
    uint32_t keep_idle;             // TCP_KEEPIDLE, seconds
    uint32_t keep_interval;         // TCP_KEEPINTVL, seconds
    uint16_t keep_probes;           // TCP_KEEPCNT (Linux's bound: 127)
    uint8_t ttl;                    // IP_TTL (IPV6_UNICAST_HOPS), 0 for the default
    uint8_t flags;                  // NETMP_STREAM_* below
} netmp_stream_options;

static const uint8_t NETMP_STREAM_NODELAY = 1u << 0;    // TCP_NODELAY set
static const uint8_t NETMP_STREAM_CORK = 1u << 1;       // TCP_CORK set
static const uint8_t NETMP_STREAM_KEEPALIVE = 1u << 2;  // SO_KEEPALIVE set

/// A listening socket's shared words, in the slot of its own that holds its accept queues:
/// connections queued on all cores (an upper bound while a push or pop is under way), the
/// core accept() looks at first, and where accept() sleeps; the sizes, written by the
/// lessor, by which every core's view finds its queue in the slot's stride.
typedef struct netmp_listen_slot {
    int64_t queued;
    int64_t turn;
    netmp_wait_word arrivals;
    uint32_t backlog;               // connections queued at most, over all cores
    uint32_t cores;                 // one accept queue per core
    uint32_t queue_capacity;        // records per core's queue
    uint32_t doorbell_slot;         // + 1: the listening socket's doorbell, in its stream slot's entry
    uint32_t defer_accept;          // TCP_DEFER_ACCEPT, seconds (the application's; cores bound it)
    uint8_t line_end[20];
    // The listening socket's options, which its connections take from their SYN on (as
    // Linux clones the listener): written by the application at listen and at each
    // setsockopt while listening, read by a core at each SYN. `options_version` is 0
    // until the first write and odd while one is under way (one writer: the socket's
    // setup lock).
    uint32_t options_version;
    netmp_stream_options options;   // the marking in it is for peers of the socket's family
    uint8_t mapped_tos, mapped_ttl; // an IPv6 listener's for its IPv4 peers
    uint8_t syn_retries;            // TCP_SYNCNT set on the listener: its SYN-ACKs' retries (0: tcp_synack_retries)
    uint8_t options_end[37];
} netmp_listen_slot;

/// A usrreq: what an application thread asks of the core that owns one of its sockets, as
/// one fixed-size record in that core's request ring (docs/STACK-SERVICE.md, step 2). The
/// socket is named by handle, its slot in the socket table and the slot's generation, never
/// by pointer: a record for a socket released since names an older generation and is
/// dropped. Every field is a number the core checks before use. Each record fills a cache
/// line, so producers writing neighbouring records do not share one.
typedef struct netmp_request {
    uint64_t turn;                  // 2r: free in round r; 2r + 1: published in round r
    uint16_t kind;                  // NETMP_REQUEST_*
    uint16_t flags;                 // NETMP_REQUEST_FLAG_*
    uint32_t slot;                  // the socket's handle: slot...
    uint32_t generation;            // ...and generation
    // connect: where to, from which port, and the options the socket set before it.
    uint32_t address;               // the remote IPv4 address, host order
    uint16_t port;                  // the remote port
    uint16_t local_port;            // the bound local port, 0 for one the core picks
    netmp_stream_options options;
    // set-option:
    int64_t value;                  // the value, as setsockopt normalised it
    uint32_t option;                // NETMP_OPTION_*
    // query:
    uint32_t reply;                 // the reply slot the answer goes to
} netmp_request;

/// Request kinds. Stream sockets:
static const uint16_t NETMP_REQUEST_CONNECT = 1;        // open a connection from this core
static const uint16_t NETMP_REQUEST_OUTPUT = 2;         // "send what I wrote"
static const uint16_t NETMP_REQUEST_WINDOW = 3;         // "I read: the window may reopen"
static const uint16_t NETMP_REQUEST_SHUTDOWN_WRITE = 4; // shutdown(SHUT_WR): FIN after the data
static const uint16_t NETMP_REQUEST_CLOSE = 5;          // close(), and the handle is released
static const uint16_t NETMP_REQUEST_QUERY = 6;          // TCP_INFO, answered in a reply slot
static const uint16_t NETMP_REQUEST_SET_OPTION = 7;     // an option the connection applies
/// Set up or taken down on every core: the core that takes the record tells every core and
/// answers in the reply slot once all have. `local_port`: the port.
static const uint16_t NETMP_REQUEST_LISTEN = 8;         // the listener's slot (its accept queues)
static const uint16_t NETMP_REQUEST_STOP_LISTENING = 9; // the listener's slot, still named
/// Ports, held in the stack for every client: `local_port` the port (0: an ephemeral one),
/// FLAG_DATAGRAM for UDP's namespace; answered with a netmp_port_reply.
static const uint16_t NETMP_REQUEST_RESERVE_PORT = 10;  // bind(), or listen() unbound
static const uint16_t NETMP_REQUEST_RELEASE_PORT = 11;  // close() of a bound socket
static const uint16_t NETMP_REQUEST_DATAGRAM_BIND = 18;   // the UDP socket's slot
static const uint16_t NETMP_REQUEST_DATAGRAM_UNBIND = 19; // the UDP socket's slot, still named
/// A UDP socket joins or leaves a multicast group (IP_ADD_MEMBERSHIP), on every core: the
/// group lies over `options` as an IPv6 address (IPv4's mapped).
static const uint16_t NETMP_REQUEST_DATAGRAM_JOIN = 20;
static const uint16_t NETMP_REQUEST_DATAGRAM_LEAVE = 21;
// A send failed with EMSGSIZE: the home core queues the local error (IP_RECVERR), the
// destination over the options and in port, the MTU in value; answered in a reply slot.
static const uint16_t NETMP_REQUEST_DATAGRAM_LOCAL_ERROR = 22;
/// Datagram sockets:
static const uint16_t NETMP_REQUEST_DATAGRAM_OUTPUT = 16; // "send the datagrams I queued"
static const uint16_t NETMP_REQUEST_DATAGRAM_CLOSE = 17;  // send what is queued, release the handle
/// The options a set-option record carries (values as setsockopt's, already checked):
static const uint32_t NETMP_OPTION_NODELAY = 1;         // TCP_NODELAY: 0 or 1
static const uint32_t NETMP_OPTION_CORK = 2;            // TCP_CORK: 0 or 1
static const uint32_t NETMP_OPTION_KEEPALIVE = 3;       // SO_KEEPALIVE: 0 or 1
static const uint32_t NETMP_OPTION_KEEPIDLE = 4;        // TCP_KEEPIDLE: seconds
static const uint32_t NETMP_OPTION_KEEPINTVL = 5;       // TCP_KEEPINTVL: seconds
static const uint32_t NETMP_OPTION_KEEPCNT = 6;         // TCP_KEEPCNT: probes
static const uint32_t NETMP_OPTION_CONGESTION = 7;      // TCP_CONGESTION: NETMP_CONGESTION_*
static const uint32_t NETMP_OPTION_MARKING = 8;         // IP_TOS | IP_TTL << 8 (or IPv6's pair)
static const uint32_t NETMP_OPTION_USER_TIMEOUT = 9;    // TCP_USER_TIMEOUT: milliseconds, 0 off
static const uint32_t NETMP_OPTION_LINGER2 = 10;        // TCP_LINGER2: seconds (1...120), -1 to reset
static const uint32_t NETMP_OPTION_SYNCNT = 11;         // TCP_SYNCNT: SYN retransmissions (1...127)
static const uint32_t NETMP_OPTION_QUICKACK = 12;       // TCP_QUICKACK: 0 or 1
static const uint32_t NETMP_CONGESTION_RENO = 1;
static const uint32_t NETMP_CONGESTION_CUBIC = 2;
static const uint32_t NETMP_CONGESTION_BBR = 3;
/// Flags:
static const uint16_t NETMP_REQUEST_FLAG_ABORT = 1u << 0;     // close with a RST
// (bits 1 to 3 are free: the options' flags are in netmp_stream_options)
static const uint16_t NETMP_REQUEST_FLAG_DATAGRAM = 1u << 4;  // ports: UDP's, not TCP's
static const uint16_t NETMP_REQUEST_FLAG_IPV6 = 1u << 5;      // connect: the remote address is
                                                              // IPv6, as two host-order halves
                                                              // in value, option and reply (a
                                                              // connect uses none of them);
                                                              // listen: IPv6 connections too
static const uint16_t NETMP_REQUEST_FLAG_V6ONLY = 1u << 6;    // listen: no IPv4 connections
static const uint16_t NETMP_REQUEST_FLAG_SHARED = 1u << 7;    // reservePort, listen, connect: SO_REUSEPORT
static const uint16_t NETMP_REQUEST_FLAG_REUSE_ADDRESS = 1u << 8; // reservePort, listen, connect:
                                                                  // SO_REUSEADDR

/// The answer to a port request, in its reply slot's payload.
typedef struct netmp_port_reply {
    int32_t error;                  // 0, or the errno bind() fails with
    uint32_t port;                  // the port reserved (or released)
} netmp_port_reply;

/// A reply slot: where a core answers a query (TCP_INFO as Linux's struct tcp_info) for
/// the application thread that asked, which waits on `answered`.
typedef struct netmp_reply {
    uint32_t state;                 // NETMP_REPLY_*
    uint32_t length;                // bytes of `payload` the answer filled
    netmp_wait_word answered;       // the asker waits here
    uint8_t header_end[48];
    uint8_t payload[256];
} netmp_reply;

static const uint32_t NETMP_REPLY_ASKED = 1;            // taken by an asker, no answer yet
static const uint32_t NETMP_REPLY_ANSWERED = 2;         // `length` and `payload` hold the answer

/// A request ring's control block, followed in memory by its records: producers
/// (application threads) claim positions by moving `tail`; the one consumer (the core)
/// moves `head`. A record's `turn` says whose it is, so a block and records of zeros are an
/// empty ring.
typedef struct netmp_request_ring {
    int64_t tail;                   // producers
    uint8_t producers_line_end[56];
    int64_t head;                   // the core
    uint8_t core_line_end[56];
} netmp_request_ring;

/// How a client wakes a core (CoreWakePage): one line per core, in a page every client of
/// the stack maps read-only. The core announces here that it is about to sleep in poll(2)
/// by making its count of sleeps odd, and makes it even again when it wakes. A client that
/// published a record and then finds an odd count writes its bell for the core (an eventfd
/// the stack made for that client, passed once), once per count among its threads. Either
/// the core sees the record before it sleeps or the client sees the core sleeping: no lost
/// wakeup. Only the core writes the line, so no client can hide a sleep from another.
typedef struct netmp_core_wake {
    uint64_t sleeps;                // odd while the core is (about to be) asleep
    uint8_t line_end[56];
} netmp_core_wake;

/// The head of a client region (ClientRegion): everything one client and the stack share,
/// in one memory that each maps at an address of its own. The head gives the sizes and
/// where each part starts: one request ring per core (`requests_offset`, each a
/// netmp_request_ring and `request_capacity` records, the next right after), the reply
/// slots (`replies_offset`, NETMP_REPLY_SLOTS of them), the socket table's entries
/// (`entries_offset`), and each slot's stride of socket memory (`memory_offset` + slot *
/// `stride`). Its second line holds what any side that takes or frees a slot or a reply
/// slot moves.
typedef struct netmp_region {
    uint64_t magic;                 // NETMP_REGION_MAGIC
    uint64_t capacity;              // socket slots
    uint64_t stride;                // bytes of socket memory per slot (0: none)
    uint64_t entries_offset;
    uint64_t memory_offset;
    uint32_t cores;                 // request rings
    uint32_t request_capacity;      // records per request ring
    uint64_t requests_offset;
    uint64_t replies_offset;
    uint64_t free_head;             // tag << 32 | (slot + 1), 0: no free slot
    int64_t high_water;             // slots below this have been used
    int64_t warm_slots;             // free slots whose rings kept their pages
    uint64_t replies_taken;         // bit i: reply slot i is taken
    uint64_t processes;             // bit i: process number i of the client holds sockets (fork)
    uint32_t names_pending;         // doorbell names sent and not yet taken by core 0
    uint32_t reserved;
    uint8_t taking_line_end[16];
} netmp_region;

static const uint64_t NETMP_REGION_MAGIC = 0x6e65746d70520001ull; // "netmpR", version 1
static const uint32_t NETMP_REPLY_SLOTS = 64;

/// One entry of a socket table: which socket a handle names, while its generation
/// matches, and the words the socket's two sides share. A stream socket's rings' control
/// blocks are here too, and their data in the slot's stride of the table's memory
/// (ClientRegion), found from the slot number alone, so a handle is all either side needs
/// to reach them. Keeping the control blocks out of the stride means an idle connection
/// touches no page of it: on a memfd, even a read of a page allocates it.
typedef struct netmp_socket_entry {
    uint32_t generation;            // bumped when the name is released
    uint32_t kind;                  // NETMP_SOCKET_* while named, 0 otherwise
    uint64_t next_free;             // the next free slot + 1 while this one is free
    uint32_t flags;                 // NETMP_SLOT_*
    uint32_t holds;                 // views of the slot alive, in any mapping (SlotLease)
    netmp_doorbell doorbell;        // the doorbell of the socket made in this slot
    uint64_t holders;               // bit i: process number i holds the socket made here
    uint8_t entry_line_end[16];
    union {
        netmp_stream_slot stream;
        netmp_datagram_slot datagram;
        netmp_listen_slot listen;
    } words;                        // zero whenever the slot is free
    netmp_send_ring send_ring;      // a stream socket's rings' control blocks, zero
    netmp_receive_ring receive_ring; // whenever the slot is free
} netmp_socket_entry;

static const uint32_t NETMP_SLOT_WARM = 1u << 0;    // free, its rings' first pages still resident
static const uint32_t NETMP_SLOT_LEASED = 1u << 1;  // its memory is held (SlotLease)
static const uint32_t NETMP_SLOT_HEAVY = 1u << 2;   // a ring wrote much: give its pages back

static const uint32_t NETMP_SOCKET_STREAM = 1;
static const uint32_t NETMP_SOCKET_DATAGRAM = 2;
static const uint32_t NETMP_SOCKET_LISTENER = 3;

_Static_assert(sizeof(netmp_request) == 64, "request: one cache line");
_Static_assert(offsetof(netmp_request, turn) == 0 && offsetof(netmp_request, kind) == sizeof(uint64_t), "request: turn first, the kind right after it");
_Static_assert(offsetof(netmp_request, address) == 20, "request: connect fields");
_Static_assert(offsetof(netmp_request, value) == 48, "request: option value");
_Static_assert(sizeof(netmp_stream_options) == 20 && offsetof(netmp_request, options) == 28, "request: the stream options");
_Static_assert(offsetof(netmp_request, reply) == 60, "request: reply slot");
_Static_assert(sizeof(netmp_reply) == 320, "reply: a header line and 256 bytes");
_Static_assert(sizeof(netmp_request_ring) == 128, "request ring control block: two cache lines");
_Static_assert(offsetof(netmp_request_ring, head) == 64, "request ring: the core's line");

/// A connection a listener's core established, waiting for accept(): its handle and its
/// 4-tuple (host order). A record is 48 bytes: six words a reader loads atomically.
typedef struct netmp_accepted {
    uint32_t slot;                  // the connection's handle: slot...
    uint32_t generation;            // ...and generation
    uint64_t local_address[2];      // IPv6, IPv4 mapped, as two halves (netmp_stream_slot)
    uint64_t remote_address[2];
    uint16_t local_port;
    uint16_t remote_port;
    uint32_t reserved;
} netmp_accepted;

/// One core's queue of a listening socket's established connections: the core alone
/// appends at `tail`; accepting threads copy the record at `head` and claim it by moving
/// `head` (a copy whose claim fails is thrown away). The records follow the block.
typedef struct netmp_accept_queue {
    int64_t tail;                   // the core
    uint8_t core_line_end[56];
    int64_t head;                   // accepting threads
    uint8_t readers_line_end[56];
} netmp_accept_queue;

_Static_assert(sizeof(netmp_record_queue) == 128, "record queue: two cache lines");
_Static_assert(sizeof(netmp_datagram_record) == 56, "datagram record header: 56 bytes");
_Static_assert(offsetof(netmp_record_queue, head) == 64, "record queue: readers' line");
_Static_assert(sizeof(netmp_datagram_slot) == 128, "datagram slot: two cache lines");
_Static_assert(offsetof(netmp_datagram_slot, peer_address) == 64, "datagram slot: the addresses on the second line");
_Static_assert(offsetof(netmp_datagram_slot, arrivals) == 32, "datagram slot: arrivals wait word");
_Static_assert(sizeof(netmp_stream_slot) == 128, "stream slot: two cache lines");
_Static_assert(sizeof(netmp_listen_slot) == 128 && offsetof(netmp_listen_slot, options_version) == 64,
               "listen slot: its queue's line, then the options' line");
_Static_assert(sizeof(netmp_doorbell) == 16, "doorbell: four words");
_Static_assert(offsetof(netmp_stream_slot, owner) == 8, "stream slot: owner");
_Static_assert(offsetof(netmp_stream_slot, changes) == 24, "stream slot: changes wait word");
_Static_assert(offsetof(netmp_stream_slot, local_port) == 32, "stream slot: the ports");
_Static_assert(offsetof(netmp_stream_slot, local_address) == 56, "stream slot: the addresses");
_Static_assert(offsetof(netmp_stream_slot, urgent) == 88, "stream slot: urgent data");
_Static_assert(sizeof(netmp_wait_word) == 8, "wait word: two 32-bit words (the futex is the first)");
_Static_assert(offsetof(netmp_send_ring, reserved) == 0, "send ring: writers' line");
_Static_assert(offsetof(netmp_send_ring, limit) == 16, "send ring: the writers' limit on their line");
_Static_assert(offsetof(netmp_send_ring, released) == 64, "send ring: owner's line");
_Static_assert(offsetof(netmp_send_ring, writers) == 72, "send ring: writers' wait word beside released");
_Static_assert(sizeof(netmp_send_ring) == 128, "send ring control block: two cache lines");
_Static_assert(offsetof(netmp_receive_ring, tail) == 0, "receive ring: owner's line");
_Static_assert(offsetof(netmp_receive_ring, head) == 64, "receive ring: readers' line");
_Static_assert(offsetof(netmp_receive_ring, readers) == 72, "receive ring: readers' wait word beside head");
_Static_assert(sizeof(netmp_receive_ring) == 128, "receive ring control block: two cache lines");

_Static_assert(sizeof(netmp_core_wake) == 64, "core wake: one line per core");
_Static_assert(sizeof(netmp_region) == 128 && offsetof(netmp_region, free_head) == 64, "region head: two lines");
_Static_assert(sizeof(netmp_socket_entry) == 448, "socket entry: its name's line, its words' two lines, two rings' four");
_Static_assert(offsetof(netmp_socket_entry, send_ring) == 192, "socket entry: the send ring's control block after the words");
_Static_assert(offsetof(netmp_socket_entry, words) == 64, "socket entry: the words on a line of their own");

/// The offsets of the words Swift finds from a block's address at every use, as constants
/// it imports as such. A Swift `static let` of `MemoryLayout.offset(of:)` is a lazily made
/// global, a swift_once call at each use (on Linux the call is not skipped once done), and
/// a computed one walks its key path in debug and sanitizer builds.
enum {
    NETMP_WAIT_WORD_GENERATION_AT = offsetof(netmp_wait_word, generation),
    NETMP_WAIT_WORD_WAITERS_AT = offsetof(netmp_wait_word, waiters),
    NETMP_SEND_RING_RESERVED_AT = offsetof(netmp_send_ring, reserved),
    NETMP_SEND_RING_COMMITTED_AT = offsetof(netmp_send_ring, committed),
    NETMP_SEND_RING_LIMIT_AT = offsetof(netmp_send_ring, limit),
    NETMP_SEND_RING_RELEASED_AT = offsetof(netmp_send_ring, released),
    NETMP_SEND_RING_WRITERS_AT = offsetof(netmp_send_ring, writers),
    NETMP_SEND_RING_SENT_AT = offsetof(netmp_send_ring, sent),
    NETMP_RECEIVE_RING_TAIL_AT = offsetof(netmp_receive_ring, tail),
    NETMP_RECEIVE_RING_END_OF_STREAM_AT = offsetof(netmp_receive_ring, end_of_stream),
    NETMP_RECEIVE_RING_HEAD_AT = offsetof(netmp_receive_ring, head),
    NETMP_RECEIVE_RING_READERS_AT = offsetof(netmp_receive_ring, readers),
    NETMP_STREAM_SLOT_STATUS_AT = offsetof(netmp_stream_slot, status),
    NETMP_STREAM_SLOT_ERROR_AT = offsetof(netmp_stream_slot, error),
    NETMP_STREAM_SLOT_OWNER_AT = offsetof(netmp_stream_slot, owner),
    NETMP_STREAM_SLOT_ACTIVE_WRITERS_AT = offsetof(netmp_stream_slot, active_writers),
    NETMP_STREAM_SLOT_CHANGES_AT = offsetof(netmp_stream_slot, changes),
    NETMP_STREAM_SLOT_OUTPUT_OPTIONS_AT = offsetof(netmp_stream_slot, output_options),
    NETMP_DOORBELL_POLLERS_AT = offsetof(netmp_doorbell, pollers),
    NETMP_DOORBELL_RINGS_AT = offsetof(netmp_doorbell, rings),
    NETMP_DOORBELL_NAMES_AT = offsetof(netmp_doorbell, names),
    NETMP_REQUEST_OPTIONS_AT = offsetof(netmp_request, options),
    NETMP_REQUEST_VALUE_AT = offsetof(netmp_request, value),
};

_Static_assert(sizeof(netmp_accepted) == 48, "accepted connection: six words");
_Static_assert(sizeof(netmp_accept_queue) == 128 && offsetof(netmp_accept_queue, head) == 64, "accept queue: two lines");

/// The stack service's attach handshake, over its Unix socket (SOCK_SEQPACKET, one message
/// each). Each process of a client has a connection of its own (a forked child makes its
/// own and joins, unanswered), whose end tells the stack that process is gone: the sockets
/// no other process of the client holds then close. A program's first socket call
/// connects and sends a hello; the stack answers with
/// a reply and, in the same message, the descriptors: the client's region (memfd), the
/// cores' wake page (memfd), the client's names socket and one eventfd per core, in core
/// order. The configuration is
/// NETMP_* lines as the environment gives them ("NAME=value\n"), so the client parses it as
/// the stack did. A hello may instead ask the stack to stop (`netmp down`): it answers with
/// a reply (error 0, or EACCES for a uid other than its own and root) and stops.
#define NETMP_ATTACH_VERSION 4
#define NETMP_HELLO_ATTACH 0        // a new client
#define NETMP_HELLO_JOIN 1          // a forked process of client `client`, numbered `process`
#define NETMP_HELLO_STOP 2          // stop the stack (its connections end with it)
#define NETMP_HELLO_CAPTURE 3       // capture frames (netmp capture): a netmp_capture_request
/// After exec, on the process's own connection (which the old image kept open across it):
/// the hello, then the doorbell slots of the sockets the new image keeps (uint32 each, at
/// most NETMP_RESUME_SLOTS). The stack drops the process from every other socket it held
/// (closing those no other process holds, as at a process's end) and answers as to an
/// attach, with the region, the wake page and the client's bells but no names socket
/// (the process kept its own). `client` and `process` are the connection's, not read.
#define NETMP_HELLO_RESUME 4
#define NETMP_RESUME_SLOTS 16384
typedef struct netmp_attach_hello {
    uint32_t version;               // NETMP_ATTACH_VERSION
    uint32_t request;               // NETMP_HELLO_*
    uint32_t client;
    uint32_t process;               // join: the number its parent took for it
} netmp_attach_hello;

typedef struct netmp_attach_reply {
    uint32_t version;               // NETMP_ATTACH_VERSION
    int32_t error;                  // 0, or why the stack refused (EACCES, EMFILE, ENOMEM, EPROTO)
    uint32_t client;                // the client's number on the cores
    uint32_t cores;                 // how many eventfds follow the two memfds
    uint32_t send_buffer;           // the TCP defaults the stack's rings are sized for
    uint32_t receive_buffer;
    uint32_t maximum_segment;
    uint32_t process;               // the process's number in the client (bit of `holders`)
    char configuration[992];        // NUL-terminated NETMP_* lines
} netmp_attach_reply;

/// After attach, a client names the placeholder (an epoll instance) of the doorbell in
/// `slot` before its first poller sleeps on it (the descriptor travels with this message,
/// over the client's names socket, which the attach reply carries and every process of the
/// client shares): core 0 puts a bell of its own into it, and the cores ring that bell,
/// never a number read from the client's memory. The client
/// then counts it in the region's `names_pending` and wakes core 0, which takes that many
/// names on its next turn: no thread of the stack wakes for a name alone.
typedef struct netmp_doorbell_registration {
    uint32_t slot;
    uint32_t reserved;
} netmp_doorbell_registration;

/// `netmp capture`: a hello whose request is NETMP_HELLO_CAPTURE, and the capture's options,
/// in one message that carries the output's descriptor (a file or pipe the asking process
/// opened, so its permissions are the asker's). The stack answers with a reply (error 0:
/// capturing; EACCES for a uid other than its own and root, EBUSY while another capture
/// runs, EINVAL for a filter it cannot parse, or the errno of writing the file's header)
/// and keeps the connection: the capture ends when the asker closes or shuts it down, or
/// at a limit or a failed write; the stack then sends a netmp_capture_summary and closes.
typedef struct netmp_capture_request {
    netmp_attach_hello hello;
    uint32_t snap_length;           // bytes kept of each frame
    uint32_t reserved;
    uint64_t packet_limit;          // 0: none
    uint64_t byte_limit;            // 0: none
    char filter[472];               // NUL-terminated pcap-filter text (netmp's subset)
} netmp_capture_request;

typedef struct netmp_capture_summary {
    uint32_t version;               // NETMP_ATTACH_VERSION
    int32_t error;                  // 0, or the errno of a failed write
    uint64_t written;               // packets in the file
    uint64_t dropped;               // packets lost to a full ring
    uint64_t bytes;                 // bytes of packet blocks in the file
    uint32_t limit_reached;
    uint32_t reserved;
} netmp_capture_summary;

_Static_assert(sizeof(netmp_capture_request) == 512, "capture request: half a kilobyte");
_Static_assert(sizeof(netmp_capture_summary) == 40, "capture summary: five words");
_Static_assert(sizeof(netmp_attach_reply) == 1024, "attach reply: one kilobyte");
_Static_assert(sizeof(netmp_doorbell_registration) == 8, "doorbell registration: two words");
_Static_assert(sizeof(netmp_attach_hello) == 16, "attach hello: four words");

#endif
