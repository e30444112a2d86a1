#!/usr/bin/env python3
"""The kernel side of the TCP interop tests: one connection, a stream each way, CRC-32 of both.

usage: tcp_peer.py server PORT SEND_BYTES SEED [TIMEOUT]
       tcp_peer.py client HOST PORT SEND_BYTES SEED [TIMEOUT]

Sends SEND_BYTES of a seeded pseudo-random stream while receiving until the peer's FIN,
then prints one JSON line: sent, sent_crc, received, received_crc, seconds.
"""
import json
import random
import socket
import sys
import threading
import time
import zlib


def run(sock: socket.socket, total: int, seed: int) -> dict:
    result = {"sent": 0, "sent_crc": 0, "received": 0, "received_crc": 0}
    rng = random.Random(seed)
    block = rng.randbytes(1 << 20)  # a 1 MiB block, rotated so the stream does not repeat in step

    def send() -> None:
        crc, sent, turn = 0, 0, 0
        while sent < total:
            offset = (turn * 4099) % len(block)
            piece = (block[offset:] + block[:offset])[: min(1 << 20, total - sent)]
            sock.sendall(piece)
            crc = zlib.crc32(piece, crc)
            sent += len(piece)
            turn += 1
        sock.shutdown(socket.SHUT_WR)
        result["sent"], result["sent_crc"] = sent, crc

    sender = threading.Thread(target=send)
    start = time.monotonic()
    sender.start()
    crc, received = 0, 0
    while True:
        data = sock.recv(1 << 20)
        if not data:
            break
        crc = zlib.crc32(data, crc)
        received += len(data)
    sender.join()
    result["received"], result["received_crc"] = received, crc
    result["seconds"] = time.monotonic() - start
    return result


def main() -> None:
    mode = sys.argv[1]
    if mode == "server":
        port, total, seed = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
        timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 120
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", port))
        listener.listen(1)
        listener.settimeout(timeout)
        print("listening", flush=True, file=sys.stderr)
        sock, _ = listener.accept()
    else:
        host, port, total, seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 120
        sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(timeout)
    print(json.dumps(run(sock, total, seed)), flush=True)
    sock.close()


if __name__ == "__main__":
    main()
