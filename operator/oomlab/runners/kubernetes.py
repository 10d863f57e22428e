"""The operator's cluster as a runner: create OOMExperiments, wait on one watch until the operator
has written each one's end, and read the result from its status.

Every face that runs experiments on a cluster (``oomlab kube``, the report's cluster columns,
``thp-compare``, the e2e tests) goes through :class:`KubernetesRunner`; the documents come from
:meth:`ExperimentSpec.to_document`. The runner never judges: the operator classified the pod and
predicted the outcome, and the runner hands on what it wrote.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException
from urllib3.exceptions import HTTPError

from oomlab.experiment import ExperimentSpec
from oomlab.rules.classify import TERMINAL_PHASES, Phase
from oomlab.rules.nodes import node_facts_from_node, placement_for
from oomlab.rules.results import CgroupVersion, Outcome, Progress, RunResult, RuntimeInfo
from oomlab.rules.runtimeclass import admits, node_view
from oomlab.rules.semantics import SwapBehavior
from oomlab.runners.base import RUN_LABEL

log = logging.getLogger(__name__)

RUNNER = "kubernetes"
GONE = 410
GRACE_S = 120.0
"""How long after the experiments' own timeouts the runner still waits for the operator: the
operator marks an experiment TimedOut at spec.timeoutSeconds, so this only covers a slow or
absent operator."""
WATCH_S = 60
"""The longest one watch request lasts; the runner then watches on from where it was."""

PHASE_OUTCOME = {
    Phase.COMPLETED.value: Outcome.COMPLETED,
    Phase.OOM_KILLED.value: Outcome.OOM_KILLED,
    Phase.FAILED.value: Outcome.FAILED,
    Phase.TIMED_OUT.value: Outcome.TIMED_OUT,
    Phase.INVALID.value: Outcome.REFUSED,
}


class ExperimentApi(Protocol):
    """The Kubernetes calls the runner makes (:mod:`oomlab.kube` is one; tests use a fake)."""

    def create_experiment(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]: ...

    def delete_experiment(self, namespace: str, name: str) -> bool: ...

    def list_experiments(
        self, namespace: str, *, label_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str]: ...

    def watch_experiments(
        self,
        namespace: str,
        resource_version: str,
        *,
        label_selector: str | None = None,
        timeout_s: int = WATCH_S,
    ) -> Generator[tuple[str, dict[str, Any]], None, None]: ...

    def list_nodes(self) -> list[dict[str, Any]] | None: ...

    def read_node(self, name: str) -> dict[str, Any] | None: ...

    def operator_unavailable(self) -> str | None: ...


@dataclass(frozen=True)
class ClusterExperiment:
    """One experiment for the cluster: a checked spec and the name (and labels) to give it."""

    name: str
    spec: ExperimentSpec
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Observed:
    """What the runner saw of one experiment: its last body (status included) and the result."""

    name: str
    body: dict[str, Any]
    result: RunResult
    problem: str = ""
    """Why there is no final status (deleted meanwhile, or no end within the wait); empty when
    the operator wrote one."""

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.body.get("status") or {})

    @property
    def finished(self) -> bool:
        return not self.problem


@dataclass(frozen=True)
class WatchUpdate:
    """One experiment as it just changed, and how many of the batch have finished."""

    body: dict[str, Any]
    finished: int
    total: int

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def phase(self) -> str:
        return phase_of(self.body)


OnUpdate = Callable[[WatchUpdate], None]


def phase_of(body: Mapping[str, Any] | None) -> str:
    return str(((body or {}).get("status") or {}).get("phase") or Phase.PENDING.value)


def swap_cost_known(body: Mapping[str, Any]) -> bool:
    """False while status.swapCost waits for the pod or measures the unconstrained twin."""
    state = ((body.get("status") or {}).get("swapCost") or {}).get("state")
    return state not in ("Waiting", "Measuring")


def is_final(body: Mapping[str, Any], *, with_swap_cost: bool = True) -> bool:
    """The operator has written the end (and, when asked, the swap cost)."""
    return phase_of(body) in TERMINAL_PHASES and (not with_swap_cost or swap_cost_known(body))


def result_from_body(
    body: Mapping[str, Any], problem: str = "", unfinished: Outcome = Outcome.TIMED_OUT
) -> RunResult:
    """The operator's status as a :class:`RunResult`, the shape every runner returns. With a
    ``problem`` (no final status) the outcome is ``unfinished`` and the problem its reason."""
    status = body.get("status") or {}
    k8s = status.get("kubernetes") or {}
    if problem:
        outcome = unfinished
    else:
        try:
            outcome = Outcome(str(k8s.get("outcome")))
        except ValueError:
            outcome = PHASE_OUTCOME.get(phase_of(body), Outcome.FAILED)
    exit_code = k8s.get("exitCode")
    return RunResult(
        runner=RUNNER,
        outcome=outcome,
        reason=problem or k8s.get("explanation") or status.get("message") or "",
        exit_code=exit_code,
        oom_killed=None if exit_code is None else k8s.get("reason") == "OOMKilled",
        progress=Progress(
            allocated_bytes=k8s.get("allocatedBytes"),
            processed_bytes=k8s.get("processedBytes"),
        ),
        peak_usage_bytes=k8s.get("peakBytes"),
        duration_s=k8s.get("durationSeconds"),
        host=_status_host(k8s),
        runtime=k8s.get("runtimeHandler"),
    )


def _status_host(k8s: Mapping[str, Any]) -> RuntimeInfo:
    try:
        cgroup = CgroupVersion(str(k8s.get("cgroupVersion")))
    except ValueError:
        cgroup = CgroupVersion.UNKNOWN
    return RuntimeInfo(
        cgroup_version=cgroup,
        engine="kubelet",
        runtime=k8s.get("runtimeHandler"),
        hostname=k8s.get("nodeName"),
        transparent_hugepages=k8s.get("transparentHugepages"),
        swap_behavior=k8s.get("swapBehavior"),
    )


# -- node facts (pure) ----------------------------------------------------------------------------


def node_runtime_info(node: Mapping[str, Any]) -> RuntimeInfo:
    """A node as a runtime's host: its kernel, cgroup version, memory, swap, swap behaviour
    (an unlabelled node runs the kubelet's default, NoSwap), THP and container runtime."""
    facts = node_facts_from_node(node)
    info = (node.get("status") or {}).get("nodeInfo") or {}
    runtime, _, runtime_version = str(info.get("containerRuntimeVersion") or "").partition("://")
    return RuntimeInfo(
        cgroup_version=facts.cgroup_version or CgroupVersion.UNKNOWN,
        swap_total_bytes=facts.swap_capacity_bytes,
        memory_total_bytes=facts.memory_capacity_bytes,
        kernel=info.get("kernelVersion"),
        engine="kubelet",
        engine_version=info.get("kubeletVersion"),
        runtime=runtime or None,
        runtime_version=runtime_version or None,
        hostname=facts.name or None,
        # cgroup v2 always has memory.swap.max; on v1 only the node's kernel knows about memsw.
        swap_limit_supported=True if facts.cgroup_version == CgroupVersion.V2 else None,
        transparent_hugepages=facts.thp,
        swap_behavior=(facts.swap_behavior or SwapBehavior.NO_SWAP).value,
    )


def is_ready(node: Mapping[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def nodes_for(
    spec: ExperimentSpec | None, nodes: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The Ready nodes an experiment's pod could land on (selector, taints, swap behaviour)."""
    if spec is None:
        selector: Mapping[str, str] = {}
        tolerations: list[Mapping[str, Any]] = []
        behavior = None
    else:
        selector, behavior = spec.node_selector, spec.swap_behavior
        tolerations = [*spec.tolerations, *placement_for(behavior).tolerations]
    return [
        n for n in nodes if is_ready(n) and admits(node_view(n), selector, tolerations, behavior)
    ]


def common_info(infos: Sequence[RuntimeInfo]) -> RuntimeInfo:
    """What every one of ``infos`` agrees on; unknown where they differ (or there are none)."""
    if not infos:
        return RuntimeInfo()
    first, agreed = infos[0], {}
    for spec_field in fields(RuntimeInfo):
        value = getattr(first, spec_field.name)
        if all(getattr(info, spec_field.name) == value for info in infos[1:]):
            agreed[spec_field.name] = value
    merged = RuntimeInfo(**agreed)
    if "cgroup_version" not in agreed:
        merged = replace(merged, cgroup_version=CgroupVersion.UNKNOWN)
    return merged


# -- the runner (I/O) -----------------------------------------------------------------------------


class KubernetesRunner:
    """Runs OOMExperiments through the operator on the cluster ``api`` talks to.

    ``keep``: leave the experiments (and their pods) behind; otherwise they are deleted once
    read, also on Ctrl-C or an error. ``on_update`` hears of every change the watch brings.
    """

    def __init__(
        self,
        namespace: str = "default",
        *,
        keep: bool = False,
        api: ExperimentApi | None = None,
        on_update: OnUpdate | None = None,
        with_swap_cost: bool = True,
        grace_s: float = GRACE_S,
        watch_s: int = WATCH_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if api is None:
            from oomlab import kube

            api = kube
        self.namespace = namespace
        self.keep = keep
        self.api = api
        self.on_update = on_update
        self.with_swap_cost = with_swap_cost
        self.grace_s = grace_s
        self.watch_s = watch_s
        self.clock = clock
        self.sleep = sleep

    # Runner protocol

    def info(self, spec: ExperimentSpec | None = None, *, node: str | None = None) -> RuntimeInfo:
        """The node ``node`` (one an experiment landed on), else what the Ready nodes that
        ``spec`` could land on have in common (all Ready nodes without a spec)."""
        if node is not None:
            found = self.api.read_node(node)
            return RuntimeInfo(hostname=node) if found is None else node_runtime_info(found)
        nodes = self.api.list_nodes() or []
        return common_info([node_runtime_info(n) for n in nodes_for(spec, nodes)])

    def run(self, experiment: ClusterExperiment) -> RunResult:
        return self.run_all([experiment])[0].result

    # more than the protocol

    def unavailable(self) -> str | None:
        """Why experiments would not run on this cluster (no configuration, no answer, no
        operator), or None."""
        try:
            return self.api.operator_unavailable()
        except ConfigException as exc:
            return f"no cluster configuration ({exc}); set KUBECONFIG (make cluster-up prints it)"
        except (HTTPError, OSError) as exc:
            return f"the API server did not answer: {exc}"
        except ApiException as exc:
            from oomlab.kube import error_message

            return f"the API server refused: {error_message(exc)}"

    def run_all(
        self, experiments: Sequence[ClusterExperiment], *, timeout_s: float | None = None
    ) -> list[Observed]:
        """Create every experiment, wait on one watch until the operator has written each one's
        end, and return what was seen, in order. ``timeout_s`` bounds the wait (default: the
        longest spec.timeoutSeconds, twice with measureSwapCost, plus :data:`GRACE_S`).
        A refused create raises ApiException after removing what was created (unless kept)."""
        batch = uuid.uuid4().hex[:12]
        created: dict[str, str | None] = {}
        try:
            for experiment in experiments:
                labels = {**experiment.labels, RUN_LABEL: batch}
                document = experiment.spec.to_document(experiment.name, labels=labels)
                body = self.api.create_experiment(self.namespace, document)
                created[experiment.name] = (body.get("metadata") or {}).get("uid")
            if timeout_s is None:
                timeout_s = self.deadline_s([e.spec for e in experiments])
            return self.wait(created, timeout_s, label_selector=f"{RUN_LABEL}={batch}")
        finally:
            if not self.keep:
                self._delete(created)

    def deadline_s(self, specs: Sequence[ExperimentSpec]) -> float:
        longest = max(
            (s.timeout_s * (2 if s.measure_swap_cost else 1) for s in specs),
            default=0,
        )
        return longest + self.grace_s

    def wait(
        self,
        experiments: Mapping[str, str | None] | Sequence[str],
        timeout_s: float,
        *,
        label_selector: str | None = None,
    ) -> list[Observed]:
        """Watch experiments that exist (name -> uid, or names) until each has a final status,
        is deleted, or ``timeout_s`` passes."""
        uids = (
            dict(experiments)
            if isinstance(experiments, Mapping)
            else dict.fromkeys(experiments, None)
        )
        watcher = _Watcher(self, uids, label_selector)
        watcher.run(self.clock() + timeout_s)
        return [watcher.observed(name, timeout_s) for name in uids]

    def _delete(self, names: Mapping[str, str | None]) -> None:
        for name in names:
            try:
                self.api.delete_experiment(self.namespace, name)
            except (ApiException, HTTPError, OSError) as exc:
                log.warning("could not delete OOMExperiment %s/%s: %s", self.namespace, name, exc)


def _version(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("resourceVersion") or "")


def _older(candidate: str, current: str) -> bool:
    """Is ``candidate`` an older resourceVersion than ``current``? They are opaque strings to
    clients; etcd-backed servers write integers, the only case compared."""
    if candidate.isdigit() and current.isdigit():
        return int(candidate) < int(current)
    return False


class _Watcher:
    """One wait: the latest body of each experiment, kept current by one watch at a time."""

    def __init__(
        self, runner: KubernetesRunner, uids: dict[str, str | None], selector: str | None
    ) -> None:
        self.runner = runner
        self.uids = uids
        self.selector = selector
        self.bodies: dict[str, dict[str, Any]] = {}
        self.final: set[str] = set()
        self.gone: set[str] = set()

    def settled(self) -> bool:
        return len(self.final | self.gone) == len(self.uids)

    def run(self, deadline: float) -> None:
        api, runner = self.runner.api, self.runner
        version: str | None = None
        while not self.settled():
            left = deadline - runner.clock()
            if left <= 0:
                return
            if version is None:
                items, version = api.list_experiments(
                    runner.namespace, label_selector=self.selector
                )
                self._relisted(items)
                continue
            began = runner.clock()
            try:
                events = api.watch_experiments(
                    runner.namespace,
                    version,
                    label_selector=self.selector,
                    timeout_s=max(1, min(runner.watch_s, int(left))),
                )
                with contextlib.closing(events):
                    for kind, body in events:
                        if not _older(_version(body), version):
                            version = _version(body) or version
                        if kind != "BOOKMARK":
                            self._seen(kind, body)
                        if self.settled() or runner.clock() >= deadline:
                            return
            except ApiException as exc:
                if exc.status != GONE:
                    raise
                log.info("watch of %s expired (410 Gone): listing again", runner.namespace)
                version = None
            except (HTTPError, OSError) as exc:
                log.info("watch of %s dropped (%s): listing again", runner.namespace, exc)
                version = None
            if runner.clock() - began < 1.0:
                runner.sleep(1.0)  # a server that ends watches at once is not asked in a loop

    def _relisted(self, items: Sequence[dict[str, Any]]) -> None:
        """A list is the whole truth at its version: what is not in it is gone."""
        listed = {str(item["metadata"]["name"]): item for item in items}
        for name in self.uids:
            if name in self.final | self.gone:
                continue
            if name in listed and self._ours(name, listed[name]):
                self._seen("MODIFIED", listed[name])
            else:
                self.gone.add(name)

    def _ours(self, name: str, body: Mapping[str, Any]) -> bool:
        uid = self.uids.get(name)
        return uid is None or body["metadata"].get("uid") == uid

    def _seen(self, kind: str, body: dict[str, Any]) -> None:
        name = str(body["metadata"]["name"])
        if name not in self.uids or name in self.gone or not self._ours(name, body):
            return
        known = self.bodies.get(name)
        if kind != "DELETED" and known is not None and _older(_version(body), _version(known)):
            return  # an event that arrived after a newer one
        if kind == "DELETED":
            if name not in self.final:
                self.gone.add(name)
            return
        self.bodies[name] = body
        if self.uids[name] is None:
            self.uids[name] = body["metadata"].get("uid")
        if is_final(body, with_swap_cost=self.runner.with_swap_cost):
            self.final.add(name)
        if self.runner.on_update is not None:
            update = WatchUpdate(body, finished=len(self.final), total=len(self.uids))
            self.runner.on_update(update)

    def observed(self, name: str, waited_s: float) -> Observed:
        body = self.bodies.get(name) or {"metadata": {"name": name}}
        if name in self.final:
            return Observed(name, body, result_from_body(body))
        if name in self.gone:
            problem = f"the experiment was deleted before it finished (phase {phase_of(body)})"
            return Observed(name, body, result_from_body(body, problem, Outcome.FAILED), problem)
        problem = f"no final status within {waited_s:.0f} s (phase {phase_of(body)})"
        return Observed(name, body, result_from_body(body, problem, Outcome.TIMED_OUT), problem)
