"""An OOMExperiment's spec, checked, and the one Pod that runs it."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from oomlab.rules.docker import DockerFlags
from oomlab.rules.nodes import SWAP_BEHAVIOR_LABEL, placement_for
from oomlab.rules.pressure_spec import (
    NODE_PRESSURE_ALLOWED,
    NODE_PRESSURE_LABEL,
    NodePressureSpec,
)
from oomlab.rules.semantics import QoSClass, SwapBehavior, qos_class
from oomlab.rules.spec_errors import InvalidSpec as InvalidSpec  # the spec check raises it
from oomlab.rules.units import (
    SizeError,
    human,
    parse_k8s_quantity,
)
from oomlab.rules.workload import DEFAULT_IMAGE, WorkloadSpec

GROUP = "oomlab.dev"
VERSION = "v1alpha1"
PLURAL = "oomexperiments"
KIND = "OOMExperiment"

LABEL_NAME = "app.kubernetes.io/name"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_EXPERIMENT_UID = "oomlab.dev/experiment-uid"
ANNOTATION_EXPERIMENT = "oomlab.dev/experiment"
POD_APP = "oomlab-experiment"
CONTAINER = "workload"

CPU_MILLIS = 250
"""Every experiment pod asks for and is limited to this much CPU, so QoS follows memory alone:
request == limit is Guaranteed, request < limit is Burstable."""

NON_ROOT_UID = 65532
DEFAULT_TIMEOUT_S = 300
MAX_TIMEOUT_S = 86400
"""The CRD's bounds on spec.timeoutSeconds."""


@dataclass(frozen=True)
class ResizeSpec:
    """spec.resize: change the running pod's memory request in place (the pod ``resize``
    subresource) ``after_s`` seconds after its container started, to see whether the swap limit
    follows (kubernetes#130111)."""

    memory_request_bytes: int
    memory_request_text: str
    after_s: int = 5


