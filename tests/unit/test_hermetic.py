"""The whole unit tier, run with every way out of the environment pointing at a trap, reaches
nothing: no connection to the trap and no container or cluster CLI started.

A listener on 127.0.0.1 counts every connection; KUBECONFIG, ~/.kube/config, DOCKER_HOST,
CONTAINER_HOST and the OOMLAB_ENGINE_* addresses all name it, and docker, podman and kubectl on
PATH only write down that they were started. The tier runs in a subprocess, without this test
(the guard variable stops it running itself)."""

from __future__ import annotations

import os
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

INNER_RUN = "OOMLAB_HERMETIC_INNER_RUN"
ROOT = Path(__file__).resolve().parents[2]
TRAPPED_COMMANDS = ("docker", "podman", "kubectl", "crictl", "nerdctl")


class CountingListener(socketserver.ThreadingTCPServer):
    """Accepts every connection, writes down its first line and answers 503."""

    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[str] = []
        super().__init__(("127.0.0.1", 0), _Answer)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Answer(socketserver.StreamRequestHandler):
    server: CountingListener

    def handle(self) -> None:
        self.server.seen.append(self.rfile.readline(500).decode(errors="replace").strip())
        self.wfile.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    with CountingListener() as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server
        server.shutdown()


def trap_kubeconfig(path: Path, port: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: trap\n"
        f"clusters: [{{name: trap, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: trap, user: {token: trap}}]\n"
        "contexts: [{name: trap, context: {cluster: trap, user: trap}}]\n"
    )
    return path


def trap_commands(bin_dir: Path, log: Path) -> None:
    bin_dir.mkdir()
    for name in TRAPPED_COMMANDS:
        command = bin_dir / name
        command.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\nexit 1\n')
        command.chmod(0o755)


def test_the_unit_tier_reaches_nothing_the_environment_points_at(
    listener: CountingListener, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if os.environ.get(INNER_RUN):
        pytest.skip("the hermetic run itself")
    trap = f"tcp://127.0.0.1:{listener.port}"
    home = tmp_path / "home"
    kubeconfig = trap_kubeconfig(home / ".kube" / "config", listener.port)
    started = tmp_path / "started.log"
    trap_commands(tmp_path / "bin", started)
    env = {
        **os.environ,
        INNER_RUN: "1",
        "HOME": str(home),
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "KUBECONFIG": str(kubeconfig),
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(listener.port),
        "DOCKER_HOST": trap,
        "CONTAINER_HOST": trap,
        "OOMLAB_ENGINE_VM": trap,
        "OOMLAB_ENGINE_PODMAN_VM": trap,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/unit", "-p", "no:cacheprovider", "-q",
         "--basetemp", str(tmp_path / "inner"), "--deselect", request.node.nodeid],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert listener.seen == [], f"the unit tier connected to the trap: {listener.seen}"
    assert not started.exists(), f"the unit tier started: {started.read_text()}"
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
