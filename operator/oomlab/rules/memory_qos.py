"""Memory QoS (KEP-2570): the ``memory.min``, ``memory.low`` and ``memory.high`` the kubelet
writes into a container's cgroup, per kubelet version, and what they do to an experiment.

Read from the kubelet source (``generateLinuxContainerResources`` in
``pkg/kubelet/kuberuntime/kuberuntime_container_linux.go``) of the two versions this project runs;
README "Kubernetes 1.37 against 1.34" has the details:

- **1.34** (gate alpha, off by default): with the gate on, every container with a memory request
  gets ``memory.min`` = request (whatever its QoS), and ``memory.high`` when request != limit,
  with a throttling factor that defaults to 0.9. There is no ``memoryReservationPolicy``.
- **1.37** (gate beta, on by default): ``memory.min`` (Guaranteed) or ``memory.low`` (others) =
  request only with ``memoryReservationPolicy: TieredReservation`` (default ``None``: both
  written as 0); ``memory.high`` only when ``memoryThrottlingFactor`` is set (default: unset),
  when request != limit or there is no request; with the gate off it writes ``memory.high=max``.

``memory.high`` = floor((request + factor x (limit, or node allocatable without a limit, -
request)) / page) x page, written only when above the request. 1.35 and 1.36 are not predicted:
their source is not read here.

Pure: no I/O, imports only rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from oomlab.rules.results import CgroupVersion
from oomlab.rules.semantics import PAGE_BYTES, QoSClass, kernel_limit
from oomlab.rules.units import human

MEMORY_QOS_LABEL = "oomlab.dev/memory-qos"
"""``on`` / ``off``: the kubelet's MemoryQoS gate as the node's setup (or a comparison run) set
it; absent, the kubelet version's default is assumed."""
RESERVATION_POLICY_LABEL = "oomlab.dev/memory-reservation-policy"
"""``None`` / ``TieredReservation`` (1.37's ``memoryReservationPolicy``); absent: ``None``."""
THROTTLING_FACTOR_LABEL = "oomlab.dev/memory-throttling-factor"
"""The kubelet's ``memoryThrottlingFactor`` (``0.9``), ``unset`` for none; absent: the version's
default (0.9 on 1.34, unset on 1.37)."""

V134_DEFAULT_FACTOR = 0.9
"""1.34's defaulting (``DefaultMemoryThrottlingFactor``); 1.37 leaves the factor nil."""


class ReservationPolicy(StrEnum):
    NONE = "None"
    TIERED = "TieredReservation"


class Generation(StrEnum):
    """The two Memory QoS behaviours read in the source."""

    V1_34 = "v1.34"
    """1.27-1.34: memory.min = request for all, memory.high with factor 0.9 by default."""
    V1_37 = "v1.37"
    """1.37+: tiered memory.min/memory.low, memory.high only with a factor set."""


_VERSION = re.compile(r"v?(\d+)\.(\d+)")


def generation_of(kubelet_version: str | None) -> Generation | None:
    """Which behaviour a kubelet version has; None for a version whose source was not read."""
    found = _VERSION.match(kubelet_version or "")
    if found is None:
        return None
    minor = (int(found.group(1)), int(found.group(2)))
    if (1, 27) <= minor <= (1, 34):
        return Generation.V1_34
    if minor >= (1, 37):
        return Generation.V1_37
    return None


@dataclass(frozen=True)
class MemoryQoSSettings:
    """What the node says about its kubelet's Memory QoS settings; None = not said (the
    version's default applies)."""

    gate: bool | None = None
    reservation_policy: ReservationPolicy | None = None
    throttling_factor: float | None = None
    factor_unset: bool = False
    """The node says explicitly that no throttling factor is set."""

    @property
    def stated(self) -> bool:
        said = (self.gate, self.reservation_policy, self.throttling_factor)
        return self.factor_unset or any(value is not None for value in said)


