#!/usr/bin/env python3
"""The kernel side of the TCP interop tests: one connection, a stream each way, CRC-32 of both.

usage: tcp_peer.py server PORT SEND_BYTES SEED [TIMEOUT [CONNECTIONS]]
       tcp_peer.py client HOST PORT SEND_BYTES SEED [TIMEOUT]

Sends SEND_BYTES of a seeded pseudo-random stream while receiving until the peer's FIN,
then prints one JSON line: sent, sent_crc, received, received_crc, seconds. A server of
several connections serves them at once (stream seed SEED + the accept order) and adds
each one's peer_port to its line.
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
        connections = int(sys.argv[6]) if len(sys.argv) > 6 else 1
        # Dual-stack: IPv4 peers arrive at their mapped addresses, IPv6 ones as they are.
        listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        listener.bind(("::", port))
        listener.listen(max(connections, 1))
        listener.settimeout(timeout)
        print("listening", flush=True, file=sys.stderr)
        # One thread per connection; each prints its JSON line with the peer's port.
        lock = threading.Lock()

        def serve(sock: socket.socket, peer_port: int, index: int) -> None:
            sock.settimeout(timeout)
            result = run(sock, total, seed + index)
            result["peer_port"] = peer_port
            with lock:
                print(json.dumps(result), flush=True)
            sock.close()

        threads = []
        for index in range(connections):
            sock, peer = listener.accept()
            peer_port = peer[1]
            thread = threading.Thread(target=serve, args=(sock, peer_port, index))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        return
    host, port, total, seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 120
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(timeout)
    print(json.dumps(run(sock, total, seed)), flush=True)
    sock.close()


if __name__ == "__main__":
    main()
