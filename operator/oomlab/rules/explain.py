"""Why each container of a user's own workload gets the memory and swap it gets, on a given node.

The kubelet decides a container's swap from the pod and the node alone (``GetContainerSwapBehavior``
and ``calcSwapForBurstablePods`` in ``pkg/kubelet/kuberuntime/kuberuntime_container_linux.go``, read
in k8s.io/kubernetes v1.37.2):

- the pod's QoS class is computed over *all* its containers, init containers and sidecars
  included (or from pod-level ``spec.resources`` when they are set);
- a pod is critical, and gets no swap, when it is a static or mirror pod or its priority is at
  least 2,000,000,000 (only the built-in ``system-node-critical`` and ``system-cluster-critical``
  classes are that high: user classes stop at 1,000,000,000);
- every container, whatever its kind (init, sidecar, regular), goes through the same rule with
  its own request and limit, after the API server has defaulted a missing request to the limit.

The rule itself (which causes zero swap, and the sentence for each) is
:func:`oomlab.rules.semantics.kubelet_allowance`; this module gathers its inputs from manifests
and Node objects and spells out what follows: the cgroup files the kernel will show, the Docker
flags that give the same limits, and the outcome for a given working set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from oomlab.rules.nodes import node_facts_from_node
from oomlab.rules.pod_facts import (
    API_SOURCE as API_SOURCE,
)
from oomlab.rules.pod_facts import (
    CONFIG_MIRROR_ANNOTATION as CONFIG_MIRROR_ANNOTATION,
)
from oomlab.rules.pod_facts import (
    CONFIG_SOURCE_ANNOTATION as CONFIG_SOURCE_ANNOTATION,
)
from oomlab.rules.pod_facts import (
    POD_TEMPLATE_PATHS as POD_TEMPLATE_PATHS,
)
from oomlab.rules.pod_facts import (
    SYSTEM_PRIORITY_CLASSES as SYSTEM_PRIORITY_CLASSES,
)
from oomlab.rules.pod_facts import (
    ContainerFacts as ContainerFacts,
)
from oomlab.rules.pod_facts import (
    ContainerRole as ContainerRole,
)
from oomlab.rules.pod_facts import (
    PodFacts as PodFacts,
)
from oomlab.rules.pod_facts import (
    Skipped as Skipped,
)
from oomlab.rules.pod_facts import (
    pod_facts as pod_facts,
)
from oomlab.rules.pod_facts import (
    pod_templates as pod_templates,
)
from oomlab.rules.pod_facts import (
    priority_classes_in as priority_classes_in,
)
from oomlab.rules.results import CgroupVersion
from oomlab.rules.semantics import (
    Allowance,
    FlagError,
    NodeSwap,
    NoSwapCause,
    Prediction,
    SwapBehavior,
    docker_allowance,
    kernel_limit,
    kubelet_allowance,
    kubelet_no_swap_causes,
    predict,
    thp_caveat,
)
from oomlab.rules.units import GiB, KiB, MiB, SizeError, human

V1_UNLIMITED = 9_223_372_036_854_771_712
"""What a cgroup v1 ``memory.limit_in_bytes`` reads when there is no limit (the largest whole
number of 4 KiB pages)."""

NO_LIMIT = "max"
"""What a cgroup v2 limit file reads when there is no limit."""


# --------------------------------------------------------------------------------------------
# nodes


@dataclass(frozen=True)
class NodeProfile:
    """A node as the swap rule needs it; from flags, or from a Node object."""

    name: str
    swap_behavior: SwapBehavior
    cgroup_version: CgroupVersion
    memory_capacity_bytes: int | None
    swap_capacity_bytes: int | None
    kubelet_version: str | None = None
    thp: str | None = None
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [str(self.swap_behavior), f"cgroup {self.cgroup_version}"]
        if self.memory_capacity_bytes is not None:
            parts.append(f"memory {human(self.memory_capacity_bytes)}")
        parts.append(
            "swap unknown"
            if self.swap_capacity_bytes is None
            else f"swap {human(self.swap_capacity_bytes)}"
            if self.swap_capacity_bytes
            else "no swap"
        )
        if self.kubelet_version:
            parts.append(f"kubelet {self.kubelet_version}")
        if self.thp:
            parts.append(f"THP {self.thp}")
        return f"{self.name} ({', '.join(parts)})"


def profile_from_node(
    node: Mapping[str, Any], *, swap_behavior_from_config: SwapBehavior | None = None
) -> NodeProfile:
    """A Node object as a profile: capacity.memory, nodeInfo.swap.capacity and kubeletVersion,
    and the project's labels for swap behaviour, cgroup version and THP. The kubelet's own
    configuration (its configz), when readable, says the swap behaviour of an unlabelled node."""
    facts = node_facts_from_node(node)
    notes: list[str] = []
    behavior = facts.swap_behavior or swap_behavior_from_config
    if behavior is None:
        behavior = SwapBehavior.NO_SWAP
        notes.append(
            "its swap behaviour is neither labelled nor readable from the kubelet: assumed "
            "NoSwap, the kubelet's default"
        )
    cgroup = facts.cgroup_version or CgroupVersion.UNKNOWN
    info = (node.get("status") or {}).get("nodeInfo") or {}
    return NodeProfile(
        name=facts.name,
        swap_behavior=behavior,
        cgroup_version=cgroup,
        memory_capacity_bytes=facts.memory_capacity_bytes,
        swap_capacity_bytes=facts.swap_capacity_bytes,
        kubelet_version=info.get("kubeletVersion") or None,
        thp=facts.thp,
        notes=tuple(notes),
    )


_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


def kubelet_version_rule(version: str | None) -> tuple[bool, str | None]:
    """Whether the NodeSwap rules here hold for this kubelet, and what to say about it.

    | kubelet     | NodeSwap                                   | here                      |
    |-------------|--------------------------------------------|---------------------------|
    | < 1.28      | alpha, other semantics (UnlimitedSwap, v1) | not explained             |
    | 1.28 - 1.29 | beta, feature gate off by default          | explained, gate assumed on |
    | 1.30 - 1.33 | beta, on by default                        | explained                 |
    | 1.34 +      | GA, gate locked on (1.34.4, 1.37.2 source) | explained                 |
    """
    if version is None:
        return True, None
    match = _VERSION.match(version.strip())
    if not match:
        return True, f"kubelet version {version!r} not understood: the 1.30+ rules are assumed"
    minor = (int(match.group(1)), int(match.group(2)))
    if minor < (1, 28):
        return False, (
            f"kubelet {version} predates NodeSwap beta (1.28): its swap rules differ "
            "(UnlimitedSwap, swap on cgroup v1); oomlab explains kubelets 1.28 and later"
        )
    if minor < (1, 30):
        return True, (
            f"kubelet {version}: NodeSwap is beta and off by default before 1.30; this assumes "
            "--feature-gates=NodeSwap=true (without it every container gets NoSwap)"
        )
    return True, None


# --------------------------------------------------------------------------------------------
# one container on one node


@dataclass(frozen=True)
class DockerEquivalent:
    flags: tuple[str, ...]
    exact: bool
    """False when no Docker flags set the same two limits (the note says why)."""
    note: str = ""

    def cli(self) -> str:
        return " ".join(self.flags) or "(no flags)"


@dataclass(frozen=True)
class ContainerOnNode:
    node: NodeProfile
    allowance: Allowance | None
    """None when nothing can be predicted (the notes say why)."""
    cgroup_files: dict[str, str] = field(default_factory=dict)
    """What the container's own cgroup files will read (cgroup v2: memory.max, memory.swap.max,
    memory.high; v1: memory.limit_in_bytes, memory.memsw.limit_in_bytes)."""
    docker: DockerEquivalent | None = None
    working_set_bytes: int | None = None
    prediction: Prediction | None = None
    notes: tuple[str, ...] = ()
    causes: tuple[NoSwapCause, ...] = ()
    """Every rule that denies swap here (the allowance's explanation names the first)."""

    @property
    def swap_max(self) -> int | None:
        """The predicted memory.swap.max in bytes (cgroup v2), None when not a number."""
        text = self.cgroup_files.get("memory.swap.max")
        return int(text) if text is not None and text.isdigit() else None


def docker_size(num_bytes: int) -> str:
    """A Docker size string for exactly these bytes: ``500m``, ``1g``, else plain bytes."""
    for suffix, factor in (("g", GiB), ("m", MiB), ("k", KiB)):
        if num_bytes % factor == 0:
            return f"{num_bytes // factor}{suffix}"
    return str(num_bytes)


def docker_equivalent(allowance: Allowance, cgroup: CgroupVersion) -> DockerEquivalent:
    """The ``docker run`` flags that set the same memory and swap limits (on cgroup v2 runc writes
    memory.swap.max = --memory-swap minus --memory, the kubelet's share to the byte)."""
    memory, swap = allowance.memory_bytes, allowance.swap_bytes
    if memory is None:
        if cgroup == CgroupVersion.V1 or swap is None:
            return DockerEquivalent((), True, "no limits in either")
        return DockerEquivalent(
            (),
            False,
            "Docker cannot cap swap without a memory limit (--memory-swap needs --memory): "
            "with no flags swap is limited only by the host",
        )
    if swap is None:
        return DockerEquivalent((f"--memory={docker_size(memory)}", "--memory-swap=-1"), True)
    flags = (f"--memory={docker_size(memory)}", f"--memory-swap={docker_size(memory + swap)}")
    try:
        docker_allowance(memory, memory + swap)
    except FlagError as exc:
        return DockerEquivalent(flags, False, f"Docker refuses these: {exc}")
    return DockerEquivalent(flags, True)


def predicted_cgroup_files(allowance: Allowance, cgroup: CgroupVersion) -> dict[str, str]:
    """The container cgroup's files as the kernel will show them (limits in whole pages).

    cgroup v2: the kubelet writes memory.swap.max for every container on a node with the swap
    controller (0 unless LimitedSwap gives a share); memory.high stays ``max`` without Memory QoS
    (1.37 writes ``max`` explicitly). cgroup v1: the kubelet sets memory+swap to the memory limit,
    so memory.memsw.limit_in_bytes equals memory.limit_in_bytes.
    """
    limit = allowance.memory_bytes
    if cgroup == CgroupVersion.V2:
        files = {"memory.max": NO_LIMIT if limit is None else str(kernel_limit(limit))}
        if allowance.swap_bytes is not None:
            files["memory.swap.max"] = str(kernel_limit(allowance.swap_bytes))
        files["memory.high"] = NO_LIMIT
        return files
    if cgroup == CgroupVersion.V1:
        value = str(V1_UNLIMITED if limit is None else kernel_limit(limit))
        return {"memory.limit_in_bytes": value, "memory.memsw.limit_in_bytes": value}
    return {}


def explain_container(
    pod: PodFacts,
    container: ContainerFacts,
    node: NodeProfile,
    working_set_bytes: int | None = None,
) -> ContainerOnNode:
    """One container on one node: its allowance and why, its cgroup files, the Docker flags that
    behave the same, and (given a working set) the outcome."""
    notes: list[str] = []  # the node's own notes are the profile's
    supported, version_note = kubelet_version_rule(node.kubelet_version)
    if version_note:
        notes.append(version_note)
    if not supported:
        return ContainerOnNode(node, None, notes=tuple(notes))
    if container.problems:
        notes.append("not predicted: fix the memory quantity first")
        return ContainerOnNode(node, None, notes=tuple(notes))
    if node.cgroup_version == CgroupVersion.UNKNOWN:
        notes.append(
            "the node's cgroup version is unknown (label it oomlab.dev/cgroup-version, or read "
            "the container's files with --cgroup): its swap follows the cgroup v2 rules here, "
            "and its cgroup files are not predicted"
        )
    request, limit = container.memory_request, container.memory_limit
    if request is not None and node.memory_capacity_bytes and request > node.memory_capacity_bytes:
        notes.append(
            f"its request {human(request)} is more than the node's memory "
            f"{human(node.memory_capacity_bytes)}: the scheduler does not place it there"
        )
        return ContainerOnNode(node, None, notes=tuple(notes))
    node_swap = NodeSwap(
        swap_behavior=node.swap_behavior,
        cgroup_version=node.cgroup_version,
        memory_capacity_bytes=node.memory_capacity_bytes,
        swap_capacity_bytes=node.swap_capacity_bytes,
    )
    allowance = kubelet_allowance(
        request, limit, pod.qos, node_swap, priority=pod.effective_priority
    )
    causes = tuple(no_swap_causes(pod, container, node_swap))
    if allowance.swap_bytes is None:
        notes.append("the node's memory capacity is needed for the LimitedSwap share")
        return ContainerOnNode(node, allowance, notes=tuple(notes), causes=causes)
    files = predicted_cgroup_files(allowance, node.cgroup_version)
    prediction = None
    if working_set_bytes is not None:
        prediction = thp_caveat(
            predict(
                working_set_bytes,
                allowance,
                host_swap_bytes=node.swap_capacity_bytes,
                subject=f"Kubernetes on {node.name}",
            ),
            allowance,
            node.thp,
        )
    return ContainerOnNode(
        node,
        allowance,
        cgroup_files=files,
        docker=docker_equivalent(allowance, node.cgroup_version),
        working_set_bytes=working_set_bytes,
        prediction=prediction,
        notes=tuple(notes),
        causes=causes,
    )


IDEAL_NODE = NodeSwap(SwapBehavior.LIMITED_SWAP, CgroupVersion.V2, None, 1)
"""Any LimitedSwap cgroup v2 node with swap: only the pod's and the container's own rules can deny
swap there."""


def no_swap_causes(
    pod: PodFacts, container: ContainerFacts, node: NodeSwap = IDEAL_NODE
) -> list[NoSwapCause]:
    """Every kubelet rule that denies the container swap on ``node`` (by default: every rule of
    the pod and the container itself, which deny it on any node); empty when it gets a share."""
    return kubelet_no_swap_causes(
        container.memory_request,
        container.memory_limit,
        pod.qos,
        node,
        priority=pod.effective_priority,
    )


# --------------------------------------------------------------------------------------------
# observed: the container's own cgroup files


@dataclass(frozen=True)
class FileCheck:
    file: str
    predicted: str | None
    observed: str | None
    agrees: bool | None
    """None when either side is missing."""


def compare_cgroup_files(
    predicted: Mapping[str, str], observed: Mapping[str, str]
) -> list[FileCheck]:
    """Predicted vs observed for every file either side has (values compared as the kernel
    prints them, so byte counts agree only to the page)."""
    checks = []
    for name in [*predicted, *(f for f in observed if f not in predicted)]:
        want, got = predicted.get(name), observed.get(name)
        agrees = None if want is None or got is None else want.strip() == got.strip()
        checks.append(FileCheck(name, want, got, agrees))
    return checks


def cgroup_version_of(observed: Mapping[str, str]) -> CgroupVersion:
    """Which cgroup files a container could read says which version its node runs."""
    if "memory.max" in observed:
        return CgroupVersion.V2
    if "memory.limit_in_bytes" in observed:
        return CgroupVersion.V1
    return CgroupVersion.UNKNOWN


def parse_working_set(text: str) -> tuple[str | None, str]:
    """``900Mi`` (every container) or ``app=900Mi`` (the container named app)."""
    name, sep, value = text.partition("=")
    if not sep:
        return None, text
    if not name.strip():
        raise SizeError(f"--working-set {text!r}: write NAME=SIZE or SIZE, for example app=900Mi")
    return name.strip(), value
