"""spec.resize -> status.kubernetes.resize: when to resize the running pod's memory request, what
the API server and the kubelet said, and whether memory.swap.max followed.

Upstream (read in the 1.37.2 and 1.34.4 kubelet source, ``disallowResizeForSwappableContainers``
in ``pkg/kubelet/allocation``): a change of the memory request of a container that gets swap is
refused by the kubelet unless the container's memory ``resizePolicy`` is ``RestartContainer``:
pod condition ``PodResizePending``, reason ``Infeasible``, "In-place resize of containers with
swap is not supported." (kubernetes#130831, the stop-gap while kubernetes#130111 - recompute the
swap limit on resize - stays open).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from oomlab.experiment import ExperimentSpec
from oomlab.rules.nodes import NodeFacts
from oomlab.rules.results import Progress
from oomlab.rules.semantics import kernel_limit, limited_swap_bytes
from oomlab.rules.timestamps import parse_time
from oomlab.rules.units import human, parse_k8s_quantity

UPSTREAM = (
    "Kubernetes refuses an in-place change of the memory request of a container that gets swap "
    "(the kubelet marks it PodResizePending/Infeasible unless the container's memory "
    "resizePolicy is RestartContainer; kubernetes#130831), because the kubelet would not "
    "recompute memory.swap.max on resize (kubernetes#130111, open)"
)


def due_at(spec: ExperimentSpec, pod: Mapping[str, Any]) -> datetime | None:
    """When to resize: ``afterSeconds`` after the workload container started; None while it is
    not running (or no resize is asked for)."""
    if spec.resize is None:
        return None
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        started = parse_time(((status.get("state") or {}).get("running") or {}).get("startedAt"))
        if started is not None:
            return started + timedelta(seconds=spec.resize.after_s)
    return None


def kubelet_view(pod: Mapping[str, Any]) -> dict[str, Any]:
    """What the pod says about a resize: the kubelet's PodResizePending / PodResizeInProgress
    conditions and the memory request the container runs with now (status.containerStatuses
    [].resources, 1.33+)."""
    found: dict[str, Any] = {}
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodResizePending" and condition.get("status") == "True":
            found["state"] = str(condition.get("reason") or "Pending")
            found["message"] = str(condition.get("message") or "")
        elif condition.get("type") == "PodResizeInProgress" and condition.get("status") == "True":
            found.setdefault("state", "InProgress")
            found.setdefault("message", str(condition.get("message") or ""))
    for container in status.get("containerStatuses") or []:
        request = ((container.get("resources") or {}).get("requests") or {}).get("memory")
        if request is not None:
            with contextlib.suppress(ValueError):
                found["runningRequest"] = parse_k8s_quantity(request, field="memory")
    return found


def requested(spec: ExperimentSpec, at: str, refused: str | None) -> dict[str, Any]:
    """The record of the resize call: the API server accepted it, or its message."""
    assert spec.resize is not None
    record: dict[str, Any] = {
        "memoryRequest": spec.resize.memory_request_text,
        "requestedAt": at,
        "apiAccepted": refused is None,
    }
    if refused is not None:
        record["apiMessage"] = refused
    return record


def section(
    spec: ExperimentSpec,
    recorded: Mapping[str, Any] | None,
    seen: Mapping[str, Any] | None,
    progress: Progress | None,
    node: NodeFacts | None,
) -> dict[str, Any] | None:
    """status.kubernetes.resize once the resize was asked for; None before. ``seen`` is
    :func:`kubelet_view` of the pod as last seen."""
    if spec.resize is None or not recorded or "requestedAt" not in recorded:
        return None
    out = dict(recorded)
    new = spec.resize.memory_request_bytes
    if seen:
        if seen.get("state"):
            out["kubeletState"] = seen["state"]
            out["kubeletMessage"] = seen.get("message", "")
        elif seen.get("runningRequest") == new:
            out["kubeletState"] = "Done"
            out.pop("kubeletMessage", None)
    if node and node.memory_capacity_bytes and node.swap_capacity_bytes:
        share = limited_swap_bytes(new, node.memory_capacity_bytes, node.swap_capacity_bytes)
        out["predictedSwapAfter"] = kernel_limit(share)
    if progress and progress.swap_limits:
        before, after = progress.swap_limits[0][1], progress.swap_limits[-1][1]
        out["swapLimitBefore"] = -1 if before is None else before
        out["swapLimitAfter"] = -1 if after is None else after
        if "predictedSwapAfter" in out:
            out["swapLimitFollowed"] = out["swapLimitAfter"] == out["predictedSwapAfter"]
    out["explanation"] = explain(out)
    return out


def explain(resize: Mapping[str, Any]) -> str:
    to = f"memory request -> {resize.get('memoryRequest')}"
    if resize.get("apiAccepted") is False:
        return f"The API server refused the resize ({to}): {resize.get('apiMessage', '')}."
    limits = ""
    if "swapLimitAfter" in resize:
        before, after = resize.get("swapLimitBefore"), resize["swapLimitAfter"]
        limits = f"memory.swap.max read {_bytes(before)} before and {_bytes(after)} after"
        if "predictedSwapAfter" in resize:
            limits += (
                f" (the new request's LimitedSwap share is {_bytes(resize['predictedSwapAfter'])})"
            )
    state = resize.get("kubeletState")
    if state == "Infeasible":
        text = (
            f'The kubelet refused the resize ({to}): "{resize.get("kubeletMessage", "")}" '
            f"(PodResizePending, Infeasible). {UPSTREAM}."
        )
        return f"{text} Then {limits}." if limits else text
    if state == "Done":
        followed = resize.get("swapLimitFollowed")
        verdict = "unknown"
        if followed is not None:
            verdict = "the swap limit followed" if followed else "the swap limit did NOT follow"
        text = f"The kubelet applied the resize ({to}); {limits or 'memory.swap.max not read'}"
        return f"{text}: {verdict} (kubernetes#130111)."
    said = f": {resize.get('kubeletMessage')}" if resize.get("kubeletMessage") else ""
    return f"Resize asked for ({to}); the kubelet's answer so far: {state or 'none'}{said}."


def _bytes(value: Any) -> str:
    if not isinstance(value, int):
        return "?"
    return "max" if value < 0 else f"{value} ({human(value)})"
