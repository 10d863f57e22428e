"""An experiment's unconstrained twin: the same workload on the same node with memory enough
never to need swap, whose working time is the baseline of ``status.swapCost``.

The twin runs after the experiment's own pod has finished, on the node that pod ran on. Running
it alongside would make the two fight for the node's memory (the cluster's LimitedSwap VM node
has 1.5 GiB: the seed's twin alone asks for 1.2 GiB) and CPU, which is the very cost being
measured; the same node keeps the kernel, CPU and emulation speed equal. It is Guaranteed
(request == limit), so a LimitedSwap kubelet gives it no swap at all.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from oomlab.experiment import ExperimentSpec, build_pod, pod_name
from oomlab.rules.swapcost import twin_memory_bytes
from oomlab.rules.units import format_binary

LABEL_ROLE = "oomlab.dev/role"
ROLE_TWIN = "unconstrained-twin"


def twin_pod_name(experiment_name: str, uid: str) -> str:
    """Stable like the experiment's own pod name, so a restart finds the twin instead of making
    a second one."""
    return pod_name(experiment_name, uid, prefix="oomx-twin")


def is_twin(pod: Mapping[str, Any]) -> bool:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(LABEL_ROLE) == ROLE_TWIN


def twin_memory_limit(spec: ExperimentSpec) -> int:
    """The twin's memory limit: the workload's demand plus headroom (as ``oomlab swap-cost``),
    and never less than the experiment's own limit."""
    return max(twin_memory_bytes(spec.workload.demand_bytes()), spec.limit_bytes or 0)


def build_twin_pod(
    name: str, namespace: str, uid: str, spec: ExperimentSpec, node_name: str | None
) -> dict[str, Any]:
    """The twin's Pod: the experiment's pod (same workload, image, runtime class, tolerations,
    node constraints, security) with a large Guaranteed memory limit, pinned to ``node_name``."""
    memory = twin_memory_limit(spec)
    text = format_binary(memory)
    twin_spec = replace(
        spec, limit_bytes=memory, limit_text=text, request_bytes=memory, request_text=text
    )
    pod = build_pod(name, namespace, uid, twin_spec)
    pod["metadata"]["name"] = twin_pod_name(name, uid)
    pod["metadata"]["labels"][LABEL_ROLE] = ROLE_TWIN
    if node_name:
        pod["spec"]["affinity"] = pinned_to_node(pod["spec"].get("affinity"), node_name)
    return pod


def pinned_to_node(affinity: Mapping[str, Any] | None, node_name: str) -> dict[str, Any]:
    """``affinity`` with every required node term also requiring the node's own name (a field
    selector on metadata.name, as DaemonSets pin pods: the hostname label may differ)."""
    pinned = copy.deepcopy(dict(affinity or {}))
    required = pinned.setdefault("nodeAffinity", {}).setdefault(
        "requiredDuringSchedulingIgnoredDuringExecution", {}
    )
    terms = required.setdefault("nodeSelectorTerms", []) or [{}]
    field = {"key": "metadata.name", "operator": "In", "values": [node_name]}
    required["nodeSelectorTerms"] = [
        {**term, "matchFields": [*term.get("matchFields", []), field]} for term in terms
    ]
    return pinned
