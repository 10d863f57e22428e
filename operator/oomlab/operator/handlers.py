"""The OOMExperiment operator: kopf handlers that call the pure modules and write the status.

Run with ``kopf run --standalone --all-namespaces --liveness=http://0.0.0.0:8080/healthz -m
oomlab.operator.handlers``.

* create/resume: check the spec (a user error -> Invalid, never an exception), create the one pod
  (deterministic name; an existing one is adopted, so a restart never duplicates it), write the
  Docker prediction and Pending.
* pod events: classify the pod, read the workload's progress, write the Kubernetes facts, the
  prediction for its node and parity. Events are posted on the experiment for each phase change.
* a Docker run handed over by ``oomlab parity`` (the ``docker.oomlab.dev/observation``
  annotation): folded into status.docker and parity under this operator's configuration; one
  made while the operator was down is folded in when it starts (kopf sees the changed field).
* deadlines: an in-process alarm per experiment and deadline (:mod:`.alarms`, no kopf timer, so
  no finalizer and deletion never hangs) times the experiment out, gives up on the swap-cost twin
  and removes finished pods after ttlSecondsAfterFinished (:mod:`.deadline_actions`).

The operator's own state (configuration, alarms, the node index) lives in kopf's ``memo``; the
probe counts experiments by phase from a kopf index.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import kopf

from oomlab import kube
from oomlab.experiment import (
    GROUP,
    LABEL_NAME,
    PLURAL,
    POD_APP,
    VERSION,
    ExperimentSpec,
    InvalidSpec,
    pod_name,
)
from oomlab.handover import OBSERVATION_ANNOTATION
from oomlab.operator import sweep_handlers  # noqa: F401  (registers OOMSweeps and /metrics)
from oomlab.operator.alarms import cancel_experiment_alarms
from oomlab.operator.api import arm_alarms, delete_pod, write_status
from oomlab.operator.config import ConfigError, OperatorConfig
from oomlab.operator.deadline_actions import deadline_passed
from oomlab.operator.experiment_pod import (
    PodRefused,
    create_or_adopt_pod,
    pod_vanished,
    runtime_class,
)
from oomlab.operator.kubernetes_view import (
    Observation,
    PodFacts,
    observation_from_verdict,
    owner_experiment,
)
from oomlab.operator.logs import workload_progress
from oomlab.operator.memory import give_back_periodically
from oomlab.operator.node_pressure import admit as admit_node_pressure
from oomlab.operator.phases import is_terminal, phase_of, status_of
from oomlab.operator.pressure_view import is_bystander
from oomlab.operator.resize_action import arm_resize
from oomlab.operator.state import (
    MEMO_KEY,
    NodeIndex,
    NodeRecord,
    OperatorState,
    node_facts,
    node_record,
    state_of,
)
from oomlab.operator.status import assemble, invalid_spec_message, rejected_status
from oomlab.operator.swapcost_view import swap_cost_of
from oomlab.operator.twin import is_twin, twin_pod_name
from oomlab.operator.twin_lifecycle import ensure_twin, twin_event
from oomlab.rules.classify import Phase, PodVerdict, classify_pod
from oomlab.rules.results import Outcome

POD_DELETED = "The pod was deleted before the workload finished."


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# startup, probe, cleanup, the node index


API_THREADS = 32
"""Every Kubernetes call runs in a thread (asyncio.to_thread): the loop's default pool is
min(32, cores + 4), 6 threads on a 2-core node, which queues a burst of experiments behind a few
slow calls. The calls wait on the network, not the CPU, so more threads cost little."""


@kopf.on.startup()
async def widen_api_thread_pool(**_: Any) -> None:
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="oomlab-api")
    )


TRIMMER_KEY = "oomlab-memory-trimmer"


@kopf.on.startup()
async def give_back_memory(*, memo: kopf.Memo, **_: Any) -> None:
    """Freed memory back to the system every half minute (:mod:`.memory`): without it the RSS
    stays at the peak of the largest burst of experiments ever seen."""
    memo[TRIMMER_KEY] = asyncio.get_running_loop().create_task(give_back_periodically())


@kopf.on.cleanup()
async def stop_giving_back_memory(*, memo: kopf.Memo, **_: Any) -> None:
    trimmer = memo.get(TRIMMER_KEY)
    if isinstance(trimmer, asyncio.Task):
        trimmer.cancel()


@kopf.on.startup()
def configure(
    *,
    settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    logger: kopf.Logger,
    nodes_by_name: NodeIndex | None = None,
    **_: Any,
) -> None:
    """Settings and configuration; a bad configuration stops the operator at once. kopf hands
    startup handlers its indices already (empty until its first listing): the state keeps the
    node index, which kopf then keeps current."""
    try:
        config = OperatorConfig.from_env()
    except ConfigError as exc:
        raise kopf.PermanentError(str(exc)) from None
    memo[MEMO_KEY] = OperatorState(
        config=config,
        nodes=nodes_by_name if nodes_by_name is not None else {},
        on_deadline=deadline_passed,
    )
    try:
        kube.load_client_config()
    except Exception as exc:
        raise kopf.PermanentError(f"cannot configure the Kubernetes client: {exc}") from None
    settings.peering.standalone = True
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = "oomlab-operator"
    settings.posting.event_name_prefix = "oomlab-"
    # kopf's bookkeeping in annotations of our own group; status stays exactly the documented one.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="oomlab.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="oomlab.dev", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "oomlab.dev/kopf-finalizer"
    # Watch streams end on the server's side before the client gives up, so reconnects are clean.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    # Only the experiments' pods are watched, filtered by the API server.
    settings.watching.label_selectors["v1", "pods"] = f"{LABEL_NAME}={POD_APP}"
    logger.info("oomlab operator configured: %s", config.describe())


@kopf.on.cleanup()
def stop_alarms(*, memo: kopf.Memo, **_: Any) -> None:
    state_of(memo).alarms.cancel_all()


# The indexing functions and the probe are coroutines: kopf runs plain functions in its thread
# pool, where each experiment event queues behind a burst's others. On kind a burst once restarted
# the operator through its liveness probe; that queue is the likely cause, not a proven one.


@kopf.index("", "v1", "nodes")
async def nodes_by_name(*, name: str, body: kopf.Body, **_: Any) -> dict[str, NodeRecord]:
    """Every node's facts, labels and taints, current with each Node event: a label switched on
    purpose (``oomlab thp-compare`` sets ``oomlab.dev/thp``) is used at once. kopf runs no other
    handler before its first listing of nodes is indexed."""
    return {name: node_record(body)}


@kopf.index(GROUP, VERSION, PLURAL)
async def experiments_by_phase(*, status: Mapping[str, Any], uid: str, **_: Any) -> dict[str, str]:
    """Every experiment under its phase (Pending until the status says otherwise)."""
    return {str(status.get("phase") or Phase.PENDING.value): uid}


@kopf.on.probe(id="experiments")
async def experiments_seen(
    *,
    memo: kopf.Memo,
    experiments_by_phase: Mapping[str, Collection[str]] | None = None,
    **_: Any,
) -> dict[str, Any]:
    """kopf passes its index by the indexing function's name."""
    index = experiments_by_phase or {}
    by_phase = {phase: len(uids) for phase, uids in index.items() if uids}
    alarms = len(state_of(memo).alarms.pending())
    return {"seen": sum(by_phase.values()), "byPhase": by_phase, "alarms": alarms}


