"""What the operator does when one of an experiment's alarms goes off (:mod:`.deadline` says when).

The startup handler hands :func:`deadline_passed` to the operator's state: these actions write the
status, and writing the status arms the alarms again, so they sit above both.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from oomlab import kube
from oomlab.experiment import ExperimentSpec, InvalidSpec, pod_name
from oomlab.operator.alarms import ExperimentRef
from oomlab.operator.api import arm_alarms, delete_pod, write_status
from oomlab.operator.deadline import Deadline, timeout_deadline
from oomlab.operator.kubernetes_view import timed_out_observation
from oomlab.operator.logs import progress_so_far
from oomlab.operator.phases import is_terminal, status_of
from oomlab.operator.state import OperatorState, node_facts
from oomlab.operator.status import assemble
from oomlab.operator.twin import twin_pod_name
from oomlab.operator.twin_lifecycle import twin_deadline


async def deadline_passed(
    state: OperatorState, deadline: Deadline, experiment: ExperimentRef
) -> None:
    """What an experiment's alarm does when it goes off."""
    namespace, name, uid = experiment.namespace, experiment.name, experiment.uid
    match deadline:
        case Deadline.TIMEOUT:
            await time_out(state, experiment)
        case Deadline.CLEANUP:
            await delete_pod(namespace, pod_name(name, uid))
        case Deadline.TWIN_TIMEOUT:
            await twin_deadline(state, experiment)
        case Deadline.TWIN_CLEANUP:
            await delete_pod(namespace, twin_pod_name(name, uid))


async def time_out(state: OperatorState, experiment: ExperimentRef) -> None:
    """TimedOut once timeoutSeconds passed since the pod started (or since creation)."""
    namespace, name, uid = experiment.namespace, experiment.name, experiment.uid
    body = await asyncio.to_thread(kube.find_experiment, namespace, name)
    if body is None or body["metadata"].get("uid") != uid or is_terminal(body):
        return
    try:
        spec = ExperimentSpec.from_spec(body.get("spec") or {})
    except InvalidSpec:
        return
    deadline = timeout_deadline(body, spec)
    if deadline is not None and deadline > datetime.now(UTC):
        arm_alarms(state, body)
        return
    progress = await progress_so_far(namespace, pod_name(name, uid))
    recorded = status_of(body).get("kubernetes") or {}
    node = await node_facts(state, recorded.get("nodeName"))
    moment = datetime.now(UTC)
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
