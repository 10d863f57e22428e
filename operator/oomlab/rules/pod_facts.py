"""A user's pod (or the pod a workload makes) as the kubelet sees it when it decides swap: each
container's role, request and limit, the pod's QoS class (over all containers, init containers and
sidecars included) and whether it is critical. Read from manifests, pure; used by
:mod:`oomlab.rules.explain`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from oomlab.rules.semantics import (
    CRITICAL_PRIORITY,
    QoSClass,
)

SYSTEM_PRIORITY_CLASSES = {
    "system-node-critical": CRITICAL_PRIORITY + 1000,
    "system-cluster-critical": CRITICAL_PRIORITY,
}
"""The only classes at or above the critical priority: the API refuses user-defined classes above
1,000,000,000 and reserves the ``system-`` prefix."""

CONFIG_SOURCE_ANNOTATION = "kubernetes.io/config.source"
CONFIG_MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
API_SOURCE = "api"


POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "PodTemplate": ("template",),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
"""Where each workload kind keeps the pod it makes (an empty path: the document is the pod)."""


class ContainerRole(StrEnum):
    INIT = "init"
    SIDECAR = "sidecar"
    """A restartable init container (``restartPolicy: Always``): runs beside the app."""
    CONTAINER = "container"
    EPHEMERAL = "ephemeral"


# --------------------------------------------------------------------------------------------
# a pod as the kubelet sees it


@dataclass(frozen=True)
class ContainerFacts:
    name: str
    role: ContainerRole
    memory_request: int | None
    """Bytes after the API server's defaulting: a missing request is the limit."""
    memory_limit: int | None
    request_from_limit: bool = False
    """The manifest gave a limit but no request, so the API server copies the limit."""
    problems: tuple[str, ...] = ()
    """Quantities that cannot be meant as written (``500m`` is half a byte): nothing is
    predicted for a container with a problem."""


@dataclass(frozen=True)
class PodFacts:
    kind: str
    name: str
    namespace: str | None
    qos: QoSClass
    qos_basis: str
    containers: tuple[ContainerFacts, ...]
    priority: int | None = None
    critical: str | None = None
    """Why the pod is critical (and gets no swap), None when it is not."""
    notes: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}" if self.name else self.kind

    @property
    def effective_priority(self) -> int:
        """The priority the swap rule sees: critical pods count as critical priority (a static
        or mirror pod is critical whatever its priority field says)."""
        if self.critical is not None:
            return max(self.priority or 0, CRITICAL_PRIORITY)
        return self.priority or 0


@dataclass(frozen=True)
class Skipped:
    kind: str
    name: str
    why: str


def _path(doc: Mapping[str, Any], keys: Sequence[str]) -> Mapping[str, Any] | None:
    node: Any = doc
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else None


def pod_templates(
    docs: Sequence[Any],
) -> Iterator[tuple[Mapping[str, Any], Mapping[str, Any] | None, Skipped | None]]:
    """Each document (``List`` items unfolded) with the pod it makes: ``(doc, pod, None)`` for a
    workload, ``(doc, None, Skipped)`` for anything that makes no pod."""
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            yield {}, None, Skipped("?", "", f"not a Kubernetes object: {str(doc)[:40]!r}")
            continue
        kind = str(doc.get("kind") or "")
        name = str((doc.get("metadata") or {}).get("name") or "")
        if kind == "List" or (kind.endswith("List") and isinstance(doc.get("items"), list)):
            yield from pod_templates(list(doc.get("items") or []))
            continue
        if kind == "Kustomization":
            why = "a kustomization: explain what it builds (kubectl kustomize DIR | ... -f -)"
            yield doc, None, Skipped(kind, name, why)
            continue
        path = POD_TEMPLATE_PATHS.get(kind)
        if path is None:
            yield doc, None, Skipped(kind or "?", name, "makes no pods")
            continue
        pod = _path(doc, path)
        if pod is None or not isinstance(pod.get("spec"), Mapping):
            yield (
                doc,
                None,
                Skipped(kind, name, "has no pod spec at " + ".".join(path or ("spec",))),
            )
            continue
        yield doc, pod, None


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]
    except (ValueError, InvalidOperation, TypeError):
        return None


