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
* deadlines: an in-process alarm per experiment (no kopf timer, so no finalizer and deletion never
  hangs) times the experiment out and removes finished pods after ttlSecondsAfterFinished.
  Alarms are rebuilt from the status on every restart (resume), so none is lost.

The operator's own state (configuration, alarms, node facts) lives in kopf's ``memo``; the probe
counts experiments by phase from a kopf index.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import kopf
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from oomlab import kube
from oomlab.experiment import (
    GROUP,
    LABEL_NAME,
    PLURAL,
    POD_APP,
    VERSION,
    ExperimentSpec,
    InvalidSpec,
    build_pod,
    pod_name,
)
from oomlab.handover import OBSERVATION_ANNOTATION
from oomlab.operator.conditions import CONDITION_POD_CREATED, condition_of
from oomlab.operator.config import ConfigError, OperatorConfig
from oomlab.operator.kubernetes_view import (
    Observation,
    PodFacts,
    observation_from_verdict,
    owner_experiment,
    timed_out_observation,
)
from oomlab.operator.phases import (
    cleanup_deadline,
    is_terminal,
    phase_of,
    phase_transition,
    status_of,
    timeout_deadline,
)
from oomlab.operator.status import assemble, invalid_spec_message, rejected_status
from oomlab.operator.swapcost_view import (
    STATE_DONE,
    STATE_MEASURING,
    after_twin,
    swap_cost_of,
    twin_lost,
    twin_started,
)
from oomlab.operator.twin import build_twin_pod, is_twin, twin_memory_limit, twin_pod_name
from oomlab.rules.classify import Phase, PodVerdict, classify_pod, explain_creation_error
from oomlab.rules.nodes import NodeFacts, node_facts_from_node
from oomlab.rules.results import Outcome, Progress
from oomlab.rules.runtimeclass import (
    DEFAULT_HANDLER,
    RuntimeClassCheck,
    check_runtime_class,
    node_view,
    runtime_class_from_doc,
)
from oomlab.rules.timestamps import parse_time, rfc3339
from oomlab.rules.workload import parse_lines

log = logging.getLogger("oomlab.operator.handlers")

NODE_FACTS_TTL = timedelta(minutes=5)
ALARM_RETRY_S = 5.0
CREATE_RETRY_S = 5.0
POD_DELETED = "The pod was deleted before the workload finished."
WARNING_PHASES = {Phase.OOM_KILLED, Phase.FAILED, Phase.TIMED_OUT, Phase.INVALID}


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# operator-wide state: configuration, node facts, alarms, what the probe reports


Action = Callable[[], Coroutine[Any, Any, None]]


class Alarms:
    """One-shot timers on the event loop, keyed (``timeout/<uid>``, ``cleanup/<uid>``).

    Setting a key again replaces its alarm. A failing action is retried after a pause.
    """

    def __init__(self) -> None:
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def set(self, key: str, at: datetime, action: Action) -> None:
        self.cancel(key)
        delay = max(0.0, (at - _now()).total_seconds())
        loop = asyncio.get_running_loop()
        self._handles[key] = loop.call_later(delay, self._fire, key, action)

    def cancel(self, key: str) -> None:
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for key in list(self._handles):
            self.cancel(key)

    def pending(self) -> list[str]:
        return sorted(self._handles)

    def _fire(self, key: str, action: Action) -> None:
        self._handles.pop(key, None)
        task = asyncio.ensure_future(self._run(key, action))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: str, action: Action) -> None:
        try:
            await action()
        except Exception:
            log.exception("alarm %s failed; retrying in %ss", key, ALARM_RETRY_S)
            if key not in self._handles:
                self.set(key, _now() + timedelta(seconds=ALARM_RETRY_S), action)


@dataclass
class OperatorState:
    """What the operator keeps between handlers, in kopf's ``memo`` (set up at startup)."""

    config: OperatorConfig = field(default_factory=OperatorConfig)
    alarms: Alarms = field(default_factory=Alarms)
    nodes: dict[str, tuple[datetime, NodeFacts | None]] = field(default_factory=dict)


