"""Keep a tier hermetic: no cluster or container engine reachable from the environment.

The unit and net tiers run on machines where KUBECONFIG, DOCKER_HOST or ~/.kube/config may point
at a live cluster or engine; a test that forgot its fake would then create objects there. Their
conftests call :func:`isolate` around every test: it takes each such way out of the environment
and forgets every cached client, so that test fails the same way everywhere instead. A test that
needs a cluster or an engine gives itself an explicit fake. :class:`TrappedRun` is the proof:
the tier run with every one of those ways out naming a trap that counts what reaches it.
"""

from __future__ import annotations

import os
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client

from oomlab import kube

REACHING_OUT = frozenset(
    {
        "KUBECONFIG",
        "KUBERNETES_SERVICE_HOST",
        "KUBERNETES_SERVICE_PORT",
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_CONFIG",
        "DOCKER_CERT_PATH",
        "DOCKER_TLS_VERIFY",
        "CONTAINER_HOST",
        "CONTAINER_CONNECTION",
        "CONTAINER_SSHKEY",
        "OOMLAB_ALLOW_FOREIGN_CLUSTER",
    }
)
"""Variables that choose a cluster or an engine, or let the test guard use a foreign cluster."""

REACHING_OUT_PREFIXES = ("OOMLAB_ENGINE_",)
"""``docker@NAME`` and ``podman@NAME`` read their addresses from ``OOMLAB_ENGINE_*``."""

NO_DOCKER_ENGINE = "unix:///nonexistent/oomlab-hermetic/docker.sock"
"""Without DOCKER_HOST the Docker SDK would use the local engine's socket."""


def reaching_out(names: Iterable[str]) -> list[str]:
    """Those of ``names`` that :func:`isolate` takes out of the environment."""
    return [n for n in names if n in REACHING_OUT or n.startswith(REACHING_OUT_PREFIXES)]


def forget_clients() -> None:
    """Every client cached in this process: oomlab's Kubernetes client (the runners cache no
    Docker client)."""
    kube.reset_client()


def isolate(monkeypatch: pytest.MonkeyPatch, base: Path) -> None:
    """No cluster or engine in the environment, and no client cached from an earlier test.

    KUBECONFIG names a file under ``base`` that does not exist, so ~/.kube/config is never read
    either, and DOCKER_HOST a socket that does not exist, so the local engine's default socket is
    never tried. Tier switches such as OOMLAB_REQUIRE_NETNS stay."""
    for name in reaching_out(list(os.environ)):
        monkeypatch.delenv(name)
    monkeypatch.setenv("KUBECONFIG", str(base / "hermetic-no-cluster" / "kubeconfig"))
    monkeypatch.setenv("DOCKER_HOST", NO_DOCKER_ENGINE)
    # tests/lab.py's connect() sets the client library's default configuration: give it back.
    monkeypatch.setattr(client.Configuration, "_default", client.Configuration._default)
    forget_clients()


INNER_RUN = "OOMLAB_HERMETIC_INNER_RUN"
"""Set in the trapped run: the tier it runs must not start another."""

TRAPPED_COMMANDS = ("docker", "podman", "kubectl", "crictl", "nerdctl")
OFFLINE_KUBECTL = ("kustomize", "plugin", "oomlab")
"""kubectl subcommands that never contact a cluster themselves, so the trap runs the real kubectl
for them: kustomize and plugin read local files; oomlab is the kit's own plugin, whose every
connection the listener still counts."""


class CountingListener(socketserver.ThreadingTCPServer):
    """Accepts every connection on 127.0.0.1, writes down its first line and answers 503."""

    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[str] = []
        super().__init__(("127.0.0.1", 0), _Answer)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Answer(socketserver.StreamRequestHandler):
    server: CountingListener

    def handle(self) -> None:
        self.server.seen.append(self.rfile.readline(500).decode(errors="replace").strip())
        self.wfile.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")


def write_kubeconfig(path: Path, server: str) -> Path:
    """A minimal kubeconfig whose one cluster is ``server`` (a token user, never a real one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
        f"clusters: [{{name: test, cluster: {{server: '{server}'}}}}]\n"
        "users: [{name: test, user: {token: test}}]\n"
        "contexts: [{name: test, context: {cluster: test, user: test}}]\n"
    )
    return path


def trap_kubeconfig(path: Path, port: int) -> Path:
    return write_kubeconfig(path, f"http://127.0.0.1:{port}")


def trap_commands(bin_dir: Path, log: Path) -> None:
    """docker, podman, kubectl, ... that only write down that they were started."""
    bin_dir.mkdir()
    for name in TRAPPED_COMMANDS:
        command = bin_dir / name
        passed_on = ""
        real = shutil.which(name)
        if name == "kubectl" and real:
            passed_on = f'case "$1" in {"|".join(OFFLINE_KUBECTL)}) exec {real} "$@";; esac\n'
        command.write_text(f'#!/bin/sh\n{passed_on}echo "{name} $*" >> {log}\nexit 1\n')
        command.chmod(0o755)


@dataclass
class TrappedOutcome:
    returncode: int
    output: str
    connections: list[str]
    """The first line of each connection the listener accepted."""
    started: list[str]
    """Each trapped command started, with its arguments."""


class TrappedRun:
    """A pytest run in a subprocess with every way out of the environment naming a trap:
    KUBECONFIG, ~/.kube/config (a HOME of its own), KUBERNETES_SERVICE_HOST/PORT, DOCKER_HOST,
    CONTAINER_HOST and OOMLAB_ENGINE_VM / _PODMAN_VM name a :class:`CountingListener`, and
    :data:`TRAPPED_COMMANDS` on PATH write down that they were started."""

    def __init__(self, root: Path, args: list[str]) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="oomlab-hermetic-"))
        self.listener = CountingListener()
        trap = f"tcp://127.0.0.1:{self.listener.port}"
        home = self.workdir / "home"
        self.started_log = self.workdir / "started.log"
        trap_commands(self.workdir / "bin", self.started_log)
        env = {
            **os.environ,
            INNER_RUN: "1",
            "HOME": str(home),
            "PATH": f"{self.workdir / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "KUBECONFIG": str(trap_kubeconfig(home / ".kube" / "config", self.listener.port)),
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.listener.port),
            "DOCKER_HOST": trap,
            "CONTAINER_HOST": trap,
            "OOMLAB_ENGINE_VM": trap,
            "OOMLAB_ENGINE_PODMAN_VM": trap,
        }
        self.output = (self.workdir / "output.log").open("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", "-q",
             "--basetemp", str(self.workdir / "basetemp")],
            cwd=root, env=env, stdout=self.output, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def finish(self, timeout_s: float) -> TrappedOutcome:
        returncode = self.proc.wait(timeout_s)
        self.output.seek(0)
        started = self.started_log.read_text() if self.started_log.exists() else ""
        return TrappedOutcome(
            returncode, self.output.read(), list(self.listener.seen), started.splitlines()
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.listener.shutdown()
        self.listener.server_close()
        self.output.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(autouse=True)
def hermetic_tier(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Autouse in every tier whose conftest imports it: :func:`isolate` around each test."""
    isolate(monkeypatch, tmp_path_factory.getbasetemp())
    yield
    forget_clients()
