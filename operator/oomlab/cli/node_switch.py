"""What the comparisons that switch something on a node for a while (``thp-compare``,
``memqos-compare``) share: the privileged helper pod that does the switching, running one
experiment pinned to the node, the table of their result, and SIGTERM handling that still
restores the node."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from oomlab.experiment import ExperimentSpec
from oomlab.rules.nodes import SWAP_TAINT_KEY
from oomlab.rules.semantics import SwapBehavior
from oomlab.rules.workload import WorkloadSpec
from oomlab.runners.kubernetes import ClusterExperiment, KubernetesRunner, Observed, OnUpdate

HOSTNAME_LABEL = "kubernetes.io/hostname"


def privileged_helper_pod(
    name: str,
    namespace: str,
    node: str,
    *,
    image: str,
    component: str,
    labels: Mapping[str, str],
    container: Mapping[str, Any],
    volumes: list[dict[str, Any]],
    host_pid: bool = False,
) -> dict[str, Any]:
    """A pod bound to ``node`` whose one container (``container``: its name, command and
    mounts) runs ``image`` as root and privileged; it tolerates the LimitedSwap taint and is
    labelled as ``component`` (not as an experiment pod: the operator's pod watch must not
    pick it up)."""
    spec: dict[str, Any] = {"nodeName": node}
    if host_pid:
        spec["hostPID"] = True
    spec.update(
        {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 1,
            "tolerations": [{"key": SWAP_TAINT_KEY, "operator": "Exists"}],
            "containers": [
                {
                    "name": container["name"],
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    **{key: value for key, value in container.items() if key != "name"},
                    "securityContext": {"privileged": True, "runAsUser": 0, "runAsNonRoot": False},
                }
            ],
            "volumes": volumes,
        }
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**labels, "app.kubernetes.io/component": component},
        },
        "spec": spec,
    }


def run_on_node(
    namespace: str,
    node: str,
    name: str,
    workload: WorkloadSpec,
    *,
    limit: str,
    request: str,
    timeout_s: int,
    labels: Mapping[str, str],
    on_update: OnUpdate,
) -> Observed:
    """One LimitedSwap experiment pinned to ``node`` through the Kubernetes runner, kept (for
    kubectl); its ``problem`` is the caller's to raise."""
    spec = ExperimentSpec.build(
        workload, limit=limit, request=request, timeout_s=timeout_s,
        swap_behavior=SwapBehavior.LIMITED_SWAP, node_selector={HOSTNAME_LABEL: node},
    )  # fmt: skip
    runner = KubernetesRunner(namespace, keep=True, on_update=on_update)
    (observed,) = runner.run_all([ClusterExperiment(name, spec, labels)], timeout_s=timeout_s + 300)
    return observed


def result_table(title: str, headings: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    table = Table(title=title)
    for heading in headings:
        table.add_column(heading)
    for row in rows:
        table.add_row(*row)
    return table


def save_and_print_json(data: Any, save: Path | None, as_json: bool, out: Console) -> bool:
    """Write a comparison's JSON to ``save`` (when given) and print it on ``out`` when
    ``as_json``; True when it was printed, so the table is not wanted."""
    if save is not None:
        save.write_text(json.dumps(data, indent=2) + "\n")
    if as_json:
        out.print_json(json.dumps(data))
    return as_json


def sigterm_as_interrupt(*_: object) -> None:
    """A SIGTERM handler: the comparison's ``finally`` restores the node as on Ctrl-C."""
    raise KeyboardInterrupt
