// Thin wrappers over Linux interfaces that Swift cannot call directly: ioctls taking
// struct ifreq unions, CPU_SET macros, memfd_create. Each returns >= 0 or -errno.
#ifndef NETMP_LINUX_H
#define NETMP_LINUX_H
#include <stdint.h>

// Attaches to (or creates) TAP device `name` with IFF_TAP|IFF_NO_PI and the extra flags
// below; writes the kernel's name of the device to `actual` (16 bytes).
#define NETMP_TAP_MULTI_QUEUE 0x1
#define NETMP_TAP_VNET_HDR 0x2
int netmp_tap_attach(const char *name, int flags, char actual[16]);
int netmp_tap_set_offload(int fd, unsigned int offloads);
int netmp_tap_set_vnet_header_size(int fd, int size);
// TUNSETQUEUE: attach (1) or detach (0) a queue of a multiqueue TAP. Needs no privilege
// once the queue is open: a process opens queues, then may drop root and still enable them.
int netmp_tap_set_queue_enabled(int fd, int enabled);
int netmp_tap_set_persistent(int fd, int persistent);
// Loads `count` eBPF instructions (struct bpf_insn, 8 bytes each) as a socket filter
// program (BPF_PROG_LOAD; needs CAP_BPF or CAP_SYS_ADMIN where unprivileged BPF is off);
// returns its descriptor. The verifier's complaint, if any, goes to `log` (`log_size` bytes).
int netmp_bpf_load_socket_filter(const uint64_t *instructions, int count, char *log, unsigned log_size);
// TUNSETSTEERINGEBPF: the device picks a frame's queue with `program` from now on (-1: with
// its own flow table and hash again). Any queue's descriptor will do.
int netmp_tap_set_steering(int fd, int program);

int netmp_interface_mac(const char *name, uint8_t mac[6]);
int netmp_interface_set_mac(const char *name, const uint8_t mac[6]);
int netmp_interface_index(const char *name);

// Pins the calling thread to one CPU.
int netmp_pin_current_thread(int cpu);
// Fills `cpus` with the CPUs this process may run on; returns how many (at most `capacity`).
int netmp_allowed_cpus(int *cpus, int capacity);

int netmp_memfd(const char *name);
// Seals a sized memfd against shrinking and growing (F_SEAL_SHRINK | F_SEAL_GROW |
// F_SEAL_SEAL): a client that maps it cannot truncate it under the stack (SIGBUS).
int netmp_seal_size(int fd);
// Seals a sized memfd as netmp_seal_size does and against every write from now on
// (F_SEAL_FUTURE_WRITE): mappings made before stay writable, a client's can only read.
int netmp_seal_read_only(int fd);
// Gives back [offset, offset + length) of a memfd: the range reads as zeros and holds no memory.
int netmp_punch_hole(int fd, long offset, long length);
// Moves the calling thread (only it) into the network namespace open at `fd`.
int netmp_enter_network_namespace(int fd);
// Fills `buffer` from the kernel CSPRNG (getrandom).
int netmp_random(void *buffer, unsigned long length);
// A non-blocking, close-on-exec eventfd (a wakeup for a message port).
int netmp_eventfd(void);
// futex(2) on a 32-bit word: wait while it holds `expected` (timeout < 0: forever), wake `count`.
// Not FUTEX_PRIVATE: the word may lie in memory mapped more than once (a memfd shared with
// another process, or mapped twice), where a private futex's key (the address) differs.
int netmp_futex_wait(uint32_t *word, uint32_t expected, long timeout_ns);
int netmp_futex_wake(uint32_t *word, int count);
// Signals without SA_RESTART handled on this thread so far (see linux.c), and the count's
// increment, made by the shim's signal trampoline.
unsigned netmp_interrupting_signals(void);
void netmp_note_interrupting_signal(void);
// A sleep on a wait word (its count of sleepers and its word) that a signal handler may
// jump out of (see linux.c): the sleeper joins the count and says so, and leaves it; the
// shim's trampoline steps out of the count before a handler runs and back in after one
// that returns.
typedef struct netmp_sleep { uint32_t *count; uint32_t *word; } netmp_sleep;
void netmp_sleep_announce(uint32_t *count, uint32_t *word);
void netmp_sleep_withdraw(void);
netmp_sleep netmp_handler_begins(void);
void netmp_handler_ends(netmp_sleep taken);
// A stretch in which this thread holds a place in a shared ring (see linux.c): the
// program's signal handlers wait for its end (nested stretches count). The trampoline's
// question: whether `signal` (with its siginfo_t at `info`) waits; 1 if so.
void netmp_defer_signals(void);
void netmp_deliver_deferred_signals(void);
int netmp_signal_deferred(int signal, const void *info);
// Adds 1 to / empties an eventfd with the raw system calls (the shim interposes read and
// write).
int netmp_doorbell_ring(int fd);
int netmp_doorbell_drain(int fd);
// A netmp socket's descriptor in a preloaded program is a placeholder: an epoll instance,
// which poll, select and epoll can sleep on, but whose read and write fail with EINVAL
// (and socket calls with ENOTSOCK) when a program reaches it without libc. Made here (a
// raw epoll_create1: the shim's own would give it an epoll shadow), or -errno.
int netmp_placeholder(int cloexec);
// The client puts its process's common bell (an eventfd the application side rings for
// changes it makes itself) into `placeholder`, edge-triggered, before it names the
// placeholder to the stack (0 or -errno).
int netmp_placeholder_join(int placeholder, int common);
// The stack, given a client's placeholder: a bell of its own (a non-blocking, close-on-exec
// eventfd) put into it, edge-triggered, which the cores then ring; -EINVAL for anything but
// an epoll instance, or -errno. No client holds the bell, so none can block it, fill its
// count or make it blocking under the core that writes it. Raw system calls: the shim
// interposes epoll in a client.
int netmp_bell_into(int placeholder);
// Takes out the edges that made `placeholder` readable (an epoll_wait that does not wait).
int netmp_placeholder_drain(int placeholder);
// A core's bells (the stack service): an epoll instance (close-on-exec) holding each
// attached client's eventfd for the core, edge-triggered. The client writes its eventfd
// to wake the core; the core never reads or writes it, only takes the edges out of the
// epoll (an epoll_wait that does not wait), so nothing a client does to its file (make it
// blocking, fill or empty its count) can block the core. 0 or a descriptor, or -errno.
int netmp_bells_make(void);
int netmp_bells_add(int bells, int bell);
int netmp_bells_remove(int bells, int bell);
int netmp_bells_drain(int bells);
// The NUMA node of the page holding `address` (move_pages query), or -errno.
int netmp_node_of_address(void *address);
// The stack service's Unix socket: SOCK_SEQPACKET in the abstract namespace (so it exists
// only in the network namespace it was made in), close-on-exec. Raw system calls: in a
// client these run inside a preloaded program, whose socket calls the shim interposes.
int netmp_attach_listen(const char *name);
int netmp_attach_connect(const char *name);
// Accepts one client (non-blocking) and says who it is (SO_PEERCRED).
int netmp_attach_accept(int listener, uint32_t *uid, int32_t *pid);
// One message of `length` bytes carrying `count` descriptors (SCM_RIGHTS).
int netmp_message_send(int fd, const void *bytes, int length, const int *fds, int count);
// One message: its bytes (returned; 0 at hang-up) and up to `capacity` descriptors, their
// number in *count (close-on-exec; any beyond `capacity` are closed).
int netmp_message_receive(int fd, void *bytes, int length, int *fds, int capacity, int *count);
// Raises this process's descriptor limit to its hard limit (the stack holds one eventfd per
// polled socket of every client); returns the new limit.
long netmp_raise_descriptor_limit(void);