@dataclass(frozen=True)
class _Requirements:
    """One set of requests and limits (a container's, or the pod's own), after defaulting."""

    requests: dict[str, Decimal]
    limits: dict[str, Decimal]
    problems: list[str]
    request_from_limit: bool

    @classmethod
    def read(cls, resources: Any, where: str) -> _Requirements:
        resources = resources if isinstance(resources, Mapping) else {}
        problems: list[str] = []
        parsed: dict[str, dict[str, Decimal]] = {}
        for section in ("requests", "limits"):
            parsed[section] = {}
            for resource, raw in (resources.get(section) or {}).items():
                value = _decimal(raw)
                if value is None:
                    problems.append(f"{where} {section}.{resource} {raw!r} is not a quantity")
                    continue
                parsed[section][str(resource)] = value
                if resource == "memory" and value != value.to_integral_value():
                    problems.append(_fractional_memory(where, section, raw, value))
        requests, limits = parsed["requests"], parsed["limits"]
        from_limit = "memory" in limits and "memory" not in requests
        # The API server's defaulting (SetDefaults_Pod): a limit without a request is a request.
        for resource, value in limits.items():
            requests.setdefault(resource, value)
        return cls(requests, limits, problems, from_limit)

    def qos(self) -> QoSClass:
        """``requirementsQOS``: per CPU and memory, unequal request and limit is Burstable, both
        zero is BestEffort, equal and non-zero is Guaranteed; a mix is Burstable."""
        if not self.requests and not self.limits:
            return QoSClass.BEST_EFFORT
        shapes = set()
        for resource in ("cpu", "memory"):
            request = self.requests.get(resource, Decimal(0))
            limit = self.limits.get(resource, Decimal(0))
            if request != limit:
                return QoSClass.BURSTABLE
            shapes.add(QoSClass.BEST_EFFORT if request == 0 else QoSClass.GUARANTEED)
        return shapes.pop() if len(shapes) == 1 else QoSClass.BURSTABLE

    def memory(self, section: str) -> int | None:
        value = (self.requests if section == "requests" else self.limits).get("memory")
        if value is None or value == 0 or value != value.to_integral_value():
            return None  # a fraction of a byte is one of the problems
        return int(value)


def _fractional_memory(where: str, section: str, raw: Any, value: Decimal) -> str:
    hint = ""
    text = str(raw).strip()
    if text.endswith("m"):
        hint = (
            f" ('m' is milli in Kubernetes, so this is {value.normalize():f} bytes; "
            f"for {text[:-1]} MiB write {text[:-1]}Mi)"
        )
    return (
        f"{where} memory {section[:-1]} {raw!r} is not a whole number of bytes{hint}; the API "
        "server only warns, and the kubelet rounds it up to whole bytes"
    )


def _pod_qos(
    pod_spec: Mapping[str, Any], containers: Sequence[tuple[Any, _Requirements]]
) -> tuple[QoSClass, str]:
    """The pod's QoS as ``ComputePodQOS`` does it: pod-level resources when set, else over every
    init and regular container (any Burstable one makes the pod Burstable; BestEffort mixed with
    Guaranteed is Burstable too)."""
    pod_level = _Requirements.read(pod_spec.get("resources"), "pod")
    if any(
        r in section
        for section in (pod_level.requests, pod_level.limits)
        for r in ("cpu", "memory")
    ):
        return pod_level.qos(), "from the pod-level spec.resources"
    shapes = [requirements.qos() for _, requirements in containers]
    inits = len(pod_spec.get("initContainers") or [])
    count = len(shapes)
    basis = f"over its {count} container{'s' if count != 1 else ''}"
    if inits:
        basis += f", {inits} of them init container{'s' if inits != 1 else ''}"
    if QoSClass.BURSTABLE in shapes or len(set(shapes)) > 1:
        return QoSClass.BURSTABLE, basis
    return (shapes[0] if shapes else QoSClass.BEST_EFFORT), basis


