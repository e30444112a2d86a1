# Every setsockopt and getsockopt a program could try at the common levels, on the four
# kinds of socket: each option read at four lengths, then set to twenty values (ints from
# -1 up, single bytes, timevals, a linger, congestion names) and read back after each.
# One line per (socket, level, option); Scripts/option-probe compares the kernel's lines
# with netmp's.
import errno, socket, struct

LEVELS = {"SOL": 1, "IP": 0, "TCP": 6, "UDP": 17, "IPV6": 41, "BAD": 99}
VALUES = [struct.pack("i", v) for v in (-1, 0, 1, 2, 7, 88, 255, 256, 40000, 70000)] + [
    b"\x05", b"\x00", b"\x01\x00", struct.pack("ll", 2, 500000), struct.pack("ll", 0, 2000000),
    struct.pack("ii", 1, 5), b"cubic\0", b"bbr\0", b"nope\0", b"reno"]


def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


for family in (socket.AF_INET, socket.AF_INET6):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        for label, level in LEVELS.items():
            for option in list(range(70)) + ([103] if level == 17 else []):
                s = socket.socket(family, kind)

                def get(length):
                    try:
                        return s.getsockopt(level, option, length).hex()
                    except OSError as e:
                        return name(e)
                read = [get(4), get(1), get(16), get(256)]
                written = []
                for value in VALUES:
                    try:
                        s.setsockopt(level, option, value)
                        result = "ok"
                    except OSError as e:
                        result = name(e)
                    written.append(result + ":" + get(16))
                print(f"{family.name}/{kind.name} {label}.{option} get={read} set={written}")
                s.close()
