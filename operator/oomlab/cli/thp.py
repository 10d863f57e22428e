"""``oomlab thp-compare``: the THP comparison of :mod:`oomlab.cli.thp_compare` on the cluster
in KUBECONFIG.

The cluster side of :class:`oomlab.cli.thp_compare.NodePort` (helper pods, the node's
``oomlab.dev/thp`` label) and of running one OOMExperiment pinned to the node; the rules and
rendering are in :mod:`oomlab.cli.thp_compare`.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from oomlab import kube
from oomlab.cli import thp_compare as thp
from oomlab.cli import thp_helper
from oomlab.cli.node_switch import (
    result_table,
    run_on_node,
    save_and_print_json,
    sigterm_as_interrupt,
)
from oomlab.rules.nodes import (
    CGROUP_VERSION_LABEL,
    SWAP_BEHAVIOR_LABEL,
    THP_LABEL,
    node_facts_from_node,
)
from oomlab.rules.results import CgroupVersion
from oomlab.rules.semantics import SwapBehavior
from oomlab.rules.units import human, parse_k8s_quantity
from oomlab.rules.workload import DEFAULT_IMAGE, Mode, WorkloadSpec
from oomlab.runners.kubernetes import WatchUpdate

HELPER_READY_S = 300.0
"""Pod create -> Running took 8-41 s on the TCG node (FACTS); with headroom."""
POD_GONE_S = 120.0

out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def passed(self) -> bool:
        return time.monotonic() >= self.at


def wait_for(what: str, seconds: float, check: Callable[[], Any], poll_s: float = 1.0) -> Any:
    """``check()`` until it returns something other than None; raise after ``seconds``."""
    deadline = Deadline(seconds)
    while True:
        found = check()
        if found is not None:
            return found
        if deadline.passed():
            raise thp.ThpError(f"{what}: still not there after {seconds:.0f} s")
        time.sleep(poll_s)


def _pod_phase(pod: Mapping[str, Any] | None) -> str:
    return str(((pod or {}).get("status") or {}).get("phase") or "Pending")


@dataclass
class HelperPodNode:
    """A node that a comparison switches through short-lived helper pods (in ``namespace``,
    named after ``stamp``, running ``image``); thp-compare's and memqos-compare's."""

    node: str
    namespace: str
    stamp: str
    image: str = DEFAULT_IMAGE

    def wait_until_gone(self, helper: str) -> None:
        wait_for(
            f"helper pod {helper} to go",
            POD_GONE_S,
            lambda: True if kube.read_pod(self.namespace, helper) is None else None,
        )


@dataclass
class ClusterNode(HelperPodNode):
    """:class:`oomlab.cli.thp_compare.NodePort` on a real cluster."""

    keep_logs: Path | None = None
    """Where to write each sampling helper's raw log (``<keep_logs>-<pod>.log``), if anywhere."""

    def read_label(self) -> str | None:
        found = kube.read_node(self.node)
        if found is None:
            raise kube.NotFound(f"node {self.node} not found")
        value = ((found.get("metadata") or {}).get("labels") or {}).get(THP_LABEL)
        return None if value is None else str(value)

    def set_label(self, value: str | None) -> None:
        kube.set_node_label(self.node, THP_LABEL, value)

    def _create(self, role: str, mode: str | None, sample: bool) -> str:
        name = f"oomlab-thp-{self.stamp}-{role}"
        pod = thp_helper.helper_pod(
            name, self.namespace, self.node, image=self.image, set_mode=mode, sample=sample,
            labels={thp.COMPARE_LABEL: self.stamp},
        )  # fmt: skip
        kube.create_pod(pod)
        return name

    def _log(self, name: str) -> list[str]:
        return kube.read_pod_log_tail(self.namespace, name, 100_000)

    def _delete(self, name: str) -> None:
        kube.delete_pod(self.namespace, name)
        self.wait_until_gone(name)

    def _mode_line(self, name: str, *, finished: bool) -> thp_helper.HelperLog:
        def ready() -> thp_helper.HelperLog | None:
            pod = kube.read_pod(self.namespace, name)
            phase = _pod_phase(pod)
            if phase == "Failed":
                tail = " / ".join(self._log(name)[-3:])
                raise thp.ThpError(f"helper pod {name} failed on {self.node}: {tail}")
            if phase == "Pending" or (finished and phase != "Succeeded"):
                return None
            log = thp_helper.parse_helper_log(self._log(name))
            return log if log.after is not None else None

        result: thp_helper.HelperLog = wait_for(f"helper pod {name}", HELPER_READY_S, ready)
        return result

    def start_helper(self, mode: str) -> thp.Helper:
        name = self._create(mode, mode, sample=True)
        try:
            log = self._mode_line(name, finished=False)
        except BaseException:
            self._delete(name)
            raise
        return thp.Helper(name, log.before, log.after)

    def finish_helper(self, helper: thp.Helper) -> list[str]:
        try:
            lines = self._log(helper.name)
            if self.keep_logs is not None:
                raw = self.keep_logs.with_name(f"{self.keep_logs.stem}-{helper.name}.log")
                raw.write_text("\n".join(lines) + "\n")
            return lines
        finally:
            self._delete(helper.name)

    def write_mode(self, mode: str) -> str | None:
        name = self._create("restore", mode, sample=False)
        try:
            return self._mode_line(name, finished=True).after
        finally:
            self._delete(name)


def container_id(pod: Mapping[str, Any] | None) -> str | None:
    """The workload container's id without its runtime prefix (``containerd://``)."""
    for status in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        raw = str(status.get("containerID") or "")
        if raw:
            return raw.split("://", 1)[-1]
    return None