# --------------------------------------------------------------------------------------------
# experiments: create / resume, the Docker hand-over, deletion


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
async def start_experiment(
    *, body: kopf.Body, namespace: str | None, name: str, uid: str, memo: kopf.Memo, **_: Any
) -> None:
    """Exactly one pod per experiment; Invalid with a sentence for a spec that cannot run."""
    assert namespace is not None  # OOMExperiment is namespaced
    state = state_of(memo)
    current = dict(body)
    if is_terminal(current):
        arm_alarms(state, current, timed_out_now=phase_of(status_of(current)) == Phase.TIMED_OUT)
        await ensure_twin(state, current, after_restart=True)
        return
    try:
        spec = ExperimentSpec.from_spec(
            current.get("spec") or {}, max_bytes=state.config.max_experiment_bytes
        )
    except InvalidSpec as exc:
        await _invalid(state, current, "InvalidSpec", invalid_spec_message(exc.field, str(exc)))
        return
    admitted = await admit_node_pressure(state, spec)  # node-scale: only on an allowed node
    if isinstance(admitted, str):
        await _invalid(state, current, "NodePressureNotAllowed", admitted)
        return
    spec = admitted
    if await pod_vanished(current, namespace, name, uid):
        gone = PodVerdict(Phase.FAILED, Outcome.FAILED, "PodDeleted", POD_DELETED)
        observation = observation_from_verdict(gone, {}, None)
        await write_status(
            state,
            current,
            lambda cur: assemble(cur, spec, state.config, _now(), observation=observation),
        )
        return
    runtime = await runtime_class(state, current, spec)
    if runtime.reason:
        message = invalid_spec_message("spec.runtimeClassName", runtime.message)
        await _invalid(state, current, runtime.reason, message)
        return
    made = await create_or_adopt_pod(current, spec, namespace, name, uid)
    if isinstance(made, PodRefused):
        await write_status(
            state,
            current,
            lambda cur: rejected_status(
                cur,
                phase=made.phase,
                reason=made.reason,
                message=made.message,
                now=_now(),
                spec_valid=True,
                spec=spec,
                config=state.config,
            ),
        )
        return
    pod = pod_name(name, uid)
    observation = Observation(
        phase=Phase.PENDING,
        reason="PodCreated",
        message=f"Pod {pod} was created; waiting for it to start.",
        pod=PodFacts(name=pod),
    )
    ran_by = (spec.runtime_class, runtime.handler) if runtime.handler else None
    await write_status(
        state,
        current,
        lambda cur: assemble(
            cur,
            spec,
            state.config,
            _now(),
            observation=observation,
            pod_created=(made.reason, made.message),
            runtime=ran_by,
        ),
    )