MEMO_KEY = "oomlab"


def state_of(memo: kopf.Memo) -> OperatorState:
    state = memo.get(MEMO_KEY)
    if not isinstance(state, OperatorState):
        raise kopf.PermanentError("the operator's startup handler has not configured it")
    return state


async def node_facts(state: OperatorState, name: str | None) -> NodeFacts | None:
    """A node's memory and swap capacity, cached for a few minutes."""
    if not name:
        return None
    cached = state.nodes.get(name)
    if cached is not None and _now() - cached[0] < NODE_FACTS_TTL:
        return cached[1]
    facts = await asyncio.to_thread(kube.get_node_facts, name)
    state.nodes[name] = (_now(), facts)
    return facts


@kopf.on.event("", "v1", "nodes")
async def node_event(*, type: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Keep the cached node facts current: a label changed on purpose (``oomlab thp-compare``
    switches ``oomlab.dev/thp`` between two runs) is used at once, not after the cache's TTL."""
    state = state_of(memo)
    name = str((body.get("metadata") or {}).get("name") or "")
    if not name:
        return
    if type == "DELETED":
        state.nodes.pop(name, None)
        return
    state.nodes[name] = (_now(), node_facts_from_node(dict(body)))


# --------------------------------------------------------------------------------------------
# startup, probe, cleanup


API_THREADS = 32
"""Every Kubernetes call runs in a thread (asyncio.to_thread): the loop's default pool is
min(32, cores + 4), 6 threads on a 2-core node, which queues a burst of experiments behind a few
slow calls. The calls wait on the network, not the CPU, so more threads cost little."""


@kopf.on.startup()
async def widen_api_thread_pool(**_: Any) -> None:
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="oomlab-api")
    )


