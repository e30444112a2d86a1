#!/usr/bin/env python3
"""Writes malformed frames into a link from the kernel side, through an AF_PACKET socket,
for the netmp host at the other end to count and drop. Run inside the lab namespace.

usage: inject_malformed.py IFACE DST_MAC DST_IP SRC_IP PER_KIND RANDOM_FRAMES SEED

Prints one line per kind sent: "<drop reason> <count>", the reason netmp must count it under.
Random frames (mutations of valid frames) follow the kinds; they are not reported.
"""
import random
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def main() -> None:
    iface, dst_mac, dst_ip, src_ip, per_kind, random_frames, seed = sys.argv[1:8]
    per_kind, random_frames = int(per_kind), int(random_frames)
    rng = random.Random(int(seed))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((iface, 0))
    src_mac = sock.getsockname()[4]
    dst, src = socket.inet_aton(dst_ip), socket.inet_aton(src_ip)

    def eth(ethertype: int, payload: bytes) -> bytes:
        return mac(dst_mac) + src_mac + struct.pack("!H", ethertype) + payload

    def ip(proto: int, payload: bytes, version_ihl=0x45, total=None, flags_frag=0x4000, good_sum=True) -> bytes:
        total = 20 + len(payload) if total is None else total
        header = struct.pack("!BBHHHBBH4s4s", version_ihl, 0, total, 1, flags_frag, 64, proto, 0, src, dst)
        s = checksum(header) if good_sum else checksum(header) ^ 0x5A5A
        return header[:10] + struct.pack("!H", s) + header[12:] + payload

    def pseudo(proto: int, length: int) -> bytes:
        return src + dst + struct.pack("!BBH", 0, proto, length)

    def udp(length_field=None, good_sum=True) -> bytes:
        data = b"netmp"
        length = 8 + len(data)
        header = struct.pack("!HHHH", 40000, 9, length, 0)
        s = checksum(pseudo(17, length) + header + data)
        s = s if good_sum else s ^ 0x1111
        return struct.pack("!HHHH", 40000, 9, length if length_field is None else length_field, s or 0xFFFF) + data

    def tcp(offset_words=5, options=b"", good_sum=True) -> bytes:
        header = struct.pack("!HHIIBBHHH", 40000, 5201, 1000, 0, offset_words << 4, 0x02, 65535, 0, 0) + options
        s = checksum(pseudo(6, len(header)) + header)
        s = s if good_sum else s ^ 0x2222
        return header[:16] + struct.pack("!H", s) + header[18:]

    def icmp_echo(good_sum=True) -> bytes:
        body = struct.pack("!BBHHH", 8, 0, 0, 77, 1) + b"x" * 16
        s = checksum(body) if good_sum else checksum(body) ^ 0x0F0F
        return body[:2] + struct.pack("!H", s) + body[4:]

    arp_bad_hw = struct.pack("!HHBBH", 1, 0x0800, 8, 4, 1) + b"\0" * 24
    kinds = [
        ("vlan-truncated", mac(dst_mac) + src_mac + b"\x81\x00\x00"),
        ("vlan-tagged", mac(dst_mac) + src_mac + b"\x81\x00\x00\x05\x08\x00" + ip(1, icmp_echo())),
        ("arp-unsupported-hardware", eth(0x0806, arp_bad_hw)),
        ("arp-truncated", eth(0x0806, arp_bad_hw[:20])),
        ("ipv4-truncated", eth(0x0800, ip(1, icmp_echo())[:16])),
        ("ipv4-bad-version", eth(0x0800, ip(1, icmp_echo(), version_ihl=0x65))),
        ("ipv4-bad-header-length", eth(0x0800, ip(1, icmp_echo(), version_ihl=0x43))),
        ("ipv4-bad-total-length", eth(0x0800, ip(1, icmp_echo(), total=1000))),
        ("ipv4-bad-checksum", eth(0x0800, ip(1, icmp_echo(), good_sum=False))),
        ("ipv4-fragment", eth(0x0800, ip(1, icmp_echo(), flags_frag=0x2000))),
        ("icmp-bad-checksum", eth(0x0800, ip(1, icmp_echo(good_sum=False)))),
        ("udp-bad-length", eth(0x0800, ip(17, udp(length_field=200)))),
        ("udp-bad-checksum", eth(0x0800, ip(17, udp(good_sum=False)))),
        ("tcp-bad-data-offset", eth(0x0800, ip(6, tcp(offset_words=3)))),
        ("tcp-bad-option", eth(0x0800, ip(6, tcp(offset_words=6, options=b"\x02\x03\x05\x00")))),
        ("tcp-bad-checksum", eth(0x0800, ip(6, tcp(good_sum=False)))),
    ]
    sent = 0

    def send(frame: bytes) -> None:
        nonlocal sent
        sock.send(frame)
        sent += 1
        if sent % 50 == 0:  # stay below the TAP's queue length whatever the reader's speed
            time.sleep(0.002)

    for reason, frame in kinds:
        for _ in range(per_kind):
            send(frame)
        print(reason, per_kind)
    valid = [frame for _, frame in kinds] + [eth(0x0800, ip(1, icmp_echo())), eth(0x0800, ip(6, tcp()))]
    for _ in range(random_frames):
        frame = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(frame))
            frame[at] = rng.randrange(256)
        if rng.random() < 0.2:
            frame = frame[: rng.randint(14, len(frame))]
        send(bytes(frame))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