// Starts the stack service for a program that found none (`path` is netmp-cli, `argv` asks
// it to detach): posix_spawn, so no fork handler of the program runs, in a session of its
// own, with /dev/null for stdin and stdout and every descriptor above stderr closed, so the
// stack holds none of the program's pipes or files. Waits for that process, which exits
// once the stack serves (or could not), and returns its exit status, or -errno.
int netmp_spawn_stack(const char *path, char *const argv[], char *const envp[]);
// The file of the shared object that holds `address` (dladdr), or NULL.
const char *netmp_object_path(const void *address);
// dup3(from, onto, cloexec ? O_CLOEXEC : 0): the file `from` behind the number `onto`, in
// one call (0 or -errno).
int netmp_place_file(int from, int onto, int cloexec);
// A copy of `fd` at the lowest free number, close-on-exec if `cloexec` (F_DUPFD_CLOEXEC or
// F_DUPFD), or -errno.
int netmp_copy_descriptor(int fd, int cloexec);
// close(2) itself, never the shim's (0 or -errno): for the library's own descriptors.
int netmp_close_descriptor(int fd);
// A library descriptor of a client moved near the top of the program's range (close-on-exec;
// the number it had is closed), where a program that picks low numbers itself (a shell's
// `exec 3<>...`, dup2 onto 3) does not land on it; below 65,536, the shim's table. The same
// descriptor when no number is free up there.
int netmp_move_high(int fd);
// A close-on-exec copy of fd, as netmp_move_high places it (the original stays); -errno.
int netmp_duplicate_high(int fd);
// Whether `fd` is readable now (1, 0 or -errno): a poll that does not wait, ppoll(2) itself.
int netmp_descriptor_readable(int fd);
// FD_CLOEXEC on or off (0 or -errno): the descriptors an exec hand-off carries.
int netmp_set_close_on_exec(int fd, int on);
// A memfd, not close-on-exec, holding `length` bytes: what a program's old image leaves its
// new one across exec (a descriptor number in the environment names it). fd or -errno.
int netmp_hand_down(const void *bytes, long length);
// Reads up to `capacity` bytes of such a memfd from its start and closes it: how many, or -errno.
long netmp_take_handed_down(int fd, void *bytes, long capacity);
// Closes every descriptor from `first` up (a detaching stack keeps nothing it inherited).
int netmp_close_from(int first);
#endif