def settings_from_labels(labels: Mapping[str, Any]) -> MemoryQoSSettings:
    """The node's ``oomlab.dev/memory-*`` labels; a value that does not parse counts as absent."""
    gate_text = str(labels.get(MEMORY_QOS_LABEL, "")).lower()
    gate = {"on": True, "true": True, "off": False, "false": False}.get(gate_text)
    try:
        policy: ReservationPolicy | None = ReservationPolicy(
            str(labels.get(RESERVATION_POLICY_LABEL, ""))
        )
    except ValueError:
        policy = None
    factor_text = str(labels.get(THROTTLING_FACTOR_LABEL, ""))
    factor: float | None = None
    try:
        factor = float(factor_text) if factor_text not in ("", "unset") else None
    except ValueError:
        factor = None
    if factor is not None and not 0 < factor <= 1:
        factor = None
    return MemoryQoSSettings(gate, policy, factor, factor_unset=factor_text == "unset")


def settings_labels(settings: MemoryQoSSettings) -> dict[str, str | None]:
    """The labels that say ``settings`` (None removes a label): the inverse of
    :func:`settings_from_labels`."""
    factor: str | None = None
    if settings.throttling_factor is not None:
        factor = f"{settings.throttling_factor:g}"
    elif settings.factor_unset:
        factor = "unset"
    return {
        MEMORY_QOS_LABEL: None if settings.gate is None else ("on" if settings.gate else "off"),
        RESERVATION_POLICY_LABEL: settings.reservation_policy.value
        if settings.reservation_policy
        else None,
        THROTTLING_FACTOR_LABEL: factor,
    }


@dataclass(frozen=True)
class EffectiveQoS:
    """The kubelet's Memory QoS settings once its version's defaults are filled in."""

    generation: Generation
    enabled: bool
    reservation_policy: ReservationPolicy
    throttling_factor: float | None
    source: str
    """How they are known: the node's labels, or the version's defaults."""


def effective(settings: MemoryQoSSettings, kubelet_version: str | None) -> EffectiveQoS | None:
    """The settings in force on a kubelet of ``kubelet_version``; None when the version's
    behaviour is not known here."""
    generation = generation_of(kubelet_version)
    if generation is None:
        return None
    enabled = settings.gate if settings.gate is not None else generation == Generation.V1_37
    factor = settings.throttling_factor
    if factor is None and not settings.factor_unset and generation == Generation.V1_34:
        factor = V134_DEFAULT_FACTOR
    policy = settings.reservation_policy or ReservationPolicy.NONE
    if generation == Generation.V1_34:
        policy = ReservationPolicy.NONE  # 1.34 has no such field: memory.min is its only rule
    source = (
        "the node's oomlab.dev/memory-* labels"
        if settings.stated
        else f"kubelet {kubelet_version}'s defaults"
    )
    return EffectiveQoS(generation, enabled, policy, factor, source)


@dataclass(frozen=True)
class CgroupProtection:
    """What a container's cgroup files read: bytes, ``memory_high`` None = ``max``."""

    memory_min: int
    memory_low: int
    memory_high: int | None
    why: str


