"""hack/egress-guard.sh, proven where a failure cannot leak: three network namespaces.

    pod: eth0 100.64.0.2 -- host: oomlab0 100.64.0.1 | eth0 100.127.255.1 -- sink: up0 .255.2

"host" plays this machine: it forwards, rp_filter is off, its default route leads out of a
non-project interface (eth0) to "sink", which counts every IPv4 packet that arrives. Probes go
to addresses no route covers, host-originated (UDP, ICMP echo, an ICMP error answering a packet
from an unrouted 100.64 source) and forwarded from "pod". With the guard the sink counts nothing
and the guard's counters account for every probe; without it the sink sees them all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUARD = ROOT / "hack" / "egress-guard.sh"
PROBE = Path(__file__).with_name("probe.py")

UNROUTED = "100.64.99.9"  # in the shared range, covered by no route in "host"
SPOOFED_SOURCE = "100.64.200.1"  # an unrouted 100.64 source the sink sends from
OUTSIDE = "198.51.100.9"  # a non-100.64 destination, reached only through "host"'s default route
HOST_UPLINK, SINK_UPLINK = "100.127.255.1", "100.127.255.2"
BRIDGE_ADDRESS, POD_ADDRESS = "100.64.0.1", "100.64.0.2"

# What the probes add up to: 3 host-originated, 3 forwarded.
EXPECTED_DROPS = {"out-dst": 3, "fwd-dst": 2, "fwd-src": 1}


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Namespaces:
    prefix: str

    def name(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def run(self, role: str, *argv: str) -> str:
        done = subprocess.run(
            ["ip", "netns", "exec", self.name(role), *argv], capture_output=True, text=True
        )
        assert done.returncode == 0, f"{role}: {' '.join(argv)}: {done.stderr.strip()}"
        return done.stdout

    def iptables(self, role: str, *argv: str) -> str:
        return self.run(role, "iptables", "-w", "10", *argv)

    def guard(self, *command: str) -> str:
        return self.run("host", str(GUARD), *command)

    def guard_counters(self) -> dict[str, int]:
        lines = (line.split() for line in self.guard("counters").splitlines())
        return {name: int(packets) for name, packets, _bytes in lines}

    def packets_in(self, role: str) -> int:
        """Packets counted by the single counting rule in ROLE's raw PREROUTING."""
        table = self.iptables(role, "-t", "raw", "-L", "PREROUTING", "-v", "-x", "-n")
        return int(table.splitlines()[2].split()[0])

    def probe(self, role: str, kind: str, dest: str, *extra: str) -> str:
        sent = self.run(role, sys.executable, str(PROBE), self.name(role), kind, dest, *extra)
        return sent.strip()


def build(ns: Namespaces) -> None:
    for role in ("host", "sink", "pod"):
        subprocess.run(["ip", "netns", "add", ns.name(role)], check=True)
        ns.run(role, "ip", "link", "set", "lo", "up")
    sink, pod = ns.name("sink"), ns.name("pod")
    # host <-> sink: the "default-route interface" is a veth whose far end is the sink.
    ns.run("host", "ip", "link", "add", "eth0", "type", "veth", "peer", "up0", "netns", sink)
    ns.run("host", "ip", "addr", "add", f"{HOST_UPLINK}/30", "dev", "eth0")
    ns.run("host", "ip", "link", "set", "eth0", "up")
    ns.run("host", "ip", "route", "add", "default", "via", SINK_UPLINK)
    for key in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0"):  # fmt: skip
        ns.run("host", "sysctl", "-q", "-w", key)
    ns.run("sink", "ip", "addr", "add", f"{SINK_UPLINK}/30", "dev", "up0")
    ns.run("sink", "ip", "addr", "add", f"{SPOOFED_SOURCE}/32", "dev", "lo")
    ns.run("sink", "ip", "link", "set", "up0", "up")
    ns.iptables("sink", "-t", "raw", "-A", "PREROUTING", "-i", "up0", "-j", "DROP")
    # host <-> pod: a project bridge (oomlab0) with the pod's veth on it, as the CNI makes them.
    ns.run("host", "ip", "link", "add", "oomlab0", "type", "bridge")
    ns.run("host", "ip", "addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", "oomlab0")
    ns.run("host", "ip", "link", "set", "oomlab0", "up")
    ns.run("host", "ip", "link", "add", "vpod0", "type", "veth", "peer", "eth0", "netns", pod)
    ns.run("host", "ip", "link", "set", "vpod0", "master", "oomlab0", "up")
    ns.run("pod", "ip", "addr", "add", f"{POD_ADDRESS}/24", "dev", "eth0")
    ns.run("pod", "ip", "link", "set", "eth0", "up")
    ns.run("pod", "ip", "route", "add", "default", "via", BRIDGE_ADDRESS)
    # Counts what the host sends the pod (the project traffic the guard must let through).
    ns.iptables("pod", "-t", "raw", "-A", "PREROUTING", "-i", "eth0", "-s", BRIDGE_ADDRESS)


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    ns = Namespaces(f"oomlab-egt{os.getpid()}")
    try:
        build(ns)
        yield ns
    finally:
        for role in ("pod", "sink", "host"):
            subprocess.run(["ip", "netns", "del", ns.name(role)], capture_output=True)


