"""The cluster's columns of ``oomlab report``, pure: which columns there are, each Docker
scenario's Kubernetes equivalent, and the cells read from the operator's status.

Columns: the host node (NoSwap, cgroup v1, runc) and the VM node (LimitedSwap, cgroup v2) with
RuntimeClass runc and crun; and a column per other kubelet version on a LimitedSwap node (the
second VM node, hack/vm-node-old.sh: tainted, so only experiments that ask for its kubelet land
there), from :func:`cluster_columns`. Each Docker scenario is mapped to its Kubernetes equivalent
(:func:`kubernetes_equivalent`, shown in the report): Docker's no-swap pair is a Guaranteed pod;
a pair that gives swap is the Burstable request whose LimitedSwap share (request / node memory x
node swap) is at least Docker's swap. The prediction is the operator's own
(``status.kubernetes.predictedOutcome``), the observation the status's outcome; a difference is a
finding. Nothing here judges: it reads what the operator wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from oomlab.cli.report_model import Measured, Scenario
from oomlab.cli.verdict import Verdict
from oomlab.rules.classify import TERMINAL_PHASES
from oomlab.rules.nodes import NodeFacts, Placement, kubelet_placement, node_facts_from_node
from oomlab.rules.runtimeclass import check_runtime_class, node_view, runtime_class_from_doc
from oomlab.rules.semantics import (
    QoSClass,
    SwapBehavior,
    docker_allowance,
    kernel_limit,
    limited_swap_bytes,
    limited_swap_request,
)
from oomlab.rules.units import MiB, human, parse_docker_flags

NAMESPACE = "default"
REPORT_LABEL = "oomlab.dev/report"
FALLBACK_BURSTABLE_REQUEST = 400 * MiB
"""Without a LimitedSwap node to size it from: samples/seed-limited-swap.yaml's request."""


@dataclass(frozen=True)
class ClusterColumn:
    key: str
    label: str
    swap_behavior: SwapBehavior
    runtime_class: str
    machine: str
    """Which machine runs it: columns on different machines may run at the same time."""
    kubelet_version: str | None = None
    """Set for a column pinned to the node(s) of one kubelet version (labelled and tainted
    ``oomlab.dev/kubelet-version``); None: the cluster's ordinary nodes of that swap behaviour."""

    def placement(self) -> Placement | None:
        """The extra scheduling terms of a kubelet version's column."""
        return kubelet_placement(self.kubelet_version) if self.kubelet_version else None


CLUSTER_COLUMNS: tuple[ClusterColumn, ...] = (
    ClusterColumn("noswap-runc", "kubelet NoSwap v1 (runc)", SwapBehavior.NO_SWAP, "runc", "host"),
    ClusterColumn(
        "limited-runc", "kubelet LimitedSwap v2 runc", SwapBehavior.LIMITED_SWAP, "runc", "vm"
    ),
    ClusterColumn(
        "limited-crun", "kubelet LimitedSwap v2 crun", SwapBehavior.LIMITED_SWAP, "crun", "vm"
    ),
)


def cluster_columns(nodes: Sequence[Mapping[str, Any]]) -> tuple[ClusterColumn, ...]:
    """The fixed columns, then one per kubelet version found on a Ready LimitedSwap node that is
    tainted for its kubelet (runc, on that node's own machine), in version order."""
    versions = sorted(
        {
            f.kubelet_version
            for f in (node_facts_from_node(n) for n in nodes if _ready(n))
            if f.swap_behavior == SwapBehavior.LIMITED_SWAP and f.kubelet_tainted
            and f.kubelet_version
        }
    )  # fmt: skip
    extra = tuple(
        ClusterColumn(
            key=f"limited-runc-{v}",
            label=f"kubelet LimitedSwap v2 runc {v}",
            swap_behavior=SwapBehavior.LIMITED_SWAP,
            runtime_class="runc",
            machine=f"vm-{v}",
            kubelet_version=v,
        )
        for v in versions
    )
    return CLUSTER_COLUMNS + extra


@dataclass(frozen=True)
class KubeMapping:
    """A Docker scenario's Kubernetes equivalent, and why it is that one."""

    limit: str
    request: str
    qos: str
    why: str
    limited_swap_bytes: int | None = None
    """The swap the LimitedSwap node's formula gives this request, as memory.swap.max reads."""
    not_run: str = ""
    """Set when the scenario has no honest equivalent in an OOMExperiment."""

    def text(self) -> str:
        if self.not_run:
            return f"not run: {self.not_run}"
        return f"{self.qos} {self.request}/{self.limit}"


def _mi(value: int) -> str:
    return f"{value // MiB}Mi"


