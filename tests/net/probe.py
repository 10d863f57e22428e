"""Sends one probe from inside a network namespace the egress test made, and nothing else.

    ip netns exec NS python3 probe.py NS udp|icmp DEST [--source ADDR] [--port N]

It refuses to send unless `ip netns identify` names NS: a probe for an unrouted address must never
run in the real host's namespace, where the default route leaves the machine. A guard that drops
a host-originated packet makes the send fail with EPERM; that is an expected outcome, not an error.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import subprocess
import sys


def in_namespace(expected: str) -> bool:
    found = subprocess.run(
        ["ip", "netns", "identify", str(os.getpid())], capture_output=True, text=True, check=False
    ).stdout.split()
    return found == [expected]


def icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int) -> bytes:
    payload = b"oomlab-egress-probe"
    header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
    return struct.pack("!BBHHH", 8, 0, icmp_checksum(header + payload), ident, 1) + payload


def send(kind: str, dest: str, source: str | None, port: int) -> str:
    if kind == "udp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        packet, address = b"oomlab-egress-probe", (dest, port)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        packet, address = echo_request(os.getpid() & 0xFFFF), (dest, 0)
    with sock:
        if source:
            sock.bind((source, 0))
        try:
            sock.sendto(packet, address)
        except PermissionError:
            return "refused locally (EPERM)"
    return "sent"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("netns")
    parser.add_argument("kind", choices=["udp", "icmp"])
    parser.add_argument("dest")
    parser.add_argument("--source")
    parser.add_argument("--port", type=int, default=9)
    args = parser.parse_args()
    if not in_namespace(args.netns):
        print(f"refusing: this process is not in network namespace {args.netns}", file=sys.stderr)
        return 3
    print(send(args.kind, args.dest, args.source, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