def experiment_runner(
    namespace: str,
    node: str,
    stamp: str,
    *,
    request: str,
    limit: str,
    size_bytes: int,
    timeout_s: int,
    progress: Callable[[str], None],
) -> thp.RunExperiment:
    """Run one experiment per mode, pinned to ``node``, through the Kubernetes runner (kept, for
    kubectl), noting the workload's container id while its pod exists."""

    def run(mode: str) -> tuple[Mapping[str, Any], str | None]:
        name = f"thp-{stamp}-{mode}"
        seen: dict[str, str | None] = {"container": None}

        def on_update(update: WatchUpdate) -> None:
            k8s = (update.body.get("status") or {}).get("kubernetes") or {}
            if seen["container"] is None and k8s.get("podName"):
                seen["container"] = container_id(kube.read_pod(namespace, k8s["podName"]))
            allocated = k8s.get("allocatedBytes")
            got = "" if allocated is None else f", {human(allocated)} allocated"
            progress(f"THP {mode}: {name} {update.phase}{got}")

        observed = run_on_node(
            namespace, node, name, WorkloadSpec(Mode.BULK, size_bytes), limit=limit,
            request=request, timeout_s=timeout_s, labels={thp.COMPARE_LABEL: stamp},
            on_update=on_update,
        )  # fmt: skip
        if observed.problem:
            raise thp.ThpError(f"experiment {name}: {observed.problem}")
        return observed.body, seen["container"]

    return run


def limited_swap_node(name: str | None) -> dict[str, Any]:
    """The node to compare on: the one named, or the only LimitedSwap cgroup v2 node (a node
    tainted for its kubelet version, hack/vm-node-old.sh, is left out: the comparison's pods do
    not tolerate it)."""
    if name is not None:
        found = kube.read_node(name)
        if found is None:
            raise kube.NotFound(f"node {name} not found")
        return found
    nodes = kube.list_nodes_matching(
        f"{SWAP_BEHAVIOR_LABEL}={SwapBehavior.LIMITED_SWAP.value},"
        f"{CGROUP_VERSION_LABEL}={CgroupVersion.V2.value}"
    )
    nodes = [n for n in nodes if not node_facts_from_node(n).kubelet_tainted]
    if len(nodes) != 1:
        names = ", ".join(n["metadata"]["name"] for n in nodes) or "none"
        raise thp.ThpError(
            f"need exactly one LimitedSwap cgroup v2 node (found: {names}); hack/vm-node.sh up "
            "makes one, --node picks one"
        )
    return nodes[0]


def render(comparison: thp.Comparison) -> Table:
    title = f"THP on node {comparison.node}: {comparison.sizing.describe()}"
    return result_table(title, thp.HEADINGS, thp.table_rows(comparison))


def thp_compare(
    node: Annotated[
        str | None, typer.Option(help="The LimitedSwap node; default: the only one.")
    ] = None,
    request: Annotated[str, typer.Option(help="requests.memory (Burstable).")] = "400Mi",
    limit: Annotated[str, typer.Option(help="limits.memory.")] = "500Mi",
    swap_fill: Annotated[
        float,
        typer.Option(help="Demand beyond the limit, as a share of the pod's LimitedSwap share."),
    ] = thp.DEFAULT_SWAP_FILL,
    namespace: Annotated[str, typer.Option("--namespace", "-n")] = "default",
    timeout: Annotated[int, typer.Option(help="Seconds per experiment.", min=1)] = 600,
    image: Annotated[str, typer.Option(help="Image of the helper pod (needs python3).")] = (
        DEFAULT_IMAGE
    ),
    save: Annotated[
        Path | None,
        typer.Option(
            help="Also write the result as JSON here (for a later report), and next to it each "
            "helper's raw samples."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = (
        False
    ),
) -> None:
    """The same Burstable workload on the LimitedSwap node under THP always, then madvise:
    predicted by the operator vs observed, swap cache and anon_thp at the end. Switches the
    node's THP mode (and its oomlab.dev/thp label) for the comparison only, and restores both."""
    request_bytes = parse_k8s_quantity(request, field="--request")
    limit_bytes = parse_k8s_quantity(limit, field="--limit")
    if request_bytes >= limit_bytes:
        raise thp.ThpError("--request must be below --limit: only Burstable pods get swap")
    found = limited_swap_node(node)
    facts = node_facts_from_node(found)
    size = thp.sizing(request_bytes, limit_bytes, facts, swap_fill)
    stamp = time.strftime("%H%M%S")
    signal.signal(signal.SIGTERM, sigterm_as_interrupt)
    with err.status(f"THP comparison on {facts.name}: {size.describe()}") as spinner:
        last = {"text": ""}

        def progress(text: str) -> None:
            spinner.update(text)
            if not err.is_terminal and text != last["text"]:
                err.print(text, highlight=False)  # a log keeps the steps a spinner would show
            last["text"] = text

        run = experiment_runner(
            namespace, facts.name, stamp, request=request, limit=limit,
            size_bytes=size.size_bytes, timeout_s=timeout, progress=progress,
        )  # fmt: skip
        port = ClusterNode(facts.name, namespace, stamp, image, keep_logs=save)
        comparison = thp.compare(port, run, node=facts.name, size=size, progress=progress)
    if save_and_print_json(thp.to_json(comparison), save, as_json, out):
        return
    out.print(render(comparison))
    out.print(thp.explanation(comparison))
    for finding in thp.findings(comparison):
        out.print(f"[bold]finding:[/bold] {finding}")
    out.print(comparison.restored)
    err.print(
        f"experiments kept: kubectl delete oomx -n {namespace} -l {thp.COMPARE_LABEL}={stamp}"
    )