def kubernetes_equivalent(scenario: Scenario, limited_node: NodeFacts | None) -> KubeMapping:
    """Docker's ``--memory``/``--memory-swap`` as a pod's request/limit.

    Docker ``500m`` is 500 MiB, so the limit is ``500Mi``. No swap (memory-swap = memory) is a
    Guaranteed pod (LimitedSwap gives Guaranteed pods none). Swap S is the smallest whole-MiB
    Burstable request whose LimitedSwap share on ``limited_node`` is at least S; on a NoSwap node
    the same pod gets no swap, which is the comparison."""
    memory, memory_swap = parse_docker_flags(scenario.memory, scenario.memory_swap)
    if memory is None:
        return KubeMapping("-", "-", "-", "", not_run="no Docker memory limit: nothing to map")
    limit = _mi(memory) if memory % MiB == 0 else str(memory)
    allowance = docker_allowance(memory, memory_swap)
    swap = allowance.swap_bytes
    if swap is None:
        return KubeMapping(
            limit, "-", "-", "",
            not_run="unlimited Docker swap has no kubelet equivalent (LimitedSwap caps every "
            "container at its request's share)",
        )  # fmt: skip
    if swap == 0:
        return KubeMapping(
            limit, limit, QoSClass.GUARANTEED,
            f"Docker {scenario.memory}/{scenario.memory_swap or 'unset'} gives no swap; a "
            "Guaranteed pod (request = limit) gets none under either swap behaviour",
            limited_swap_bytes=0,
        )  # fmt: skip
    docker_text = (
        f"Docker --memory={scenario.memory} --memory-swap={scenario.memory_swap or 'unset'}"
    )
    if (
        limited_node is None
        or not limited_node.memory_capacity_bytes
        or not limited_node.swap_capacity_bytes
    ):
        request = FALLBACK_BURSTABLE_REQUEST
        return KubeMapping(
            limit, _mi(request), QoSClass.BURSTABLE,
            f"{docker_text} gives {human(swap)} of swap; with no LimitedSwap node to size the "
            f"request from, {_mi(request)} as in samples/seed-limited-swap.yaml",
        )  # fmt: skip
    node_memory = limited_node.memory_capacity_bytes
    node_swap = limited_node.swap_capacity_bytes
    request = limited_swap_request(swap, node_memory, node_swap, step=MiB)
    if request >= memory:
        return KubeMapping(
            limit, "-", "-", "",
            not_run=f"{docker_text} gives {human(swap)} of swap; LimitedSwap would need a "
            f"request of {_mi(request)}, not below the limit, so no Burstable pod gets as much",
        )  # fmt: skip
    share = kernel_limit(limited_swap_bytes(request, node_memory, node_swap))
    return KubeMapping(
        limit, _mi(request), QoSClass.BURSTABLE,
        f"{docker_text} gives {human(swap)} of swap; LimitedSwap gives request / "
        f"{node_memory:,} B x {node_swap:,} B, so request {_mi(request)} gets {share:,} B "
        f"({human(share)}), the smallest whole-MiB request with at least as much",
        limited_swap_bytes=share,
    )  # fmt: skip


@dataclass
class ClusterCell:
    column: ClusterColumn
    scenario: Scenario
    mapping: KubeMapping
    name: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    """Why it was not run or not finished (the cell shows "not run: ..."), else empty."""
    seconds: float = 0.0

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.body.get("status") or {})

    @property
    def k8s(self) -> dict[str, Any]:
        return dict(self.status.get("kubernetes") or {})

    @property
    def predicted(self) -> str | None:
        return self.k8s.get("predictedOutcome")

    @property
    def observed(self) -> str | None:
        return self.k8s.get("outcome") or (
            self.status.get("phase") if self.status.get("phase") in TERMINAL_PHASES else None
        )

    @property
    def verdict(self) -> Verdict:
        return Verdict(
            self.predicted,
            self.observed,
            self.k8s.get("exitCode"),
            not_run=self.error or None,
            pending=f"phase {self.status.get('phase', 'Pending')}",
        )

    @property
    def agrees(self) -> bool | None:
        return self.verdict.agrees

    def text(self) -> str:
        """``OOMKilled, 137 ✓`` as for the engines' cells."""
        return self.verdict.text()

    def swap_text(self) -> str:
        seen, predicted = self.k8s.get("swapLimitBytes"), self.k8s.get("predictedSwapBytes")
        if seen is None:
            return "-" if predicted is None else f"predicted {predicted:,} B, not read"
        agrees = self.k8s.get("swapLimitAgrees")
        verdict = "" if agrees is None else (" = predicted" if agrees else f" != {predicted}")
        return ("max" if seen < 0 else f"{seen:,} B") + verdict

    def memory_qos_text(self) -> str:
        """``memory.min / memory.low / memory.high`` as the workload read them, against the
        operator's prediction for the kubelet's Memory QoS setting (status.kubernetes.memoryQoS)."""
        section = self.k8s.get("memoryQoS") or {}
        observed, predicted = section.get("observed") or {}, section.get("predicted") or {}
        if not observed and not predicted:
            return "-"
        enabled = section.get("enabled")
        setting = "not predicted" if enabled is None else "on" if enabled else "off"
        if not observed:
            return f"predicted {_qos_triple(predicted)} (Memory QoS {setting}), not read"
        if not predicted:
            return f"{_qos_triple(observed)} (Memory QoS {setting})"
        agrees = section.get("agrees")
        verdict = " = predicted" if agrees else f" != predicted {_qos_triple(predicted)}"
        return f"{_qos_triple(observed)}{verdict} (Memory QoS {setting})"

    def oom_reported_as(self) -> str:
        if self.observed != "OOMKilled":
            return "-"
        if self.k8s.get("reason") == "OOMKilled":
            return "terminated.reason=OOMKilled"
        return f"exit {self.k8s.get('exitCode')} without reason OOMKilled: judged by evidence"


