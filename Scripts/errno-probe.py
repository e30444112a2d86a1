# Calls socket functions with odd arguments on sockets in nine states (a fresh socket
# for each call); prints one line per call: state, call, and "ok" or the errno.
# Scripts/errno-probe runs it on kernel sockets and on netmp and shows the differences.
#   python3 Scripts/errno-probe.py HOST      HOST: an address of the stack the sockets are on
import ctypes, errno, socket, struct, sys, os
host = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
def call(name, f):
    ctypes.set_errno(0)
    try: r = f()
    except Exception as e: print(f"{name}: python {type(e).__name__}"); return
    e = ctypes.get_errno()
    print(f"{name}: {'-1 ' + errno.errorcode.get(e, str(e)) if r == -1 else 'ok'}")
def sin(ip, port):
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H4s8x", port, socket.inet_aton(ip))
def buf(b): return ctypes.create_string_buffer(b, len(b))
addr = sin(host, 0)
other = sin("10.77.0.1" if host != "127.0.0.1" else "127.0.0.2", 9)
def make(state):
    if state.startswith("tcp"):
        if state == "tcp-fresh": return socket.socket()
        if state == "tcp-bound": b = socket.socket(); b.bind((host, 0)); return b
        l = socket.socket(); l.bind((host, 0)); l.listen(); keep.append(l)
        if state == "tcp-listen": return l
        c = socket.socket(); c.connect(l.getsockname()); a, _ = l.accept(); keep.append(a)
        if state == "tcp-peer-closed": a.close(); import time; time.sleep(0.05)
        if state == "tcp-shut-wr": c.shutdown(socket.SHUT_WR)
        return c
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if state == "udp-bound": u.bind((host, 0))
    if state == "udp-connected": u.connect((host, 9))
    return u
keep = []
STATES = ["tcp-fresh", "tcp-bound", "tcp-listen", "tcp-connected", "tcp-peer-closed", "tcp-shut-wr", "udp-fresh", "udp-bound", "udp-connected"]
CALLS = [
    ("bind-null", lambda fd: libc.bind(fd, None, 16)),
    ("bind-short", lambda fd: libc.bind(fd, buf(addr), 8)),
    ("bind-unix-family", lambda fd: libc.bind(fd, buf(struct.pack("=H", 1) + addr[2:]), 16)),
    ("bind-again", lambda fd: libc.bind(fd, buf(addr), 16)),
    ("connect-null", lambda fd: libc.connect(fd, None, 16)),
    ("connect-short", lambda fd: libc.connect(fd, buf(addr), 4)),
    ("listen", lambda fd: libc.listen(fd, 5)),
    ("accept", lambda fd: libc.accept(fd, None, None)),
    ("accept-shortlen", lambda fd: libc.accept(fd, buf(bytes(16)), ctypes.byref(alen))),
    ("getpeername", lambda fd: libc.getpeername(fd, buf(bytes(16)), ctypes.byref(ctypes.c_uint32(16)))),
    ("getsockname-nulllen", lambda fd: libc.getsockname(fd, buf(bytes(16)), None)),
    ("getsockopt-badlevel", lambda fd: libc.getsockopt(fd, 9999, 1, buf(bytes(4)), ctypes.byref(ctypes.c_uint32(4)))),
    ("getsockopt-badname", lambda fd: libc.getsockopt(fd, socket.SOL_SOCKET, 9999, buf(bytes(4)), ctypes.byref(ctypes.c_uint32(4)))),
    ("getsockopt-nulllen", lambda fd: libc.getsockopt(fd, socket.SOL_SOCKET, socket.SO_TYPE, buf(bytes(4)), None)),
    ("getsockopt-tcpinfo", lambda fd: libc.getsockopt(fd, socket.IPPROTO_TCP, socket.TCP_INFO, buf(bytes(256)), ctypes.byref(ctypes.c_uint32(256)))),
    ("setsockopt-short", lambda fd: libc.setsockopt(fd, socket.SOL_SOCKET, socket.SO_REUSEADDR, buf(b"\x01"), 1)),
    ("setsockopt-null", lambda fd: libc.setsockopt(fd, socket.SOL_SOCKET, socket.SO_REUSEADDR, None, 4)),
    ("setsockopt-tcp-nodelay", lambda fd: libc.setsockopt(fd, socket.IPPROTO_TCP, socket.TCP_NODELAY, buf(struct.pack("i", 1)), 4)),
    ("setsockopt-badname", lambda fd: libc.setsockopt(fd, socket.IPPROTO_TCP, 9999, buf(struct.pack("i", 1)), 4)),
    ("shutdown-bad", lambda fd: libc.shutdown(fd, 7)),
    ("shutdown-rd", lambda fd: libc.shutdown(fd, socket.SHUT_RD)),
    ("send", lambda fd: libc.send(fd, buf(b"x"), 1, socket.MSG_NOSIGNAL)),
    ("sendto-other", lambda fd: libc.sendto(fd, buf(b"x"), 1, socket.MSG_NOSIGNAL, buf(other), 16)),
    ("sendto-short", lambda fd: libc.sendto(fd, buf(b"x"), 1, socket.MSG_NOSIGNAL, buf(other), 3)),
    ("recv", lambda fd: libc.recv(fd, buf(bytes(4)), 4, 0)),
    ("recv-oob", lambda fd: libc.recv(fd, buf(bytes(4)), 4, socket.MSG_OOB)),
    ("send-badflag", lambda fd: libc.send(fd, buf(b"x"), 1, 0x40000000 | socket.MSG_NOSIGNAL)),
    ("ioctl-fionread", lambda fd: libc.ioctl(fd, 0x541B, ctypes.byref(ctypes.c_int(0)))),
    ("ioctl-bad", lambda fd: libc.ioctl(fd, 0x12345678, ctypes.byref(ctypes.c_int(0)))),
    ("fcntl-getfl", lambda fd: libc.fcntl(fd, 3)),
    ("lseek", lambda fd: libc.lseek(fd, 0, 0)),
    ("fstat", lambda fd: libc.fstat(fd, buf(bytes(256))) if hasattr(libc, "fstat") else 0),
]
for state in STATES:
    for name, f in CALLS:
        s = make(state); fd = s.fileno(); s.setblocking(False)
        call(f"{state} {name}", lambda: f(fd))
        s.close()