def container_protection(
    qos_settings: EffectiveQoS,
    *,
    cgroup: CgroupVersion,
    qos: QoSClass,
    request: int | None,
    limit: int | None,
    node_allocatable: int | None,
    page: int = PAGE_BYTES,
) -> CgroupProtection | None:
    """The container's ``memory.min``, ``memory.low`` and ``memory.high`` as the kernel reads
    them back (whole pages); None on cgroup v1 (no such files) or an unknown cgroup version.

    ``request`` is after the API server's defaulting (a limit without a request is the request);
    None or 0 means none. A container without a limit and a node whose allocatable memory is not
    known gets no ``memory.high`` prediction beyond ``max``, as the kubelet then writes none.
    """
    if cgroup != CgroupVersion.V2:
        return None
    request = request or 0
    limit = limit or 0
    settings = qos_settings
    if not settings.enabled:
        return CgroupProtection(
            0, 0, None, "Memory QoS is off, so the kubelet sets no memory.min/low/high"
        )
    memory_min = memory_low = 0
    if settings.generation == Generation.V1_34:
        memory_min = request
        protect = f"memory.min = request {human(request)}" if request else "no memory.min"
        high_applies = request != limit
    else:
        if request and settings.reservation_policy == ReservationPolicy.TIERED:
            if qos == QoSClass.GUARANTEED:
                memory_min = request
                protect = f"memory.min = request {human(request)} (Guaranteed, TieredReservation)"
            else:
                memory_low = request
                protect = f"memory.low = request {human(request)} ({qos}, TieredReservation)"
        else:
            protect = (
                "memory.min = memory.low = 0 (reservation policy "
                f"{settings.reservation_policy.value})"
            )
        high_applies = request != limit or request == 0
    memory_high, high_why = _memory_high(settings, request, limit, node_allocatable, high_applies)
    return CgroupProtection(
        kernel_limit(memory_min, page),
        kernel_limit(memory_low, page),
        memory_high,
        f"Memory QoS on ({settings.source}): {protect}; {high_why}",
    )


def _memory_high(
    settings: EffectiveQoS,
    request: int,
    limit: int,
    allocatable: int | None,
    applies: bool,
    page: int = PAGE_BYTES,
) -> tuple[int | None, str]:
    factor = settings.throttling_factor
    if factor is None:
        return None, "no throttling factor, so memory.high stays max"
    if not applies:
        return None, "request equals limit, so no memory.high"
    ceiling = limit or allocatable
    if not ceiling:
        return None, "no limit and node allocatable unknown, so memory.high is not predicted"
    high = math.floor((request + (ceiling - request) * factor) / page) * page
    if high <= 0 or high <= request:
        return None, "memory.high would not exceed the request, so it stays max"
    basis = "limit" if limit else "node allocatable"
    return high, (f"memory.high = request + {factor:g} x ({basis} - request) = {human(high)}")


def throttle_note(protection: CgroupProtection, limit: int | None, demand: int) -> str:
    """What the values do to this experiment's outcome, as one sentence."""
    parts: list[str] = []
    high = protection.memory_high
    if high is not None and demand > high:
        parts.append(
            f"the workload's {human(demand)} passes memory.high {human(high)}: from there the "
            "kernel reclaims the container's pages (into swap when it has any) and throttles "
            "its allocations, which can slow it; memory.high never kills, so the outcome is "
            "still decided by limit + swap"
        )
    elif high is not None:
        parts.append(f"the workload stays under memory.high {human(high)}, so it is not throttled")
    if protection.memory_min or protection.memory_low:
        parts.append(
            "the memory.min/low protection only shields the container from reclaim caused by "
            "pressure elsewhere on the node; against its own limit it does nothing"
        )
    if not parts:
        return "Memory QoS writes nothing that acts on this experiment."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def protection_check(
    predicted: CgroupProtection, observed: Mapping[str, Any] | None
) -> tuple[bool | None, list[str]]:
    """Compare with memhog's ``cgroup`` report (``memory_min_bytes``, ``memory_low_bytes``,
    ``memory_high_bytes``; null = max). (None, []) when the report has none of them."""
    if not observed:
        return None, []
    pairs = (
        ("memory.min", "memory_min_bytes", predicted.memory_min),
        ("memory.low", "memory_low_bytes", predicted.memory_low),
        ("memory.high", "memory_high_bytes", predicted.memory_high),
    )
    seen = [(name, key, want) for name, key, want in pairs if key in observed]
    if not seen:
        return None, []
    wrong = [
        f"{name} reads {_show(observed[key])}, predicted {_show(want)}"
        for name, key, want in seen
        if observed[key] != want
    ]
    return not wrong, wrong


def _show(value: Any) -> str:
    return "max" if value is None else f"{value} ({human(int(value))})"
