"""Memory QoS as a measured dimension: the seed cells on a LimitedSwap cgroup v2 node under
several kubelet Memory QoS settings (the MemoryQoS gate off, the version's defaults, the gate on
with ``TieredReservation`` and a throttling factor), each predicted by the operator and observed:
the container's memory.min / memory.low / memory.high, the outcome, swap in use and time.

The kubelet's settings change only for the comparison: a drop-in file in the VM node's
``--config-dir`` (``/run/oomlab/kubelet.conf.d``, tmpfs: a reboot forgets it) and a kubelet
restart, with the node's ``oomlab.dev/memory-*`` labels (the operator's source of them) set to
match; both are put back afterwards whatever happens (:func:`compare`).

Everything here is pure except :func:`compare`, which drives a :class:`NodePort` (the cluster I/O,
in :mod:`oomlab.cli.memqos`) and so can be tested with a fake.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from oomlab.rules.memory_qos import MemoryQoSSettings, ReservationPolicy, settings_labels
from oomlab.rules.units import MiB, human

COMPARE_LABEL = "oomlab.dev/memqos-compare"
"""On every object a comparison creates (helper pods, experiments): its run's stamp."""
DROPIN_DIR = "/run/oomlab/kubelet.conf.d"
DROPIN_FILE = "50-oomlab-memqos.conf"
DEFAULT_FACTOR = 0.9

VARIANTS: dict[str, MemoryQoSSettings] = {
    "off": MemoryQoSSettings(gate=False),
    "default": MemoryQoSSettings(),
    "tiered": MemoryQoSSettings(True, ReservationPolicy.TIERED, DEFAULT_FACTOR),
}
"""The settings compared, by name: ``default`` is the kubelet's own (no drop-in)."""


class MemQoSError(RuntimeError):
    """The kubelet's settings could not be switched (or read back as asked)."""


class MemQoSRestoreError(MemQoSError):
    """The node's kubelet settings or labels could not be put back: said loudly."""


def variant(name: str, factor: float = DEFAULT_FACTOR) -> MemoryQoSSettings:
    if name not in VARIANTS:
        raise MemQoSError(f"unknown setting {name!r}: pick from {', '.join(VARIANTS)}")
    chosen = VARIANTS[name]
    if chosen.throttling_factor is not None:
        if not 0 < factor <= 1:
            raise MemQoSError(f"--factor must be in (0, 1], not {factor}")
        chosen = MemoryQoSSettings(chosen.gate, chosen.reservation_policy, factor)
    return chosen


def dropin(settings: MemoryQoSSettings) -> str:
    """The KubeletConfiguration drop-in that sets ``settings``; empty when there is nothing to
    set (the kubelet's defaults: the drop-in is removed)."""
    lines: list[str] = []
    if settings.gate is not None:
        lines += ["featureGates:", f"  MemoryQoS: {'true' if settings.gate else 'false'}"]
    if settings.reservation_policy is not None:
        lines.append(f"memoryReservationPolicy: {settings.reservation_policy.value}")
    if settings.throttling_factor is not None:
        lines.append(f"memoryThrottlingFactor: {settings.throttling_factor:g}")
    if not lines:
        return ""
    head = ["apiVersion: kubelet.config.k8s.io/v1beta1", "kind: KubeletConfiguration"]
    return "\n".join(head + lines) + "\n"


def config_mismatch(configz: Mapping[str, Any], settings: MemoryQoSSettings) -> str:
    """How the kubelet's running configuration (``/configz``) differs from ``settings``; empty
    when it runs them. Unstated settings must be absent (the version's defaults)."""
    config = configz.get("kubeletconfig") or {}
    gate = (config.get("featureGates") or {}).get("MemoryQoS")
    policy = config.get("memoryReservationPolicy") or ReservationPolicy.NONE.value
    factor = config.get("memoryThrottlingFactor")
    wanted_policy = (settings.reservation_policy or ReservationPolicy.NONE).value
    wrong = []
    if gate != settings.gate:
        wrong.append(f"MemoryQoS gate {gate} (want {settings.gate})")
    if policy != wanted_policy:
        wrong.append(f"memoryReservationPolicy {policy} (want {wanted_policy})")
    if settings.throttling_factor is not None and factor != settings.throttling_factor:
        wrong.append(f"memoryThrottlingFactor {factor} (want {settings.throttling_factor:g})")
    return "; ".join(wrong)


def describe(settings: MemoryQoSSettings) -> str:
    if settings.gate is None:
        return "the kubelet's defaults"
    if not settings.gate:
        return "MemoryQoS off"
    policy = (settings.reservation_policy or ReservationPolicy.NONE).value
    factor = "unset" if settings.throttling_factor is None else f"{settings.throttling_factor:g}"
    return f"MemoryQoS on, {policy}, factor {factor}"


# --------------------------------------------------------------------------------------------
# the cells


@dataclass(frozen=True)
class Cell:
    name: str
    request: str
    limit: str
    size_bytes: int
    chunk_bytes: int


SEED_CELLS = (
    Cell("burstable", "400Mi", "500Mi", 1000 * MiB, 500 * MiB),
    Cell("guaranteed", "500Mi", "500Mi", 1000 * MiB, 500 * MiB),
)
"""The seed on the LimitedSwap node: Burstable 400Mi/500Mi completes partly in swap, Guaranteed
500Mi/500Mi gets no swap and is OOM-killed (FACTS: the VM node)."""


@dataclass(frozen=True)
class MemQoSRun:
    variant: str
    cell: str
    experiment: str
    predicted_outcome: str | None
    observed: str
    predicted: Mapping[str, int]
    seen: Mapping[str, int]
    agrees: bool | None
    swap_bytes_at_end: int | None
    duration_s: float | None
    explanation: str


