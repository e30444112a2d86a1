"""A hostile netmp client (StackServiceProgramTests): it opens connections through the
stack, then, while it keeps making new sockets (and connections to itself through the
stack's own address), overwrites its own shared region (found among its descriptors as the
netmp-region memfd) with random and boundary values while its threads keep sending.
Whatever happens to this process is its own business; the stack and other clients must
carry on. Arguments: peer address, port, seconds to scribble, seed."""
import mmap, os, random, socket, struct, sys, threading, time

address, port, seconds, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
sockets = [socket.create_connection((address, port), timeout=5) for _ in range(4)]
listener = socket.socket(); listener.bind(("0.0.0.0", 0)); listener.listen(8)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("0.0.0.0", 0))

def region():
    for name in os.listdir("/proc/self/fd"):
        try:
            if "netmp-region" in os.readlink("/proc/self/fd/" + name): return int(name)
        except OSError: pass
    sys.exit("no netmp-region among the descriptors")

fd = region()
memory = mmap.mmap(fd, os.fstat(fd).st_size)
magic, capacity, stride, entries_offset, memory_offset = struct.unpack_from("<QQQQQ", memory, 0)
high_water = struct.unpack_from("<q", memory, 72)[0]
used = max(1, min(high_water, 64))
print("region: front %d bytes, %d slots used, stride %d" % (memory_offset, used, stride), flush=True)

ending = time.monotonic() + seconds
def keep_calling(s):
    payload = b"x" * 16384
    while time.monotonic() < ending + 2:
        try: s.send(payload)
        except OSError: time.sleep(0.01)
def keep_asking():
    while time.monotonic() < ending + 2:
        for call in (lambda: listener.getsockname(), lambda: udp.sendto(b"u", (address, port)),
                     lambda: socket.socket().close(), lambda: sockets[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)):
            try: call()
            except OSError: pass
def keep_making():
    # New sockets while the region is scribbled: their slots, rings and queues start from
    # whatever was written there. A connection to the stack's own address, accepted here,
    # and data written from the accepted side (the stack's loopback carries it).
    while time.monotonic() < ending + 2:
        made = []
        try:
            l = socket.socket(); made.append(l); l.settimeout(0.5)
            l.bind(("0.0.0.0", 0)); l.listen(4)
            c = socket.create_connection((own, l.getsockname()[1]), timeout=0.5); made.append(c)
            a, _ = l.accept(); made.append(a); a.settimeout(0.5)
            a.send(b"y" * 100000); c.recv(65536)
            d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); made.append(d)
            d.bind(("0.0.0.0", 0)); d.sendto(b"z" * 1000, (own, d.getsockname()[1]))
            made_count[0] += 1
        except OSError: pass
        for m in made:
            try: m.close()
            except OSError: pass
own = sockets[0].getsockname()[0]
made_count = [0]
for t in [threading.Thread(target=keep_calling, args=(s,), daemon=True) for s in sockets] + \
         [threading.Thread(target=keep_asking, daemon=True), threading.Thread(target=keep_making, daemon=True)]:
    t.start()

# The scribbling runs in a child (fork shares the mapping), so that calls stuck on what it
# wrote (Python holds its lock through some of them) cannot stop it.
child = os.fork()
if child == 0:
    rng = random.Random(seed)
    boundaries = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                  0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF, capacity, capacity - 1, capacity + 1]
    writes = 0
    while time.monotonic() < ending:
        for _ in range(256):
            if rng.random() < 0.6:
                at = rng.randrange(0, memory_offset - 8)                 # head, request rings, replies, entries
            else:                                                        # a ring's control block, at a page start
                page = rng.randrange(0, stride // 4096)
                at = memory_offset + rng.randrange(used) * stride + page * 4096 + rng.randrange(0, 256, 4)
            at &= ~3
            if rng.random() < 0.5:
                struct.pack_into("<Q" if at % 8 == 0 else "<I", memory, at,
                                 rng.choice(boundaries) & (0xFFFFFFFFFFFFFFFF if at % 8 == 0 else 0xFFFFFFFF))
            else:
                memory[at:at + 8] = rng.randbytes(8)
            writes += 1
    print("scribbled %d times" % writes, flush=True)
    os._exit(0)
os.waitpid(child, 0)
time.sleep(2)
print("made %d rounds of sockets" % made_count[0], flush=True)
os._exit(0)
