#!/usr/bin/env python3
"""The kernel peer of the differential suite: a set of small TCP and UDP services on every
address of its namespace, so that a case program meets the same peer whether it runs on
kernel sockets (over a veth) or on netmp (over the TAP). Prints 'listening' once every
service is bound. Runs until killed; every connection is bounded in time.

  7001 echo        sends back what it reads, until EOF
  7002 count       reads until EOF, then answers 'N\\n' (bytes read) and closes
  7003 reset       accepts and resets at once (SO_LINGER 0)
  7004 source      sends 1 MiB (byte i is i % 251), then closes
  7005 silent      accepts, never reads; closes after 5 s
  7006 hello       sends 'hello\\n', reads until EOF, closes
  7007 dial-back   reads 'PORT\\n', connects to the caller's address at PORT, sends
                   'ping\\n', shuts down writing, reads until EOF and answers 'got N\\n'
  7009 dial-mss    reads 'PORT\\n', connects back as 7007 does, answers 'mss N\\n' (its
                   TCP_MAXSEG once connected: what the listener's SYN-ACK offered) and closes
  7008 urgent      sends 'abc' with MSG_OOB (urgent byte 'c'), then 'de'; reads until EOF
                   without SO_OOBINLINE, taking urgent data at the mark with MSG_OOB, and
                   answers 'stream=S oob=O\\n'
  7010 udp echo    returns every datagram to its sender
  7011 multicast   IPv4, a member of 239.1.2.4 on every interface: a datagram to the
                   group is answered (unicast, to its sender) with 'group ttl=T DATA'; a
                   datagram 'PORT' to its own address is answered by 'to-group' sent to
                   239.1.2.3:PORT out of the interface it came in by, TTL 1; a datagram
                   'mark DATA' is answered with 'ttl=T tos=S DATA' (what its header said)
  7012 multicast6  the same over IPv6: a member of ff12::1:2:4 ('group hops=H DATA'),
                   'PORT' answered by 'to-group' to [ff12::1:2:3]:PORT, hop limit 1, and
                   'mark DATA' with 'hops=H tclass=C DATA'
"""
import fcntl
import socket
import struct
import threading
import time

DEADLINE = 20  # seconds any one connection may live