@kopf.on.startup()
def configure(
    *, settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    """Settings and configuration; a bad configuration stops the operator at once."""
    try:
        config = OperatorConfig.from_env()
    except ConfigError as exc:
        raise kopf.PermanentError(str(exc)) from None
    memo[MEMO_KEY] = OperatorState(config=config)
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


@kopf.index(GROUP, VERSION, PLURAL)
def experiments_by_phase(*, status: Mapping[str, Any], uid: str, **_: Any) -> dict[str, str]:
    """Every experiment under its phase (Pending until the status says otherwise)."""
    return {str(status.get("phase") or Phase.PENDING.value): uid}


@kopf.on.probe(id="experiments")
def experiments_seen(
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
# writing the status


def _announce(body: Mapping[str, Any], old: Phase | None, new: Phase, message: str) -> None:
    """A Kubernetes Event on the experiment for one phase transition."""
    text = f"{old.value if old else 'New'} -> {new.value}: {message}"
    if new in WARNING_PHASES:
        kopf.warn(as_body(body), reason=new.value, message=text)
    else:
        kopf.info(as_body(body), reason=new.value, message=text)


def as_body(document: Mapping[str, Any]) -> kopf.Body:
    """A kopf Body view of a plain dict (an object as the API server returned it)."""
    return kopf.Body(cast(kopf.RawBody, dict(document)))


async def write_status(
    state: OperatorState, current: Mapping[str, Any], desired: kube.DesiredStatus
) -> kube.StatusChange | None:
    """Patch what changed in the experiment ``current`` (as last read), announce a phase
    transition, and (re)arm the experiment's alarms."""
    namespace, name, uid = (current["metadata"][key] for key in ("namespace", "name", "uid"))
    change = await asyncio.to_thread(
        kube.update_status, namespace, name, desired, current=current, uid=uid
    )
    if change is None:
        arm_alarms(state, current)  # after a restart nothing may change, but alarms must exist
        return None
    transition = phase_transition(change.before, change.after)
    if transition is not None:
        old, new = transition
        _announce(change.body, old, new, str(change.after.get("message", "")))
    _announce_swap_cost(change)
    timed_out_now = transition is not None and transition[1] == Phase.TIMED_OUT
    arm_alarms(state, change.body, timed_out_now=timed_out_now)
    return change


def _announce_swap_cost(change: kube.StatusChange) -> None:
    """An Event when status.swapCost is decided (measured, or nothing to measure)."""
    before, after = swap_cost_of(change.before), swap_cost_of(change.after)
    if after.get("state") == STATE_DONE and before.get("state") != STATE_DONE:
        reason = f"SwapCost{after.get('verdict', '')}"
        kopf.info(as_body(change.body), reason=reason, message=str(after.get("message", "")))


def arm_alarms(
    state: OperatorState, body: Mapping[str, Any], *, timed_out_now: bool = False
) -> None:
    """Timeout while the experiment runs; pod removal on a timeout or after its ttl."""
    meta = body.get("metadata") or {}
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    try:
        spec = ExperimentSpec.from_spec(body.get("spec") or {})
    except InvalidSpec:
        return
    phase = phase_of(status_of(body))
    if phase is not None and phase.terminal:
        arm_twin_alarms(state, body, spec)
        state.alarms.cancel(f"timeout/{uid}")
        pod = pod_name(name, uid)
        if timed_out_now:
            state.alarms.set(f"cleanup/{uid}", _now(), lambda: _delete_pod(namespace, pod))
        elif (deadline := cleanup_deadline(body, spec)) is not None:
            # Times come from the kubelet's clock: never wait longer than the ttl from now.
            latest = _now() + timedelta(seconds=spec.ttl_after_finished_s or 0)
            state.alarms.set(
                f"cleanup/{uid}", min(deadline, latest), lambda: _delete_pod(namespace, pod)
            )
        return
    deadline = timeout_deadline(body, spec)
    if deadline is not None:
        latest = _now() + timedelta(seconds=spec.timeout_s)
        state.alarms.set(
            f"timeout/{uid}", min(deadline, latest), lambda: time_out(state, namespace, name, uid)
        )


async def _delete_pod(namespace: str, name: str) -> None:
    if await asyncio.to_thread(kube.delete_pod, namespace, name):
        log.info("deleted pod %s/%s", namespace, name)


# --------------------------------------------------------------------------------------------
# experiments: create / resume


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
            body.get("spec") or {}, max_bytes=state.config.max_experiment_bytes
        )
    except InvalidSpec as exc:
        await _invalid(state, current, "InvalidSpec", invalid_spec_message(exc.field, str(exc)))
        return
    if await _pod_vanished(state, current, namespace, name, uid):
        return
    runtime = await _check_runtime_class(current, spec)
    if runtime.reason:
        message = invalid_spec_message("spec.runtimeClassName", runtime.message)
        await _invalid(state, current, runtime.reason, message)
        return
    created = await _create_or_adopt_pod(state, current, spec, namespace, name, uid)
    if created is None:
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
            pod_created=created,
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


async def _check_runtime_class(body: Mapping[str, Any], spec: ExperimentSpec) -> RuntimeClassCheck:
    """spec.runtimeClassName against the cluster, before the pod exists (once it does, the
    class did exist). Without the right to list RuntimeClasses the API server's admission
    decides and the handler stays unknown."""
    created = condition_of(status_of(body), CONDITION_POD_CREATED)
    if created is not None and created.get("status") == "True":
        return RuntimeClassCheck()
    if spec.runtime_class is None:
        return RuntimeClassCheck(handler=DEFAULT_HANDLER)
    classes = await asyncio.to_thread(kube.list_runtime_classes)
    if classes is None:
        return RuntimeClassCheck()
    nodes = await asyncio.to_thread(kube.list_nodes)
    return check_runtime_class(
        spec.runtime_class,
        [runtime_class_from_doc(doc) for doc in classes],
        [node_view(node) for node in nodes or []],
        swap_behavior=spec.swap_behavior,
        node_selector=spec.node_selector,
        tolerations=spec.tolerations,
    )


async def _pod_vanished(
    state: OperatorState, body: dict[str, Any], namespace: str, name: str, uid: str
) -> bool:
    """True (and Failed written) when the pod was created once but is gone: deleted while the
    operator was down. Running the workload a second time would not be the same experiment."""
    created = condition_of(status_of(body), CONDITION_POD_CREATED)
    if created is None or created.get("status") != "True":
        return False
    if await asyncio.to_thread(kube.read_pod, namespace, pod_name(name, uid)) is not None:
        return False
    try:
        spec = ExperimentSpec.from_spec(body.get("spec") or {})
    except InvalidSpec:
        return False
    gone = PodVerdict(Phase.FAILED, Outcome.FAILED, "PodDeleted", POD_DELETED)
    observation = observation_from_verdict(gone, {}, None)
    await write_status(
        state,
        body,
        lambda cur: assemble(cur, spec, state.config, _now(), observation=observation),
    )
    return True


async def _create_or_adopt_pod(
    state: OperatorState,
    body: dict[str, Any],
    spec: ExperimentSpec,
    namespace: str,
    name: str,
    uid: str,
) -> tuple[str, str] | None:
    """(reason, message) for the PodCreated condition, or None when the pod was refused."""
    pod = build_pod(name, namespace, uid, spec)
    kopf.adopt(pod, owner=as_body(body))
    try:
        await asyncio.to_thread(kube.create_pod, pod)
        return "Created", f"Created pod {pod['metadata']['name']}."
    except ApiException as exc:
        if exc.status == 409:
            return await _adopt_existing(pod["metadata"]["name"], namespace, uid)
        phase, reason, sentence = explain_creation_error(exc.status or 0, kube.error_message(exc))
    except HTTPError as exc:
        raise kopf.TemporaryError(
            f"cannot reach the API server: {exc}", delay=CREATE_RETRY_S
        ) from exc
    if phase == Phase.PENDING:
        raise kopf.TemporaryError(sentence, delay=CREATE_RETRY_S)
    await write_status(
        state,
        body,
        lambda cur: rejected_status(
            cur,
            phase=phase,
            reason=reason,
            message=sentence,
            now=_now(),
            spec_valid=True,
            spec=spec,
            config=state.config,
        ),
    )
    return None


async def _adopt_existing(pod: str, namespace: str, uid: str) -> tuple[str, str]:
    existing = await asyncio.to_thread(kube.read_pod, namespace, pod)
    if existing is None:
        raise kopf.TemporaryError(f"pod {pod} exists but cannot be read yet", delay=1)
    owner = owner_experiment(existing)
    if owner is None or owner.uid != uid:
        raise kopf.PermanentError(f"pod {pod} exists and belongs to something else")
    return "Adopted", f"Pod {pod} already existed (an operator restart); it was adopted."


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
    state = state_of(memo)
    for kind in ("timeout", "cleanup", "twin", "twin-cleanup"):
        state.alarms.cancel(f"{kind}/{uid}")
    if namespace:
        await _delete_pod(namespace, pod_name(name, uid))
        if swap_cost_of(status_of(body)).get("twinPodName"):
            await _delete_pod(namespace, twin_pod_name(name, uid))


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
    if owner is None or namespace is None:
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


def _terminated(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated")
        if terminated:
            return dict(terminated)
    return None


FULL_LOG_LINES = 5000
"""memhog writes a line per report step (50 MiB by default): thousands of lines is a lot."""


async def workload_progress(namespace: str, pod: Mapping[str, Any]) -> Progress | None:
    """memhog's progress once the container ended: from the termination message (the last log
    lines, FallbackToLogsOnError), else from the log itself (exit 0 leaves no message)."""
    terminated = _terminated(pod)
    if terminated is None:
        return None
    progress = parse_lines(str(terminated.get("message") or "").splitlines())
    if progress.lines and progress.allocated_bytes is not None and progress.cgroup:
        return progress
    # The message is only the last lines; memhog's cgroup report (the swap the node really
    # gave it) is in its first line, so read the whole log, which stays small.
    name = (pod.get("metadata") or {}).get("name", "")
    lines = await asyncio.to_thread(kube.read_pod_log_tail, namespace, name, FULL_LOG_LINES)
    from_log = parse_lines(lines)
    return from_log if from_log.lines else progress


# --------------------------------------------------------------------------------------------
# timeout


async def time_out(state: OperatorState, namespace: str, name: str, uid: str) -> None:
    """TimedOut once timeoutSeconds passed since the pod started (or since creation)."""
    body = await asyncio.to_thread(kube.find_experiment, namespace, name)
    if body is None or body["metadata"].get("uid") != uid or is_terminal(body):
        return
    try:
        spec = ExperimentSpec.from_spec(body.get("spec") or {})
    except InvalidSpec:
        return
    deadline = timeout_deadline(body, spec)
    if deadline is not None and deadline > _now():
        arm_alarms(state, body)
        return
    pod = pod_name(name, uid)
    lines = await asyncio.to_thread(kube.read_pod_log_tail, namespace, pod)
    progress = parse_lines(lines) if lines else None
    recorded = status_of(body).get("kubernetes") or {}
    node = await node_facts(state, recorded.get("nodeName"))
    moment = _now()
    await write_status(
        state,
        body,
        lambda cur: assemble(
            cur,
            spec,
            state.config,
            moment,
            observation=timed_out_observation(spec, cur, progress, moment),
            node=node,
        ),
    )


# --------------------------------------------------------------------------------------------
# swap cost: the unconstrained twin


async def ensure_twin(
    state: OperatorState, body: Mapping[str, Any], *, after_restart: bool = False
) -> None:
    """Create the twin when status.swapCost is Measuring and none was made yet (after a restart:
    create or adopt it; the twin's own pod events then fold its result in)."""
    section = swap_cost_of(status_of(body))
    if section.get("state") != STATE_MEASURING:
        return
    if section.get("twinPodName") and not after_restart:
        return
    meta = body["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    try:
        spec = ExperimentSpec.from_spec(body.get("spec") or {})
    except InvalidSpec:
        return
    node = (status_of(body).get("kubernetes") or {}).get("nodeName")
    pod = build_twin_pod(name, namespace, uid, spec, node)
    kopf.adopt(pod, owner=as_body(body))
    twin = pod["metadata"]["name"]
    created: dict[str, Any] | None
    try:
        created = await asyncio.to_thread(kube.create_pod, pod)
    except ApiException as exc:
        if exc.status != 409:
            why = f"the twin pod {twin} was refused ({kube.error_message(exc)})"
            await _write_swap_cost(state, body, lambda sec: twin_lost(sec, why, rfc3339(_now())))
            return
        created = await asyncio.to_thread(kube.read_pod, namespace, twin)
        owner = owner_experiment(created or {})
        if owner is None or owner.uid != uid:
            raise kopf.PermanentError(f"pod {twin} exists and belongs to something else") from None
    memory = twin_memory_limit(spec)
    created_at = ((created or {}).get("metadata") or {}).get("creationTimestamp") or rfc3339(_now())
    change = await _write_swap_cost(
        state,
        body,
        lambda sec: twin_started(
            sec, pod_name=twin, node_name=node, memory_bytes=memory, created_at=created_at
        ),
    )
    if change is not None and not section.get("twinPodName"):
        where = f" on {node}" if node else ""
        kopf.info(
            as_body(change.body),
            reason="SwapCostTwinStarted",
            message=f"Started the unconstrained twin {twin}{where}: the same workload with a "
            f"{memory // 2**20} MiB memory limit and no swap, as the baseline of status.swapCost.",
        )


async def _write_swap_cost(
    state: OperatorState,
    body: Mapping[str, Any],
    update: Callable[[dict[str, Any]], dict[str, Any]],
) -> kube.StatusChange | None:
    """``update`` applied to status.swapCost while it is Measuring (a no-op once Done)."""

    def desired(current: Mapping[str, Any]) -> dict[str, Any] | None:
        status = status_of(current)
        section = swap_cost_of(status)
        if section.get("state") != STATE_MEASURING:
            return None
        return {**status, "swapCost": update(section)}

    return await write_status(state, body, desired)


async def twin_event(
    state: OperatorState, parent: Mapping[str, Any], pod: Mapping[str, Any], *, deleted: bool
) -> None:
    """The twin ended (or vanished): its working time against the experiment's, in the status."""
    if swap_cost_of(status_of(parent)).get("state") != STATE_MEASURING:
        return
    try:
        spec = ExperimentSpec.from_spec(parent.get("spec") or {})
    except InvalidSpec:
        return
    namespace = parent["metadata"]["namespace"]
    progress = await workload_progress(namespace, pod)
    verdict = classify_pod(
        pod,
        limit_bytes=twin_memory_limit(spec),
        allocated_bytes=progress.allocated_bytes if progress else None,
    )
    if verdict.phase.terminal:
        await _write_swap_cost(
            state,
            parent,
            lambda sec: after_twin(
                sec, verdict.outcome, verdict.reason, progress, verdict.finished_at
            ),
        )
    elif deleted:
        why = "the twin pod was deleted before it finished"
        await _write_swap_cost(state, parent, lambda sec: twin_lost(sec, why, rfc3339(_now())))


def arm_twin_alarms(state: OperatorState, body: Mapping[str, Any], spec: ExperimentSpec) -> None:
    """The twin's deadline (timeoutSeconds from its creation, also when it never gets a node),
    and its removal ttlSecondsAfterFinished after the swap cost is known."""
    meta = body.get("metadata") or {}
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    section = swap_cost_of(status_of(body))
    created = parse_time(section.get("twinCreatedAt"))
    if section.get("state") == STATE_MEASURING and created is not None:
        latest = _now() + timedelta(seconds=spec.timeout_s)
        deadline = min(created + timedelta(seconds=spec.timeout_s), latest)
        state.alarms.set(
            f"twin/{uid}", deadline, lambda: twin_deadline(state, namespace, name, uid)
        )
        return
    state.alarms.cancel(f"twin/{uid}")
    finished = parse_time(section.get("finishedAt"))
    twin = section.get("twinPodName")
    if twin and finished is not None and spec.ttl_after_finished_s is not None:
        latest = _now() + timedelta(seconds=spec.ttl_after_finished_s)
        at = min(finished + timedelta(seconds=spec.ttl_after_finished_s), latest)
        state.alarms.set(f"twin-cleanup/{uid}", at, lambda: _delete_pod(namespace, twin))


async def twin_deadline(state: OperatorState, namespace: str, name: str, uid: str) -> None:
    """timeoutSeconds passed since the twin was created: fold it if it ended meanwhile, else
    remove it and say there is no baseline."""
    body = await asyncio.to_thread(kube.find_experiment, namespace, name)
    if body is None or body["metadata"].get("uid") != uid:
        return
    twin = twin_pod_name(name, uid)
    pod = await asyncio.to_thread(kube.read_pod, namespace, twin)
    if pod is not None:
        await twin_event(state, body, pod, deleted=False)
        body = await asyncio.to_thread(kube.find_experiment, namespace, name)
    if body is None or swap_cost_of(status_of(body)).get("state") != STATE_MEASURING:
        return
    try:
        spec = ExperimentSpec.from_spec(body.get("spec") or {})
    except InvalidSpec:
        return
    await _delete_pod(namespace, twin)
    why = f"the unconstrained twin did not finish within timeoutSeconds ({spec.timeout_s} s)"
    await _write_swap_cost(state, body, lambda sec: twin_lost(sec, why, rfc3339(_now())))
