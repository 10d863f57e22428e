"""The egress guard on the real host, while the cluster is up: in place, first in OUTPUT and
FORWARD, and counting.

Its logic is proven in tests/net, inside namespaces. Here the only traffic is one UDP packet to a
100.64 address routed into a veth whose other end is a namespace this test makes: if the guard
were missing the packet would land there, on this machine, never off it. The guard is never
touched. Needs root to read iptables (skips otherwise: a user's CI runs this tier unprivileged).
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

GUARD = Path(__file__).resolve().parents[2] / "hack" / "egress-guard.sh"
PROBE_ADDRESS = "100.127.254.254"  # in the shared range, used by nothing the project makes


def run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def counters() -> dict[str, int]:
    lines = (line.split() for line in run(str(GUARD), "counters").splitlines())
    return {name: int(packets) for name, packets, _bytes in lines}


@pytest.fixture(scope="module", autouse=True)
def root(api: object) -> None:
    """Only with a cluster up (the guard is there while anything is), and only as root."""
    if os.geteuid() != 0:
        pytest.skip("reading the host's iptables needs root")


@pytest.fixture
def probe_route() -> Iterator[str]:
    """A veth pair, one end here (no address; a name the guard does not allow) and one in a
    namespace of our own, with a /32 route for PROBE_ADDRESS through it. Returns the namespace."""
    netns, link = f"oomlab-egp{os.getpid()}", f"egp{os.getpid() % 1_000_000}"
    run("ip", "netns", "add", netns)
    try:
        run("ip", "link", "add", link, "type", "veth", "peer", "eth0", "netns", netns)
        run("ip", "-n", netns, "addr", "add", f"{PROBE_ADDRESS}/32", "dev", "eth0")
        run("ip", "-n", netns, "link", "set", "eth0", "up")
        run("ip", "netns", "exec", netns, "iptables", "-w", "10", "-t", "raw", "-A", "PREROUTING")
        run("ip", "link", "set", link, "up")
        run("ip", "route", "add", f"{PROBE_ADDRESS}/32", "dev", link)
        yield netns
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)  # takes the veth along


def test_guard_is_in_place_first_in_output_and_forward() -> None:
    status = subprocess.run([str(GUARD), "status"], capture_output=True, text=True)

    assert status.returncode == 0, status.stdout + status.stderr
    assert "OOMLAB-EGRESS-OUT  in place (OUTPUT position 1)" in status.stdout
    assert "OOMLAB-EGRESS-FWD  in place (FORWARD position 1)" in status.stdout


def test_guard_counts_a_packet_for_a_non_project_interface(probe_route: str) -> None:
    before = counters()["out-dst"]

    # Dropped in OUTPUT: sendto() fails with EPERM.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(PermissionError):
        sock.sendto(b"oomlab-egress-probe", (PROBE_ADDRESS, 9))

    assert counters()["out-dst"] >= before + 1
    arrived = run("ip", "netns", "exec", probe_route, "iptables", "-w", "10", "-t", "raw",
                  "-L", "PREROUTING", "-v", "-x", "-n")  # fmt: skip
    assert int(arrived.splitlines()[2].split()[0]) == 0
