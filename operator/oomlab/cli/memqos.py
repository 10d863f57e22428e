"""``oomlab memqos-compare``: the Memory QoS comparison of :mod:`oomlab.cli.memqos_compare` on
the cluster in KUBECONFIG.

The cluster side of :class:`oomlab.cli.memqos_compare.NodePort`: a short-lived privileged helper
pod pinned to the node (hostPID, hostPath on the kubelet's drop-in directory) writes or removes
the drop-in and sends the kubelet SIGTERM (systemd starts it again); the kubelet's running
configuration is then read back from ``/configz`` through the API server's node proxy (which
needs a cluster admin's kubeconfig, not the operator's rights).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from rich.console import Console
from rich.table import Table

from oomlab import kube
from oomlab.cli import memqos_compare as mq
from oomlab.cli.node_switch import (
    privileged_helper_pod,
    result_table,
    run_on_node,
    save_and_print_json,
    sigterm_as_interrupt,
)
from oomlab.cli.thp import HELPER_READY_S, HelperPodNode, limited_swap_node, wait_for
from oomlab.kube_client import load_client_config
from oomlab.rules.memory_qos import (
    MEMORY_QOS_LABEL,
    RESERVATION_POLICY_LABEL,
    THROTTLING_FACTOR_LABEL,
    MemoryQoSSettings,
)
from oomlab.rules.nodes import node_facts_from_node
from oomlab.rules.workload import DEFAULT_IMAGE, Mode, WorkloadSpec
from oomlab.runners.kubernetes import WatchUpdate

KUBELET_BACK_S = 300.0
"""A kubelet restart on the TCG node: configz answers again in well under a minute; headroom."""

out = Console(width=None if sys.stdout.isatty() else 180)
err = Console(stderr=True)

# Runs in the helper pod on python3-minimal (the memhog image). argv: the drop-in's text ("" =
# remove it). Prints what it did; the kubelet is found by its /proc comm (hostPID).
HELPER_SCRIPT = r"""
import os, signal, sys
path = "/host/dropins/" + os.environ["DROPIN_FILE"]
text = sys.argv[1]
if text:
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)
    print("wrote " + path)
elif os.path.exists(path):
    os.remove(path)
    print("removed " + path)