def _critical(
    metadata: Mapping[str, Any],
    pod_spec: Mapping[str, Any],
    priority_classes: Mapping[str, int],
    static: bool,
) -> tuple[int | None, str | None, list[str]]:
    """The pod's priority, why it is critical (None if not), and notes on how that was known."""
    notes: list[str] = []
    annotations = metadata.get("annotations") or {}
    class_name = pod_spec.get("priorityClassName")
    priority = pod_spec.get("priority")
    if not isinstance(priority, int) or isinstance(priority, bool):
        priority = None
        if class_name in SYSTEM_PRIORITY_CLASSES:
            priority = SYSTEM_PRIORITY_CLASSES[str(class_name)]
        elif class_name in priority_classes:
            priority = priority_classes[str(class_name)]
        elif class_name:
            notes.append(
                f"priorityClassName {class_name} is not known offline; as a user-defined class "
                f"its value is at most 1,000,000,000, below the critical {CRITICAL_PRIORITY:,}"
            )
    if CONFIG_MIRROR_ANNOTATION in annotations:
        return priority, "it is a mirror pod (the API's copy of a static pod)", notes
    source = annotations.get(CONFIG_SOURCE_ANNOTATION)
    if source is not None and source != API_SOURCE:
        return priority, f"it is a static pod ({CONFIG_SOURCE_ANNOTATION}={source})", notes
    if static:
        return priority, "it is a static pod (read from the kubelet's manifest directory)", notes
    if priority is not None and priority >= CRITICAL_PRIORITY:
        named = f"priorityClassName {class_name}, " if class_name else ""
        return (
            priority,
            f"its priority is {named}{priority:,} (at least {CRITICAL_PRIORITY:,})",
            notes,
        )
    return priority, None, notes


def pod_facts(
    kind: str,
    name: str,
    namespace: str | None,
    pod: Mapping[str, Any],
    *,
    priority_classes: Mapping[str, int] | None = None,
    static: bool = False,
) -> PodFacts:
    """What the kubelet reads from a pod (or a workload's pod template) to decide its swap.

    ``priority_classes`` maps PriorityClass names to values (those found beside the workload,
    or the cluster's); ``static`` says the manifest is a static pod's. A live pod's
    ``status.qosClass`` wins over the computed class, as in the kubelet.
    """
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    listed: list[tuple[Any, ContainerRole, _Requirements]] = []
    for raw in spec.get("initContainers") or []:
        role = ContainerRole.SIDECAR if raw.get("restartPolicy") == "Always" else ContainerRole.INIT
        listed.append(
            (raw, role, _Requirements.read(raw.get("resources"), f"{role} {raw.get('name')}"))
        )
    for raw in spec.get("containers") or []:
        where = f"container {raw.get('name')}"
        listed.append(
            (raw, ContainerRole.CONTAINER, _Requirements.read(raw.get("resources"), where))
        )
    qos, basis = _pod_qos(spec, [(raw, req) for raw, _, req in listed])
    for raw in spec.get("ephemeralContainers") or []:
        where = f"ephemeral {raw.get('name')}"
        listed.append(
            (raw, ContainerRole.EPHEMERAL, _Requirements.read(raw.get("resources"), where))
        )
    recorded = ((pod.get("status") or {}) if kind == "Pod" else {}).get("qosClass")
    notes: list[str] = []
    if recorded in {q.value for q in QoSClass}:
        if recorded != qos.value:
            notes.append(
                f"status.qosClass says {recorded} (computed here: {qos}); the kubelet goes by "
                "the status"
            )
        qos, basis = QoSClass(recorded), "as status.qosClass records it"
    priority, critical, priority_notes = _critical(metadata, spec, priority_classes or {}, static)
    containers = tuple(
        ContainerFacts(
            name=str(raw.get("name") or ""),
            role=role,
            memory_request=req.memory("requests"),
            memory_limit=req.memory("limits"),
            request_from_limit=req.request_from_limit,
            problems=tuple(req.problems),
        )
        for raw, role, req in listed
    )
    return PodFacts(
        kind=kind,
        name=name,
        namespace=namespace,
        qos=qos,
        qos_basis=basis,
        containers=containers,
        priority=priority,
        critical=critical,
        notes=tuple(notes + priority_notes),
    )


def priority_classes_in(docs: Sequence[Any]) -> dict[str, int]:
    """PriorityClass documents given beside the workloads: name -> value."""
    found: dict[str, int] = {}
    for doc in docs:
        if not isinstance(doc, Mapping):
            continue
        if doc.get("kind") == "List" or str(doc.get("kind", "")).endswith("List"):
            found.update(priority_classes_in(list(doc.get("items") or [])))
        elif doc.get("kind") == "PriorityClass" and isinstance(doc.get("value"), int):
            found[str((doc.get("metadata") or {}).get("name"))] = int(doc["value"])
    return found