def serve(port, handler):
    # Dual-stack: the cases run over IPv4 (peers at mapped addresses) and over IPv6.
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    listener.bind(("::", port))
    listener.listen(64)

    def loop():
        while True:
            connection, address = listener.accept()
            connection.settimeout(DEADLINE)
            threading.Thread(target=guarded, args=(handler, connection, address), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def guarded(handler, connection, address):
    try:
        handler(connection, address)
    except OSError:
        pass
    finally:
        connection.close()


def read_all(connection):
    total = 0
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            return total
        total += len(chunk)


def echo(connection, _):
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            return
        connection.sendall(chunk)


def count(connection, _):
    connection.sendall(b"%d\n" % read_all(connection))


def reset(connection, _):
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def source(connection, _):
    connection.sendall(bytes(i % 251 for i in range(1 << 20)))


def silent(connection, _):
    time.sleep(5)


def hello(connection, _):
    connection.sendall(b"hello\n")
    read_all(connection)


def read_line(connection):
    """One line, byte by byte (nothing after it is taken); None at EOF before its end."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = connection.recv(1)
        if not chunk:
            return None
        line += chunk
    return line


def dial_back(connection, address):
    line = read_line(connection)
    if line is None:
        return
    back = socket.create_connection((address[0], int(line)), timeout=DEADLINE)
    back.sendall(b"ping\n")
    back.shutdown(socket.SHUT_WR)
    got = read_all(back)
    back.close()
    connection.sendall(b"got %d\n" % got)


def dial_back_mss(connection, address):
    line = read_line(connection)
    if line is None:
        return
    back = socket.create_connection((address[0], int(line)), timeout=DEADLINE)
    mss = back.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    back.close()
    connection.sendall(b"mss %d\n" % mss)


SIOCATMARK = 0x8905


def urgent(connection, _):
    connection.send(b"abc", socket.MSG_OOB)
    connection.sendall(b"de")
    stream, oob = b"", b""
    while True:
        if struct.unpack("i", fcntl.ioctl(connection.fileno(), SIOCATMARK, b"\0\0\0\0"))[0]:
            try:
                oob += connection.recv(1, socket.MSG_OOB)
            except OSError:
                pass
        chunk = connection.recv(100)
        if not chunk:
            break
        stream += chunk
    connection.sendall(b"stream=%s oob=%s\n" % (stream, oob))


def udp_echo():
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    udp.bind(("::", 7010))

    def loop():
        while True:
            data, address = udp.recvfrom(65536)
            udp.sendto(data, address)

    threading.Thread(target=loop, daemon=True).start()


IP_PKTINFO, IP_RECVTTL, IP_RECVTOS = 8, 12, 13
GROUP, OWN_GROUP = "239.1.2.3", "239.1.2.4"


def multicast():
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("", 7011))
    udp.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    udp.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    udp.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
    for index, name in socket.if_nameindex():
        if name != "lo":
            membership = struct.pack("4s4si", socket.inet_aton(OWN_GROUP), socket.inet_aton("0.0.0.0"), index)
            try:
                udp.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
            except OSError:
                pass

    def loop():
        while True:
            data, control, _, sender = udp.recvmsg(2048, 256)
            index, to, ttl, tos = 0, None, -1, -1
            for level, kind, value in control:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                    index = struct.unpack("i", value[:4])[0]
                    to = socket.inet_ntoa(value[8:12])
                elif level == socket.IPPROTO_IP and kind == socket.IP_TTL:
                    ttl = struct.unpack("i", value[:4])[0]
                elif level == socket.IPPROTO_IP and kind == socket.IP_TOS:
                    tos = value[0]
            if to == OWN_GROUP:
                udp.sendto(b"group ttl=%d %s" % (ttl, data), sender)
                continue
            if data.startswith(b"mark"):
                udp.sendto(b"ttl=%d tos=%d %s" % (ttl, tos, data), sender)
                continue
            try:
                port = int(data)
            except ValueError:
                continue
            out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            out.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                           struct.pack("4s4si", socket.inet_aton("0.0.0.0"), socket.inet_aton("0.0.0.0"), index))
            out.sendto(b"to-group", (GROUP, port))
            out.close()

    threading.Thread(target=loop, daemon=True).start()


IPV6_RECVPKTINFO, IPV6_PKTINFO, IPV6_RECVHOPLIMIT, IPV6_HOPLIMIT = 49, 50, 51, 52
IPV6_RECVTCLASS, IPV6_TCLASS = 66, 67
GROUP6, OWN_GROUP6 = "ff12::1:2:3", "ff12::1:2:4"


def multicast6():
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    udp.bind(("::", 7012))
    udp.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
    udp.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
    udp.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVTCLASS, 1)
    for index, name in socket.if_nameindex():
        if name != "lo":
            try:
                udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                               socket.inet_pton(socket.AF_INET6, OWN_GROUP6) + struct.pack("I", index))
            except OSError:
                pass

    def loop():
        while True:
            data, control, _, sender = udp.recvmsg(2048, 256)
            index, to, hops, tclass = 0, None, -1, -1
            for level, kind, value in control:
                if level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO:
                    to = socket.inet_ntop(socket.AF_INET6, value[:16])
                    index = struct.unpack("I", value[16:20])[0]
                elif level == socket.IPPROTO_IPV6 and kind == IPV6_HOPLIMIT:
                    hops = struct.unpack("i", value[:4])[0]
                elif level == socket.IPPROTO_IPV6 and kind == IPV6_TCLASS:
                    tclass = struct.unpack("i", value[:4])[0]
            if to == OWN_GROUP6:
                udp.sendto(b"group hops=%d %s" % (hops, data), sender)
                continue
            if data.startswith(b"mark"):
                udp.sendto(b"hops=%d tclass=%d %s" % (hops, tclass, data), sender)
                continue
            try:
                port = int(data)
            except ValueError:
                continue
            out = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            out.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            out.sendto(b"to-group", (GROUP6, port, 0, index))
            out.close()

    threading.Thread(target=loop, daemon=True).start()


for port, handler in [(7001, echo), (7002, count), (7003, reset), (7004, source), (7005, silent),
                      (7006, hello), (7007, dial_back), (7008, urgent), (7009, dial_back_mss)]:
    serve(port, handler)
udp_echo()
multicast()
multicast6()
print("listening", flush=True)
while True:
    time.sleep(3600)