async def _invalid(state: OperatorState, body: dict[str, Any], reason: str, message: str) -> None:
    """Invalid with a sentence saying what to change; no pod."""
    await write_status(
        state,
        body,
        lambda cur: rejected_status(
            cur, phase=Phase.INVALID, reason=reason, message=message, now=_now(), spec_valid=False
        ),
    )


@kopf.on.field(
    GROUP,
    VERSION,
    PLURAL,
    field=("metadata", "annotations", OBSERVATION_ANNOTATION),
    id="docker-observation",
)
async def fold_docker_observation(*, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A Docker run handed over by ``oomlab parity``: into status.docker and parity, under this
    operator's configuration. kopf calls this for a change made while the operator was down too
    (it compares the annotation with the last state it handled)."""
    state = state_of(memo)
    current = dict(body)
    try:
        spec = ExperimentSpec.from_spec(current.get("spec") or {})
    except InvalidSpec:
        return  # Invalid already says what to change; there is nothing to compare with
    node = await node_facts(state, (status_of(current).get("kubernetes") or {}).get("nodeName"))
    await write_status(
        state,
        current,
        lambda cur: assemble(cur, spec, state.config, _now(), node=node),
    )


@kopf.on.event(GROUP, VERSION, PLURAL)
async def experiment_event(
    *,
    type: str,
    body: kopf.Body,
    namespace: str | None,
    name: str,
    uid: str,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """On deletion drops the alarms and removes the pod (and the twin, if one was made) at once
    (garbage collection through ownerReferences would too, a little later)."""
    if type != "DELETED":
        return
    cancel_experiment_alarms(state_of(memo).alarms, uid)
    if namespace:
        await delete_pod(namespace, pod_name(name, uid))
        if swap_cost_of(status_of(body)).get("twinPodName"):
            await delete_pod(namespace, twin_pod_name(name, uid))


# --------------------------------------------------------------------------------------------
# pods -> status


@kopf.on.event("", "v1", "pods", labels={LABEL_NAME: POD_APP})
async def pod_event(
    *, type: str, body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """Classify the experiment's pod and write what it says to the experiment."""
    state = state_of(memo)
    pod = dict(body)
    owner = owner_experiment(pod)
    if owner is None or namespace is None or is_bystander(pod):
        return
    parent = await asyncio.to_thread(kube.find_experiment, namespace, owner.name)
    if parent is None or parent["metadata"].get("uid") != owner.uid:
        return
    if parent["metadata"].get("deletionTimestamp"):
        return
    if is_twin(pod):
        await twin_event(state, parent, pod, deleted=type == "DELETED")
        return
    if is_terminal(parent):
        await ensure_twin(state, parent)
        return
    try:
        spec = ExperimentSpec.from_spec(parent.get("spec") or {})
    except InvalidSpec:
        return
    if spec.resize is not None and type != "DELETED":
        arm_resize(state, parent, spec, pod)
    progress = await workload_progress(namespace, pod)
    verdict = classify_pod(
        pod,
        limit_bytes=spec.limit_bytes,
        allocated_bytes=progress.allocated_bytes if progress else None,
    )
    if type == "DELETED" and not verdict.phase.terminal:
        verdict = PodVerdict(Phase.FAILED, Outcome.FAILED, "PodDeleted", POD_DELETED)
    node = await node_facts(state, (pod.get("spec") or {}).get("nodeName"))
    observation = observation_from_verdict(verdict, pod, progress)
    change = await write_status(
        state,
        parent,
        lambda cur: assemble(cur, spec, state.config, _now(), observation=observation, node=node),
    )
    if change is not None:
        await ensure_twin(state, change.body)
