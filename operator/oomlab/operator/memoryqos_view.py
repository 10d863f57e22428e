"""status.kubernetes.memoryQoS: the memory.min / memory.low / memory.high the node's kubelet
should have written into the workload's cgroup (rules.memory_qos), next to what the workload
read from its own cgroup, and what they did to the experiment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oomlab.experiment import ExperimentSpec
from oomlab.rules.memory_qos import (
    CgroupProtection,
    container_protection,
    effective,
    protection_check,
    throttle_note,
)
from oomlab.rules.nodes import NodeFacts
from oomlab.rules.results import CgroupVersion, Progress
from oomlab.rules.semantics import QoSClass

MAX = -1
"""memory.high's ``max`` in the status (the CRD's integers are not nullable), as for swap."""

_FILES = (
    ("memoryMin", "memory_min_bytes"),
    ("memoryLow", "memory_low_bytes"),
    ("memoryHigh", "memory_high_bytes"),
)


def _bytes(value: int | None) -> int:
    return MAX if value is None else value


def observed_values(cgroup: Mapping[str, Any] | None) -> dict[str, int]:
    """What memhog read (cgroup v2 only; a file it could not read is left out)."""
    if not cgroup or str(cgroup.get("version", "")).removeprefix("v") != "2":
        return {}
    return {name: _bytes(cgroup[key]) for name, key in _FILES if key in cgroup}


def predicted_values(protection: CgroupProtection) -> dict[str, int]:
    return {
        "memoryMin": protection.memory_min,
        "memoryLow": protection.memory_low,
        "memoryHigh": _bytes(protection.memory_high),
    }


def section(
    spec: ExperimentSpec,
    node: NodeFacts | None,
    *,
    qos: QoSClass,
    cgroup: CgroupVersion,
    progress: Progress | None,
    recorded: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """status.kubernetes.memoryQoS, or None when there is nothing to say (cgroup v1, or neither
    a node to predict for nor a workload report). ``recorded`` is the section as the status
    has it: what the workload read stays when a later event brings no report."""
    observed = observed_values(progress.cgroup if progress else None)
    if not observed:
        observed = dict((recorded or {}).get("observed") or {})
    report = {key: None if observed[name] == MAX else observed[name]
              for name, key in _FILES if name in observed}  # fmt: skip
    if cgroup == CgroupVersion.V1 or (node is None and not observed):
        return None
    out: dict[str, Any] = {}
    if observed:
        out["observed"] = observed
    settings = effective(node.memory_qos, node.kubelet_version) if node else None
    if node is not None and settings is None:
        out["explanation"] = (
            f"Memory QoS is not predicted for kubelet {node.kubelet_version or '(unknown)'}: "
            "only 1.34 and 1.37 were read in the source."
        )
        return out
    if node is None or settings is None:
        return out
    request = spec.request_bytes if spec.request_bytes is not None else spec.limit_bytes
    protection = container_protection(
        settings,
        cgroup=CgroupVersion.V2,
        qos=qos,
        request=request,
        limit=spec.limit_bytes,
        node_allocatable=node.memory_allocatable_bytes,
    )
    assert protection is not None  # cgroup v2 asked for
    out.update(
        enabled=settings.enabled,
        reservationPolicy=settings.reservation_policy.value,
        predicted=predicted_values(protection),
        source=settings.source,
    )
    if settings.throttling_factor is not None:
        out["throttlingFactor"] = str(settings.throttling_factor)
    note = throttle_note(protection, spec.limit_bytes, spec.workload.demand_bytes())
    agrees, wrong = protection_check(protection, report if observed else None)
    text = f"{protection.why}. {note}"
    if agrees is not None:
        out["agrees"] = agrees
    if wrong:
        text += (
            " The workload's cgroup disagrees: " + "; ".join(wrong) + " (the node's kubelet "
            "runs other Memory QoS settings than its labels say)."
        )
    out["explanation"] = text
    return out


def acts(memory_qos: Mapping[str, Any] | None) -> bool:
    """Whether the section has something the experiment's explanation should repeat: a value
    that acts on the workload, or a disagreement."""
    if not memory_qos:
        return False
    if memory_qos.get("agrees") is False:
        return True
    predicted = memory_qos.get("predicted") or {}
    return bool(
        predicted.get("memoryMin") or predicted.get("memoryLow")
        or predicted.get("memoryHigh", MAX) != MAX
    )  # fmt: skip