def run_from_experiment(name: str, cell: str, body: Mapping[str, Any]) -> MemQoSRun:
    status = body.get("status") or {}
    k8s = status.get("kubernetes") or {}
    qos = k8s.get("memoryQoS") or {}
    return MemQoSRun(
        variant=name,
        cell=cell,
        experiment=str((body.get("metadata") or {}).get("name", "")),
        predicted_outcome=k8s.get("predictedOutcome"),
        observed=str(status.get("phase") or "Pending"),
        predicted=dict(qos.get("predicted") or {}),
        seen=dict(qos.get("observed") or {}),
        agrees=qos.get("agrees"),
        swap_bytes_at_end=k8s.get("swapBytesAtEnd"),
        duration_s=k8s.get("durationSeconds"),
        explanation=str(qos.get("explanation") or ""),
    )


class NodePort(Protocol):
    """The cluster side of a comparison on one node."""

    def apply(self, settings: MemoryQoSSettings) -> None:
        """Write the drop-in for ``settings`` (none for the defaults), restart the kubelet and
        return once its /configz runs them; raise :class:`MemQoSError` otherwise."""

    def read_labels(self) -> dict[str, str | None]: ...

    def set_labels(self, labels: Mapping[str, str | None]) -> None: ...


RunCell = Callable[[str, Cell], Mapping[str, Any]]
"""(variant name, cell) -> the experiment's final document."""


@dataclass(frozen=True)
class Comparison:
    node: str
    runs: tuple[MemQoSRun, ...]
    settings: Mapping[str, str]
    """Variant name -> what it set (a sentence)."""
    restored: str


def compare(
    port: NodePort,
    run: RunCell,
    *,
    node: str,
    variants: Sequence[tuple[str, MemoryQoSSettings]],
    cells: Sequence[Cell] = SEED_CELLS,
    progress: Callable[[str], None] = lambda _: None,
) -> Comparison:
    """Each variant in turn: kubelet settings and labels, then every cell. The kubelet's own
    settings (no drop-in) and the node's labels as they were are put back in any case."""
    before = port.read_labels()
    original = {key: before.get(key) for key in settings_labels(MemoryQoSSettings())}
    runs: list[MemQoSRun] = []
    try:
        for name, settings in variants:
            progress(f"{name}: restarting the kubelet of {node} with {describe(settings)}")
            port.apply(settings)
            port.set_labels(settings_labels(settings))
            for cell in cells:
                progress(f"{name}: running {cell.name}")
                runs.append(run_from_experiment(name, cell.name, run(name, cell)))
    finally:
        progress(f"restoring the kubelet of {node} (its own settings, no drop-in)")
        try:
            port.apply(MemoryQoSSettings())
            port.set_labels(original)
        except Exception as exc:
            raise MemQoSRestoreError(
                f"could not restore node {node}: {exc}; remove {DROPIN_DIR}/{DROPIN_FILE} on "
                "it (or reboot it) and its oomlab.dev/memory-* labels by hand"
            ) from exc
    restored = f"Node {node}: kubelet back on its own settings (no drop-in), labels as before."
    return Comparison(node, tuple(runs), {name: describe(s) for name, s in variants}, restored)


# --------------------------------------------------------------------------------------------
# output


HEADINGS = (
    "setting", "cell", "memory.min", "memory.low", "memory.high", "agrees", "predicted",
    "observed", "swap at end", "time",
)  # fmt: skip


def _value(values: Mapping[str, int], key: str) -> str:
    if key not in values:
        return "?"
    value = values[key]
    return "max" if value < 0 else human(value)


def _pair(run: MemQoSRun, key: str) -> str:
    seen, want = _value(run.seen, key), _value(run.predicted, key)
    return seen if seen == want else f"{seen} (predicted {want})"


def table_rows(comparison: Comparison) -> list[list[str]]:
    rows = []
    for run in comparison.runs:
        agrees = {True: "yes", False: "NO", None: "?"}[run.agrees]
        swap = "?" if run.swap_bytes_at_end is None else human(run.swap_bytes_at_end)
        took = "?" if run.duration_s is None else f"{run.duration_s:.0f} s"
        rows.append([
            run.variant, run.cell, _pair(run, "memoryMin"), _pair(run, "memoryLow"),
            _pair(run, "memoryHigh"), agrees, run.predicted_outcome or "?", run.observed, swap,
            took,
        ])  # fmt: skip
    return rows


def findings(comparison: Comparison) -> list[str]:
    """Every disagreement: a cgroup value or an outcome that is not the prediction."""
    found = []
    for run in comparison.runs:
        where = f"{run.variant}/{run.cell} ({run.experiment})"
        if run.agrees is not True:
            found.append(f"{where}: memory.min/low/high not as predicted: {run.explanation}")
        if run.predicted_outcome not in (None, "Borderline", run.observed):
            found.append(f"{where}: predicted {run.predicted_outcome}, observed {run.observed}")
    return found


def to_json(comparison: Comparison) -> dict[str, Any]:
    return {
        "node": comparison.node,
        "settings": dict(comparison.settings),
        "restored": comparison.restored,
        "runs": [
            {
                "setting": r.variant,
                "cell": r.cell,
                "experiment": r.experiment,
                "predictedOutcome": r.predicted_outcome,
                "observed": r.observed,
                "predicted": dict(r.predicted),
                "seen": dict(r.seen),
                "agrees": r.agrees,
                "swapBytesAtEnd": r.swap_bytes_at_end,
                "durationSeconds": r.duration_s,
                "explanation": r.explanation,
            }
            for r in comparison.runs
        ],
    }