killed = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            with open("/proc/" + pid + "/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm == "kubelet":
            os.kill(int(pid), signal.SIGTERM)
            killed.append(pid)
print("kubelet " + (",".join(killed) or "not found"))
sys.exit(0 if killed else 3)
"""


def helper_pod(
    name: str, namespace: str, node: str, image: str, text: str, stamp: str
) -> dict[str, Any]:
    return privileged_helper_pod(
        name, namespace, node, image=image, component="memqos-helper",
        labels={mq.COMPARE_LABEL: stamp}, host_pid=True,
        container={
            "name": "memqos",
            "command": ["python3", "-u", "-c", HELPER_SCRIPT, text],
            "env": [{"name": "DROPIN_FILE", "value": mq.DROPIN_FILE}],
            "volumeMounts": [{"name": "dropins", "mountPath": "/host/dropins"}],
        },
        volumes=[{"name": "dropins", "hostPath": {"path": mq.DROPIN_DIR, "type": "Directory"}}],
    )  # fmt: skip


def read_configz(node: str) -> dict[str, Any] | None:
    """The kubelet's running configuration, None while it does not answer."""
    api = client.CoreV1Api(load_client_config())
    try:
        response = api.connect_get_node_proxy_with_path(
            node, "configz", _preload_content=False, _request_timeout=10
        )
    except ApiException:
        return None
    except OSError:
        return None
    data: bytes = getattr(response, "data", b"") or b""
    found: dict[str, Any] = json.loads(data or b"null") or {}
    return found


@dataclass
class ClusterNode(HelperPodNode):
    """:class:`oomlab.cli.memqos_compare.NodePort` on a real cluster."""

    def apply(self, settings: MemoryQoSSettings) -> None:
        name = f"oomlab-memqos-{self.stamp}-{int(time.time()) % 100000}"
        kube.create_pod(
            helper_pod(name, self.namespace, self.node, self.image, mq.dropin(settings), self.stamp)
        )
        try:

            def done() -> str | None:
                pod = kube.read_pod(self.namespace, name)
                phase = ((pod or {}).get("status") or {}).get("phase")
                if phase in ("Succeeded", "Failed"):
                    return str(phase)
                return None

            phase = wait_for(f"helper pod {name}", HELPER_READY_S, done)
            log = " / ".join(kube.read_pod_log_tail(self.namespace, name, 20))
            if phase != "Succeeded":
                raise mq.MemQoSError(
                    f"helper pod {name} failed on {self.node}: {log or 'no log'} (does the "
                    f"node's image have {mq.DROPIN_DIR}? hack/vm-image.sh builds it)"
                )
        finally:
            kube.delete_pod(self.namespace, name)
        last = {"why": "no answer"}

        def running() -> bool | None:
            configz = read_configz(self.node)
            if configz is None:
                return None
            last["why"] = mq.config_mismatch(configz, settings)
            return True if not last["why"] else None

        try:
            wait_for(
                f"kubelet of {self.node} with {mq.describe(settings)}", KUBELET_BACK_S, running
            )
        except Exception as exc:
            raise mq.MemQoSError(f"{exc}: {last['why']}") from exc
        wait_for(f"node {self.node} Ready", KUBELET_BACK_S, self._ready)
        self.wait_until_gone(name)

    def _ready(self) -> bool | None:
        found = kube.read_node(self.node) or {}
        for condition in (found.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Ready":
                return True if condition.get("status") == "True" else None
        return None

    def read_labels(self) -> dict[str, str | None]:
        labels = ((kube.read_node(self.node) or {}).get("metadata") or {}).get("labels") or {}
        keys = (MEMORY_QOS_LABEL, RESERVATION_POLICY_LABEL, THROTTLING_FACTOR_LABEL)
        return {key: labels.get(key) for key in keys}

    def set_labels(self, labels: Mapping[str, str | None]) -> None:
        for key, value in labels.items():
            kube.set_node_label(self.node, key, value)


def cell_runner(namespace: str, node: str, stamp: str, timeout_s: int) -> mq.RunCell:
    def run(variant: str, cell: mq.Cell) -> Mapping[str, Any]:
        name = f"memqos-{stamp}-{variant}-{cell.name}"

        def on_update(update: WatchUpdate) -> None:
            err.print(f"  {name}: {update.phase}", highlight=False)

        observed = run_on_node(
            namespace, node, name,
            WorkloadSpec(Mode.BULK, cell.size_bytes, chunk_bytes=cell.chunk_bytes),
            limit=cell.limit, request=cell.request, timeout_s=timeout_s,
            labels={mq.COMPARE_LABEL: stamp}, on_update=on_update,
        )  # fmt: skip
        if observed.problem:
            raise mq.MemQoSError(f"experiment {name}: {observed.problem}")
        return observed.body

    return run


def render(comparison: mq.Comparison) -> Table:
    return result_table(
        f"Memory QoS on node {comparison.node}", mq.HEADINGS, mq.table_rows(comparison)
    )


def memqos_compare(
    node: Annotated[
        str | None, typer.Option(help="The LimitedSwap node; default: the only one.")
    ] = None,
    settings: Annotated[
        str, typer.Option(help=f"Comma-separated, from: {', '.join(mq.VARIANTS)}.")
    ] = "off,tiered",
    factor: Annotated[float, typer.Option(help="memoryThrottlingFactor of 'tiered'.")] = (
        mq.DEFAULT_FACTOR
    ),
    cells: Annotated[
        str, typer.Option(help="Comma-separated seed cells: burstable, guaranteed.")
    ] = "burstable,guaranteed",
    namespace: Annotated[str, typer.Option("--namespace", "-n")] = "default",
    timeout: Annotated[int, typer.Option(help="Seconds per experiment.", min=1)] = 600,
    image: Annotated[str, typer.Option(help="Image of the helper pod (needs python3).")] = (
        DEFAULT_IMAGE
    ),
    save: Annotated[Path | None, typer.Option(help="Also write the result as JSON here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = (
        False
    ),
) -> None:
    """The seed cells on the LimitedSwap node under each Memory QoS setting: memory.min /
    memory.low / memory.high predicted vs read by the workload, outcome, swap and time.
    Restarts the node's kubelet with each setting (a drop-in) and its oomlab.dev/memory-*
    labels for the comparison only, and restores both. Needs a cluster admin's kubeconfig
    (node proxy for /configz) and the operator running for --namespace."""
    variants = [(name, mq.variant(name, factor)) for name in settings.split(",") if name]
    by_name = {cell.name: cell for cell in mq.SEED_CELLS}
    unknown = [name for name in cells.split(",") if name not in by_name]
    if unknown:
        raise mq.MemQoSError(f"unknown cell {unknown[0]!r}: pick from {', '.join(by_name)}")
    chosen = [by_name[name] for name in cells.split(",")]
    facts = node_facts_from_node(limited_swap_node(node))
    stamp = time.strftime("%H%M%S")
    signal.signal(signal.SIGTERM, sigterm_as_interrupt)
    port = ClusterNode(facts.name, namespace, stamp, image)
    comparison = mq.compare(
        port, cell_runner(namespace, facts.name, stamp, timeout), node=facts.name,
        variants=variants, cells=chosen, progress=lambda text: err.print(text, highlight=False),
    )  # fmt: skip
    if save_and_print_json(mq.to_json(comparison), save, as_json, out):
        return
    out.print(render(comparison))
    for name, said in comparison.settings.items():
        out.print(f"{name}: {said}")
    for finding in mq.findings(comparison):
        out.print(f"[bold]finding:[/bold] {finding}")
    out.print(comparison.restored)
    err.print(f"experiments kept: kubectl delete oomx -n {namespace} -l {mq.COMPARE_LABEL}={stamp}")
