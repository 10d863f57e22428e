"""Before and while the experiment's one pod is made: the RuntimeClass check, creating the pod or
adopting the one a previous operator made, and noticing it vanished while the operator was down.

The handlers write what these find into the status; nothing here writes the status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from oomlab import kube
from oomlab.experiment import ExperimentSpec, build_pod, pod_name
from oomlab.operator.api import as_body
from oomlab.operator.conditions import CONDITION_POD_CREATED, condition_of
from oomlab.operator.kubernetes_view import owner_experiment
from oomlab.operator.phases import status_of
from oomlab.operator.state import OperatorState, node_views
from oomlab.rules.classify import Phase, explain_creation_error
from oomlab.rules.runtimeclass import (
    DEFAULT_HANDLER,
    RuntimeClassCheck,
    check_runtime_class,
    runtime_class_from_doc,
)

CREATE_RETRY_S = 5.0


def pod_was_created(body: Mapping[str, Any]) -> bool:
    created = condition_of(status_of(body), CONDITION_POD_CREATED)
    return created is not None and created.get("status") == "True"


async def runtime_class(
    state: OperatorState, body: Mapping[str, Any], spec: ExperimentSpec
) -> RuntimeClassCheck:
    """spec.runtimeClassName against the cluster, before the pod exists (once it does, the
    class did exist). Without the right to list RuntimeClasses the API server's admission
    decides and the handler stays unknown."""
    if pod_was_created(body):
        return RuntimeClassCheck()
    if spec.runtime_class is None:
        return RuntimeClassCheck(handler=DEFAULT_HANDLER)
    classes = await asyncio.to_thread(kube.list_runtime_classes)
    if classes is None:
        return RuntimeClassCheck()
    return check_runtime_class(
        spec.runtime_class,
        [runtime_class_from_doc(doc) for doc in classes],
        await node_views(state),
        swap_behavior=spec.swap_behavior,
        node_selector=spec.node_selector,
        tolerations=spec.tolerations,
    )


async def pod_vanished(body: Mapping[str, Any], namespace: str, name: str, uid: str) -> bool:
    """The pod was created once but is gone: deleted while the operator was down. Running the
    workload a second time would not be the same experiment."""
    if not pod_was_created(body):
        return False
    return await asyncio.to_thread(kube.read_pod, namespace, pod_name(name, uid)) is None


@dataclass(frozen=True)
class PodMade:
    """For the PodCreated condition: Created or Adopted, and a sentence."""

    reason: str
    message: str


@dataclass(frozen=True)
class PodRefused:
    """The API server refused the pod for good: the experiment's phase, reason and sentence."""

    phase: Phase
    reason: str
    message: str


async def create_or_adopt_pod(
    body: Mapping[str, Any], spec: ExperimentSpec, namespace: str, name: str, uid: str
) -> PodMade | PodRefused:
    """Exactly one pod per experiment, owned by it. A refusal worth retrying (the API server
    unreachable, or busy) raises kopf.TemporaryError so kopf retries."""
    pod = build_pod(name, namespace, uid, spec)
    kopf.adopt(pod, owner=as_body(body))
    try:
        await asyncio.to_thread(kube.create_pod, pod)
        return PodMade("Created", f"Created pod {pod['metadata']['name']}.")
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
    return PodRefused(phase, reason, sentence)


async def _adopt_existing(pod: str, namespace: str, uid: str) -> PodMade:
    existing = await asyncio.to_thread(kube.read_pod, namespace, pod)
    if existing is None:
        raise kopf.TemporaryError(f"pod {pod} exists but cannot be read yet", delay=1)
    owner = owner_experiment(existing)
    if owner is None or owner.uid != uid:
        raise kopf.PermanentError(f"pod {pod} exists and belongs to something else")
    return PodMade("Adopted", f"Pod {pod} already existed (an operator restart); it was adopted.")
