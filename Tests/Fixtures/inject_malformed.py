#!/usr/bin/env python3
"""Writes malformed frames into a link from the kernel side, through an AF_PACKET socket,
for the netmp host at the other end to count and drop. Run inside the lab namespace.

usage: inject_malformed.py IFACE DST_MAC DST_IP SRC_IP PER_KIND RANDOM_FRAMES SEED [DST_IP6 SRC_IP6]

With the IPv6 addresses, malformed IPv6 kinds (extension header chains, options, neighbour
discovery) are sent too, and valid IPv6 frames are among those the random frames mutate.

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
        # A fragment reaching past 64 KiB (more fragments, at the last offset).
        ("fragment-too-large", eth(0x0800, ip(1, icmp_echo(), flags_frag=0x3FFF))),
        ("icmp-bad-checksum", eth(0x0800, ip(1, icmp_echo(good_sum=False)))),
        ("udp-bad-length", eth(0x0800, ip(17, udp(length_field=200)))),
        ("udp-bad-checksum", eth(0x0800, ip(17, udp(good_sum=False)))),
        ("tcp-bad-data-offset", eth(0x0800, ip(6, tcp(offset_words=3)))),
        ("tcp-bad-option", eth(0x0800, ip(6, tcp(offset_words=6, options=b"\x02\x03\x05\x00")))),
        ("tcp-bad-checksum", eth(0x0800, ip(6, tcp(good_sum=False)))),
    ]
    valid = [frame for _, frame in kinds] + [eth(0x0800, ip(1, icmp_echo())), eth(0x0800, ip(6, tcp()))]
    if len(sys.argv) > 9:
        v6 = ipv6_kinds(eth, socket.inet_pton(socket.AF_INET6, sys.argv[9]), socket.inet_pton(socket.AF_INET6, sys.argv[8]))
        kinds += v6
        valid += [frame for _, frame in v6]
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
    for _ in range(random_frames):
        frame = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(frame))
            frame[at] = rng.randrange(256)
        if rng.random() < 0.2:
            frame = frame[: rng.randint(14, len(frame))]
        send(bytes(frame))
    sys.stdout.flush()


def ipv6_kinds(eth, src: bytes, dst: bytes) -> list:
    """Malformed IPv6 packets from SRC to DST, each with the reason netmp counts it under."""
    solicited = bytes.fromhex("ff0200000000000000000001ff") + dst[13:]

    def icmp6(body: bytes, to: bytes = dst, good_sum=True) -> bytes:
        s = checksum(src + to + struct.pack("!IxxxB", len(body), 58) + body)
        s = s if good_sum else s ^ 0x0F0F
        return body[:2] + struct.pack("!H", s) + body[4:]

    def echo(to: bytes = dst, good_sum=True) -> bytes:
        return icmp6(struct.pack("!BBHHH", 128, 0, 0, 77, 1) + b"x" * 16, to, good_sum)

    def ip6(chain: list, upper: int, payload: bytes, to: bytes = dst, hop_limit=64, length=None) -> bytes:
        """chain: (type, bytes) extension headers; each one's first byte is set here."""
        body = b""
        for i, (_, ext) in enumerate(chain):
            nxt = chain[i + 1][0] if i + 1 < len(chain) else upper
            body += bytes([nxt]) + ext[1:]
        body += payload
        first = chain[0][0] if chain else upper
        plen = len(body) if length is None else length
        return eth(0x86DD, struct.pack("!IHBB16s16s", 6 << 28, plen, first, hop_limit, src, to) + body)

    def opts(options: bytes) -> bytes:
        raw = b"\0\0" + options
        pad = (8 - len(raw) % 8) % 8
        raw += b"\0" if pad == 1 else (bytes([1, pad - 2]) + b"\0" * (pad - 2) if pad else b"")
        return raw[:1] + bytes([len(raw) // 8 - 1]) + raw[2:]

    dest = (60, opts(b""))
    ns = icmp6(struct.pack("!BBHI16s", 135, 0, 0, 0, dst) + bytes([1, 1]) + b"\x52\x22\x31\x2c\x14\x1b", to=solicited)
    # 1 KiB of padding in 8-byte PadN runs: Linux refuses runs over 7 bytes.
    huge_hbh = b"\0\x7f" + (bytes([1, 6]) + b"\0" * 6) * 127 + b"\x01\x04\0\0\0\0"
    return [
        ("ipv6-truncated", ip6([], 58, echo())[:14 + 30]),
        ("ipv6-bad-payload-length", ip6([], 58, echo(), length=1000)),
        ("ipv6-extension-truncated", ip6([(60, b"\0\x03" + b"\0" * 6)], 58, b"")),
        ("ipv6-hop-by-hop-not-first", ip6([dest, (0, opts(b""))], 58, echo())),
        ("ipv6-extension-chain-too-long", ip6([dest] * 9, 58, echo())),
        ("ipv6-bad-padding", ip6([(0, huge_hbh)], 58, echo())),
        ("ipv6-too-many-options", ip6([(0, opts(b"\x1e\x00" * 9))], 58, echo())),
        ("ipv6-unrecognized-option", ip6([(60, opts(b"\x5e\x01\x00"))], 58, echo())),
        ("ipv6-bad-option", ip6([(60, b"\0\0\x1e\x09" + b"\0" * 4)], 58, echo())),
        # A middle fragment (offset 8, more to come) whose 15 bytes are not a multiple of 8.
        ("fragment-bad-length", ip6([(44, b"\0\0\x00\x09\0\0\0\x07")], 58, b"x" * 15)),
        ("ipv6-parameter-problem", ip6([(43, b"\0\0\x04\x01" + b"\0" * 4)], 58, echo())),
        ("icmpv6-bad-checksum", ip6([], 58, echo(good_sum=False))),
        ("ndp-bad-hop-limit", ip6([], 58, ns, to=solicited, hop_limit=64)),
    ]


if __name__ == "__main__":
    main()