def send_probes(ns: Namespaces) -> list[str]:
    return [
        ns.probe("host", "udp", UNROUTED),
        ns.probe("host", "icmp", UNROUTED),
        # The host answers this with ICMP port-unreachable to SPOOFED_SOURCE, which no route covers.
        ns.probe("sink", "udp", HOST_UPLINK, "--source", SPOOFED_SOURCE, "--port", "9"),
        ns.probe("pod", "udp", UNROUTED),
        ns.probe("pod", "icmp", UNROUTED),
        ns.probe("pod", "udp", OUTSIDE),
    ]


def test_guard_drops_every_probe_and_counts_it(namespaces: Namespaces) -> None:
    namespaces.guard("up")
    results = send_probes(namespaces)

    # The guard refuses host-originated probes at sendto(); forwarded ones leave the pod.
    assert results[0] == results[1] == "refused locally (EPERM)"

    def all_counted() -> bool:
        counters = namespaces.guard_counters()
        return all(counters[name] >= n for name, n in EXPECTED_DROPS.items())

    # Every probe is dropped by the guard or in flight to it; once all are counted none can
    # still reach the sink.
    wait_until(f"guard counters {EXPECTED_DROPS}", all_counted)
    assert namespaces.packets_in("sink") == 0
    assert namespaces.guard_counters()["out-src"] == 0


def test_without_guard_the_sink_sees_every_probe(namespaces: Namespaces) -> None:
    """The same probes with the guard left out: proof the first test can fail."""
    results = send_probes(namespaces)

    assert results[0] == results[1] == "sent"
    total = sum(EXPECTED_DROPS.values())
    wait_until(f"{total} probes in the sink", lambda: namespaces.packets_in("sink") >= total)


def test_project_traffic_still_flows_under_the_guard(namespaces: Namespaces) -> None:
    namespaces.guard("up")

    def arrived() -> bool:
        # Resent until one lands: the first can be lost while the pod's address is resolved.
        assert namespaces.probe("host", "udp", POD_ADDRESS) == "sent"
        return namespaces.packets_in("pod") >= 1

    wait_until("the host's packet in the pod", arrived)
    assert all(n == 0 for n in namespaces.guard_counters().values())


def test_up_is_idempotent_repairs_its_position_and_down_leaves_only_others_rules(
    namespaces: Namespaces,
) -> None:
    def rules() -> str:
        return namespaces.iptables("host", "-S")

    namespaces.iptables("host", "-A", "FORWARD", "-j", "ACCEPT")
    before = rules()
    namespaces.guard("up")
    installed = rules()
    namespaces.probe("host", "udp", UNROUTED)
    namespaces.guard("up")
    assert rules() == installed
    assert namespaces.guard_counters()["out-dst"] == 1  # a second up keeps the counters

    # kube-proxy inserts its own jumps at position 1; up puts the guard back in front.
    namespaces.iptables("host", "-I", "FORWARD", "1", "-j", "ACCEPT")
    assert "jumped to below position 1" in namespaces.run(
        "host", "sh", "-c", f"{GUARD} status || true"
    )
    namespaces.guard("up")
    forward = namespaces.iptables("host", "-S", "FORWARD").splitlines()
    assert forward[1:] == [
        "-A FORWARD -j OOMLAB-EGRESS-FWD",
        "-A FORWARD -j ACCEPT",
        "-A FORWARD -j ACCEPT",
    ]

    namespaces.iptables("host", "-D", "FORWARD", "-j", "ACCEPT")
    namespaces.guard("down")
    namespaces.guard("down")
    assert rules() == before


def test_down_if_idle_keeps_the_guard_while_a_project_interface_is_left(
    namespaces: Namespaces,
) -> None:
    namespaces.guard("up")

    namespaces.guard("down", "--if-idle")
    assert "absent" not in namespaces.run("host", "sh", "-c", f"{GUARD} status || true")

    namespaces.run("host", "ip", "link", "del", "oomlab0")
    namespaces.guard("down", "--if-idle")
    assert "OOMLAB-EGRESS" not in namespaces.iptables("host", "-S")