@dataclass(frozen=True)
class ExperimentSpec:
    workload: WorkloadSpec
    limit_bytes: int | None
    """None only for a node-scale experiment (spec.nodePressure) without a container limit."""
    request_bytes: int | None
    limit_text: str | None
    request_text: str | None
    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    timeout_s: int = DEFAULT_TIMEOUT_S
    ttl_after_finished_s: int | None = None
    runtime_class: str | None = None
    priority_class: str | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    docker: DockerFlags | None = None
    swap_behavior: SwapBehavior | None = None
    """The kind of node asked for (spec.swapBehavior); None: any node the pod tolerates."""
    measure_swap_cost: bool = False
    """spec.measureSwapCost: also run the unconstrained twin and write status.swapCost."""
    resize: ResizeSpec | None = None
    """spec.resize: resize the running pod's memory request once."""
    node_pressure: NodePressureSpec | None = None
    """spec.nodePressure: fill the node (only one labelled to allow it), maybe with bystanders."""

    @property
    def qos(self) -> QoSClass:
        return qos_class(self.request_bytes, self.limit_bytes, CPU_MILLIS, CPU_MILLIS)

    @classmethod
    def build(
        cls,
        workload: WorkloadSpec,
        *,
        limit: str | int | None,
        request: str | int | None = None,
        image: str = DEFAULT_IMAGE,
        image_pull_policy: str = "IfNotPresent",
        timeout_s: int = DEFAULT_TIMEOUT_S,
        ttl_after_finished_s: int | None = None,
        runtime_class: str | None = None,
        priority_class: str | None = None,
        node_selector: Mapping[str, str] | None = None,
        tolerations: Sequence[Mapping[str, Any]] = (),
        docker: DockerFlags | None = None,
        swap_behavior: SwapBehavior | None = None,
        measure_swap_cost: bool = False,
        resize: Mapping[str, Any] | None = None,
        node_pressure: NodePressureSpec | None = None,
    ) -> ExperimentSpec:
        """An experiment from values at hand, checked as :meth:`from_spec` checks a document:
        a Kubernetes ``500m`` (half a byte) or a request above the limit never reaches a cluster.
        """
        _check_node_pressure(node_pressure, measure_swap_cost)
        limit_bytes, request_bytes = _memory(limit, request, required=node_pressure is None)
        if docker is not None:
            _check_docker(docker)
        if not 1 <= timeout_s <= MAX_TIMEOUT_S:
            raise InvalidSpec(
                "spec.timeoutSeconds",
                f"timeoutSeconds must be between 1 and {MAX_TIMEOUT_S}, not {timeout_s}",
            )
        selected = (node_selector or {}).get(SWAP_BEHAVIOR_LABEL)
        if swap_behavior is not None and selected not in (None, swap_behavior.value):
            raise _contradiction(selected, swap_behavior)
        return cls(
            workload=workload,
            limit_bytes=limit_bytes,
            request_bytes=request_bytes,
            limit_text=None if limit is None else str(limit),
            request_text=None if request is None else str(request),
            image=image,
            image_pull_policy=image_pull_policy,
            timeout_s=timeout_s,
            ttl_after_finished_s=ttl_after_finished_s,
            runtime_class=runtime_class,
            priority_class=priority_class,
            node_selector=dict(node_selector or {}),
            tolerations=[dict(t) for t in tolerations],
            docker=docker,
            swap_behavior=swap_behavior,
            measure_swap_cost=measure_swap_cost,
            resize=_resize(resize, limit_bytes, request_bytes),
            node_pressure=node_pressure,
        )

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], *, max_bytes: int | None = None) -> ExperimentSpec:
        """Parse and check ``spec``; raise :class:`InvalidSpec` naming the field to fix.

        The CRD's schema and CEL rules catch most of this at the API server; this is the second
        line for clusters that predate CEL quantity functions and for the operator-wide cap.
        """
        raw_workload = spec.get("workload") or {}
        try:
            workload = WorkloadSpec.from_mapping(raw_workload)
        except (SizeError, ValueError, TypeError) as exc:
            raise InvalidSpec("spec.workload", str(exc)) from None
        limits = (spec.get("resources") or {}).get("limits") or {}
        requests = (spec.get("resources") or {}).get("requests") or {}
        node_pressure = _node_pressure(spec)
        limit, request = _memory(
            limits.get("memory"), requests.get("memory"), required=node_pressure is None
        )
        if max_bytes is not None:
            for what, value in (("workload.size", workload.size_bytes), ("limit", limit)):
                if value is not None and value > max_bytes:
                    raise InvalidSpec(
                        "spec.workload.size"
                        if what == "workload.size"
                        else "spec.resources.limits.memory",
                        f"{what} {human(value)} is over this operator's cap of "
                        f"{human(max_bytes)} (OOMLAB_MAX_EXPERIMENT_BYTES); use a smaller size "
                        "or ask the cluster admin to raise the cap",
                    )
        swap_behavior = _swap_behavior(spec)
        docker = None
        if spec.get("docker"):
            raw = spec["docker"]
            docker = DockerFlags(
                memory=raw.get("memory"),
                memory_swap=raw.get("memorySwap"),
                runtime=raw.get("runtime") or "runc",
            )
            _check_docker(docker)
        return cls(
            workload=workload,
            limit_bytes=limit,
            request_bytes=request,
            limit_text=None if limit is None else str(limits["memory"]),
            request_text=None if request is None else str(requests["memory"]),
            image=raw_workload.get("image") or DEFAULT_IMAGE,
            image_pull_policy=raw_workload.get("imagePullPolicy") or "IfNotPresent",
            timeout_s=int(spec.get("timeoutSeconds") or DEFAULT_TIMEOUT_S),
            ttl_after_finished_s=spec.get("ttlSecondsAfterFinished"),
            runtime_class=spec.get("runtimeClassName"),
            priority_class=spec.get("priorityClassName"),
            node_selector=dict(spec.get("nodeSelector") or {}),
            tolerations=list(spec.get("tolerations") or []),
            docker=docker,
            swap_behavior=swap_behavior,
            measure_swap_cost=_check_node_pressure(node_pressure, _measure_swap_cost(spec)),
            resize=_resize(spec.get("resize"), limit, request),
            node_pressure=node_pressure,
        )

    def to_document(
        self,
        name: str,
        *,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The OOMExperiment that asks for this experiment: the one place such a document is
        written (``from_spec(doc["spec"])`` gives this spec back)."""
        metadata: dict[str, Any] = {"name": name}
        if namespace is not None:
            metadata["namespace"] = namespace
        if labels:
            metadata["labels"] = dict(labels)
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": metadata,
            "spec": self._document_spec(),
        }

    def _document_spec(self) -> dict[str, Any]:
        resources: dict[str, Any] = {}
        if self.limit_text is not None:
            resources["limits"] = {"memory": self.limit_text}
        if self.request_text is not None:
            resources["requests"] = {"memory": self.request_text}
        spec: dict[str, Any] = {
            "workload": {
                **self.workload.to_mapping(),
                "image": self.image,
                "imagePullPolicy": self.image_pull_policy,
            },
            "resources": resources,
            "timeoutSeconds": self.timeout_s,
        }
        optional: dict[str, Any] = {
            "ttlSecondsAfterFinished": self.ttl_after_finished_s,
            "runtimeClassName": self.runtime_class,
            "priorityClassName": self.priority_class,
            "nodeSelector": dict(self.node_selector) or None,
            "tolerations": [dict(t) for t in self.tolerations] or None,
            "swapBehavior": None if self.swap_behavior is None else self.swap_behavior.value,
            "measureSwapCost": self.measure_swap_cost or None,
            "resize": None
            if self.resize is None
            else {
                "memoryRequest": self.resize.memory_request_text,
                "afterSeconds": self.resize.after_s,
            },
            "nodePressure": None if self.node_pressure is None else self.node_pressure.to_mapping(),
        }
        spec.update({key: value for key, value in optional.items() if value is not None})
        if self.docker is not None:
            docker: dict[str, Any] = {"runtime": self.docker.runtime}
            if self.docker.memory is not None:
                docker["memory"] = self.docker.memory
            if self.docker.memory_swap is not None:
                docker["memorySwap"] = self.docker.memory_swap
            spec["docker"] = docker
        return spec


def _memory(limit: Any, request: Any, *, required: bool = True) -> tuple[int | None, int | None]:
    """The limit and request in bytes, as Kubernetes reads them; :class:`InvalidSpec` for a
    missing limit (unless not ``required``: a node-scale experiment), a quantity that is not a
    whole number of bytes, or a request above the limit.
    """
    if limit is None and not required:
        request_only = (
            None if request is None else _quantity(request, "spec.resources.requests.memory")
        )
        return None, request_only
    if limit is None:
        raise InvalidSpec(
            "spec.resources.limits.memory",
            "resources.limits.memory is required: an experiment without a memory limit "
            "could take the whole node down",
        )
    limit_bytes = _quantity(limit, "spec.resources.limits.memory")
    if request is None:
        return limit_bytes, None
    request_bytes = _quantity(request, "spec.resources.requests.memory")
    if request_bytes > limit_bytes:
        raise InvalidSpec(
            "spec.resources.requests.memory",
            f"resources.requests.memory ({request}) is larger than resources.limits.memory "
            f"({limit}); a request cannot exceed the limit",
        )
    return limit_bytes, request_bytes


def _resize(raw: Any, limit: int | None, request: int | None) -> ResizeSpec | None:
    """spec.resize, checked: only a Burstable pod with a memory request below its limit gets
    swap, and the new request must keep it so (a resize may not change the QoS class)."""
    if raw is None:
        return None
    where = "spec.resize.memoryRequest"
    if not isinstance(raw, Mapping) or raw.get("memoryRequest") is None:
        raise InvalidSpec(where, "resize needs memoryRequest: the request to resize to")
    new = _quantity(raw["memoryRequest"], where)
    if limit is None or request is None or request >= limit:
        raise InvalidSpec(
            where,
            "resize needs resources.requests.memory below resources.limits.memory: only such a "
            "Burstable container gets swap, which is what the resize is about",
        )
    if not 0 < new < limit or new == request:
        raise InvalidSpec(
            where,
            f"resize.memoryRequest ({raw['memoryRequest']}) must differ from the request and "
            "stay above zero and below the limit (a resize cannot change the pod's QoS class)",
        )
    after = raw.get("afterSeconds", 5)
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_TIMEOUT_S:
        raise InvalidSpec("spec.resize.afterSeconds", f"afterSeconds must be 0..{MAX_TIMEOUT_S}")
    return ResizeSpec(new, str(raw["memoryRequest"]), after)


def _node_pressure(spec: Mapping[str, Any]) -> NodePressureSpec | None:
    raw = spec.get("nodePressure")
    if raw is None:
        return None
    return NodePressureSpec.from_mapping(raw)


def _check_node_pressure(node_pressure: NodePressureSpec | None, measure_swap_cost: bool) -> bool:
    if node_pressure is not None and measure_swap_cost:
        raise InvalidSpec(
            "spec.measureSwapCost",
            "measureSwapCost cannot go with nodePressure: the twin would fill the node a second "
            "time; remove one of them",
        )
    return measure_swap_cost


def _check_docker(flags: DockerFlags) -> None:
    try:
        _ = flags.memory_bytes, flags.memory_swap_bytes
    except SizeError as exc:
        raise InvalidSpec("spec.docker", str(exc)) from None


def _measure_swap_cost(spec: Mapping[str, Any]) -> bool:
    raw = spec.get("measureSwapCost")
    if raw is None:
        return False
    if not isinstance(raw, bool):
        raise InvalidSpec(
            "spec.measureSwapCost", f"measureSwapCost must be true or false, not {raw!r}"
        )
    return raw


def _swap_behavior(spec: Mapping[str, Any]) -> SwapBehavior | None:
    raw = spec.get("swapBehavior")
    if raw is None:
        return None
    try:
        behavior = SwapBehavior(raw)
    except ValueError:
        allowed = " or ".join(b.value for b in SwapBehavior)
        raise InvalidSpec(
            "spec.swapBehavior",
            f"swapBehavior {raw!r} is not a kubelet swapBehavior: use {allowed}",
        ) from None
    selected = (spec.get("nodeSelector") or {}).get(SWAP_BEHAVIOR_LABEL)
    if selected is not None and selected != behavior.value:
        raise _contradiction(selected, behavior)
    return behavior


def _contradiction(selected: str, behavior: SwapBehavior) -> InvalidSpec:
    return InvalidSpec(
        "spec.nodeSelector",
        f"nodeSelector {SWAP_BEHAVIOR_LABEL}={selected} contradicts swapBehavior "
        f"{behavior.value}: remove the selector (swapBehavior picks the node)",
    )


def _quantity(value: Any, field_path: str) -> int:
    try:
        return parse_k8s_quantity(value, field=field_path.removeprefix("spec."))
    except SizeError as exc:
        raise InvalidSpec(field_path, str(exc)) from None


_DNS_UNSAFE = re.compile(r"[^a-z0-9-]+")


def pod_name(experiment_name: str, uid: str, prefix: str = "oomx") -> str:
    """A stable pod name: the same experiment always maps to the same pod (no duplicates on
    resume), short enough to be a hostname, and unique per experiment incarnation."""
    suffix = hashlib.sha256(uid.encode()).hexdigest()[:6]
    room = 63 - len(prefix) - 2 - len(suffix)
    stem = _DNS_UNSAFE.sub("-", experiment_name.lower()).strip("-")[:room]
    return f"{prefix}-{stem.rstrip('-')}-{suffix}"


def memhog_container(
    spec: ExperimentSpec, args: list[str], resources: dict[str, Any]
) -> dict[str, Any]:
    """memhog's container in an oomlab pod: unbuffered output, no privileges, read-only root."""
    return {
        "name": CONTAINER,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "args": args,
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
        "resources": resources,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def least_privilege_pod_spec(timeout_s: int, container: dict[str, Any]) -> dict[str, Any]:
    """The spec every memhog pod of an experiment shares: no restarts, no API token, non-root,
    ended by the kubelet after ``timeout_s``."""
    return {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "activeDeadlineSeconds": timeout_s,
        "terminationGracePeriodSeconds": 5,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NON_ROOT_UID,
            "runAsGroup": NON_ROOT_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
    }


def build_pod(name: str, namespace: str, uid: str, spec: ExperimentSpec) -> dict[str, Any]:
    """The experiment's Pod: least privilege, no restarts, no API token, no network needs."""
    limits: dict[str, str] = {"cpu": f"{CPU_MILLIS}m"}
    requests: dict[str, str] = {"cpu": f"{CPU_MILLIS}m"}
    if spec.limit_text is not None:
        limits["memory"] = spec.limit_text
    if spec.request_text or spec.limit_text:
        requests["memory"] = str(spec.request_text or spec.limit_text)
    resources: dict[str, Any] = {"limits": limits, "requests": requests}
    container = memhog_container(spec, spec.workload.args(), resources)
    # On a kill the last log lines (memhog's progress) land in the pod status.
    container["terminationMessagePolicy"] = "FallbackToLogsOnError"
    pod_spec = least_privilege_pod_spec(spec.timeout_s, container)
    if spec.runtime_class:
        pod_spec["runtimeClassName"] = spec.runtime_class
    if spec.priority_class:
        pod_spec["priorityClassName"] = spec.priority_class
    placement = placement_for(spec.swap_behavior)
    pod_spec.update(placement.pod_fields(spec.node_selector, spec.tolerations))
    node_selector = {**spec.node_selector, **placement.node_selector}
    if spec.node_pressure is not None:
        node_selector[NODE_PRESSURE_LABEL] = NODE_PRESSURE_ALLOWED
    tolerations = spec.tolerations + [t for t in placement.tolerations if t not in spec.tolerations]
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    if placement.affinity:
        pod_spec["affinity"] = placement.affinity
    if tolerations:
        pod_spec["tolerations"] = tolerations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(name, uid),
            "namespace": namespace,
            "labels": {
                LABEL_NAME: POD_APP,
                LABEL_MANAGED_BY: "oomlab-operator",
                LABEL_EXPERIMENT_UID: uid,
            },
            "annotations": {ANNOTATION_EXPERIMENT: name},
        },
        "spec": pod_spec,
    }