def _qos_triple(values: Mapping[str, Any]) -> str:
    def one(key: str) -> str:
        value = values.get(key)
        return "?" if value is None else "max" if value < 0 else f"{value:,}"

    return " / ".join(one(key) for key in ("memoryMin", "memoryLow", "memoryHigh"))


def host_text(cells: Sequence[ClusterCell]) -> str:
    """The node a column ran on, from the first status that names one."""
    for cell in cells:
        k8s = cell.k8s
        if k8s.get("nodeName"):
            facts = [
                f"node {k8s['nodeName']}",
                f"kubelet {k8s.get('kubeletVersion') or '?'}",
                f"cgroup {k8s.get('cgroupVersion', '?')}",
                str(k8s.get("swapBehavior", "?")),
                f"THP {k8s.get('transparentHugepages') or '?'}",
                f"runtime handler {k8s.get('runtimeHandler', '?')}",
            ]
            return ", ".join(facts)
    return "-"


@dataclass
class ClusterPart(Measured):
    """The cluster's columns; ``unreachable`` names a column, or "cluster" for all of them."""

    cells: list[ClusterCell] = field(default_factory=list)
    columns: tuple[ClusterColumn, ...] = CLUSTER_COLUMNS
    """The columns of this cluster (:func:`cluster_columns`)."""
    mapping: dict[str, KubeMapping] = field(default_factory=dict)
    """Scenario key -> its Kubernetes equivalent."""


def column_reachability(
    nodes: Sequence[Mapping[str, Any]],
    classes: Sequence[Mapping[str, Any]] | None,
    columns: Sequence[ClusterColumn] = CLUSTER_COLUMNS,
) -> dict[str, str]:
    """Column label -> why the cluster cannot run it (nothing for those it can)."""
    ready = [n for n in nodes if _ready(n)]
    views = [node_view(n) for n in ready]
    facts = [node_facts_from_node(n) for n in ready]
    why: dict[str, str] = {}
    for column in columns:
        wanted = [
            f
            for f in facts
            if (f.swap_behavior or SwapBehavior.NO_SWAP) == column.swap_behavior
            and (
                f.kubelet_version == column.kubelet_version
                if column.kubelet_version
                else not f.kubelet_tainted
            )
        ]
        if not wanted:
            label = f"oomlab.dev/swap-behavior={column.swap_behavior.value}"
            hint = " (hack/vm-node.sh up)" if column.machine == "vm" else ""
            why[column.label] = f"no Ready node runs {column.swap_behavior.value} ({label}){hint}"
            continue
        if classes is None:
            continue
        pinned = column.placement()
        check = check_runtime_class(
            column.runtime_class,
            [runtime_class_from_doc(c) for c in classes],
            views,
            swap_behavior=column.swap_behavior,
            node_selector=pinned.node_selector if pinned else None,
            tolerations=pinned.tolerations if pinned else (),
        )
        if check.reason:
            why[column.label] = check.message
    return why


def _ready(node: Mapping[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def limited_swap_node(nodes: Sequence[Mapping[str, Any]]) -> NodeFacts | None:
    """The Ready LimitedSwap node an experiment that asks only for LimitedSwap lands on (not one
    tainted for its kubelet version)."""
    for node in nodes:
        facts = node_facts_from_node(node)
        if (
            facts.swap_behavior == SwapBehavior.LIMITED_SWAP
            and not facts.kubelet_tainted
            and _ready(node)
        ):
            return facts
    return None


def planned_cells(scenarios: Sequence[Scenario]) -> int:
    return len(CLUSTER_COLUMNS) * len(scenarios)
