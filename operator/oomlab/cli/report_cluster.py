"""The cluster's columns of ``oomlab report``, run: every scenario as an OOMExperiment, through
the operator, on the kubelet's two kinds of node (the pure side: :mod:`oomlab.cli.cluster_cells`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from oomlab.cli.cluster_cells import (
    CLUSTER_COLUMNS,
    NAMESPACE,
    ClusterCell,
    ClusterPart,
    KubeMapping,
    cluster_columns,
    column_reachability,
    kubernetes_equivalent,
    limited_swap_node,
)
from oomlab.cli.report_model import Scenario, Step, skip_reason
from oomlab.cli.report_sweep import (
    SWEEP_NAME,
    PlannedCell,
    newly_finished,
    read_back,
    report_sweep,
    variant_name,
)


def measure_cluster(
    scenarios: Sequence[Scenario],
    *,
    image: str,
    timeout_s: float,
    on_step: Callable[[str], None] | None = None,
    on_done: Callable[[str], None] | None = None,
    skip: Sequence[str] = (),
    keep: bool = False,
) -> ClusterPart:
    """Every scenario on every cluster column, as one OOMSweep the operator runs: the host
    node, the VM node and the second kubelet's VM at the same time, two experiments at a time on
    each, the longest first (:mod:`oomlab.cli.report_sweep`). The sweep is deleted afterwards
    unless ``keep``."""
    part = ClusterPart()
    started = time.monotonic()
    why_not = _reach_cluster()
    if isinstance(why_not, str):
        part.unreachable["cluster"] = why_not
        for column in CLUSTER_COLUMNS:
            for scenario in scenarios:
                part.cells.append(
                    ClusterCell(column, scenario, KubeMapping("-", "-", "-", ""), error=why_not)
                )
                if on_done:
                    on_done(f"{column.label} {scenario.key}: unreachable")
        part.wall_s = round(time.monotonic() - started, 3)
        return part
    nodes, classes = why_not
    part.columns = columns = cluster_columns(nodes)
    limited = limited_swap_node(nodes)
    part.mapping = {s.key: kubernetes_equivalent(s, limited) for s in scenarios}
    part.unreachable.update(column_reachability(nodes, classes, columns))
    planned: list[PlannedCell] = []
    for column in columns:
        for scenario in scenarios:
            mapping = part.mapping[scenario.key]
            cell = ClusterCell(column, scenario, mapping)
            part.cells.append(cell)
            if column.label in part.unreachable:
                cell.error = "column unreachable (see findings)"
            elif mapping.not_run:
                cell.error = mapping.not_run
            elif skipped := skip_reason(skip, column.label, scenario.key):
                cell.error = skipped
            elif (spec := _cell_spec(cell, image, timeout_s)) is not None:
                planned.append(PlannedCell(cell, spec))
            if on_done and cell.error:
                on_done(f"  {column.label}: {scenario.key} ({mapping.text()}): {cell.text()}")
    if planned:
        _run_sweep(part, planned, timeout_s=timeout_s, keep=keep, on_step=on_step,
                   on_done=on_done)  # fmt: skip
    part.wall_s = round(time.monotonic() - started, 3)
    return part


def _reach_cluster() -> str | tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(nodes, RuntimeClasses) of a cluster whose operator is running, or why not."""
    from urllib3.exceptions import HTTPError

    from oomlab import kube
    from oomlab.runners.kubernetes import KubernetesRunner

    why = KubernetesRunner(NAMESPACE).unavailable()
    if why:
        return why
    try:
        nodes = kube.list_nodes()
        classes = kube.list_runtime_classes()
    except (HTTPError, OSError) as exc:
        return f"the API server did not answer: {exc}"
    except kube.ApiException as exc:
        return f"the API server refused: {kube.error_message(exc)}"
    if nodes is None:
        return "this user cannot list nodes, so the columns' nodes cannot be known"
    return nodes, classes


def _cell_spec(cell: ClusterCell, image: str, timeout_s: float) -> dict[str, Any] | None:
    """The cell's OOMExperiment spec, written by to_document (the one writer), or None with
    ``cell.error`` saying why it is not a valid experiment."""
    from oomlab.experiment import ExperimentSpec, InvalidSpec
    from oomlab.rules.docker import DockerFlags

    scenario, mapping, column = cell.scenario, cell.mapping, cell.column
    pinned = column.placement()
    try:
        spec = ExperimentSpec.build(
            scenario.workload, limit=mapping.limit, request=mapping.request, image=image,
            timeout_s=int(timeout_s), swap_behavior=column.swap_behavior,
            runtime_class=column.runtime_class,
            node_selector=pinned.node_selector if pinned else None,
            tolerations=pinned.tolerations if pinned else (),
            docker=None if scenario.memory is None else DockerFlags(
                scenario.memory, scenario.memory_swap
            ),
        )  # fmt: skip
    except InvalidSpec as exc:
        cell.error = f"{exc.field}: {exc}"
        return None
    return dict(spec.to_document(variant_name(cell))["spec"])


def _run_sweep(
    part: ClusterPart,
    planned: Sequence[PlannedCell],
    *,
    timeout_s: float,
    keep: bool,
    on_step: Callable[[str], None] | None,
    on_done: Callable[[str], None] | None,
) -> None:
    """Create the report's sweep (replacing one a dead report left), follow its status until
    Done or the deadline, read its experiments into the cells, and delete it unless ``keep``.
    The deadline: the busiest machine's cells one after another, each its timeout plus slack."""
    import typer
    from kubernetes.client.exceptions import ApiException

    from oomlab import kube
    from oomlab.cli import kube_sweep

    per_machine = Counter(p.cell.column.machine for p in planned)
    wait_s = max(per_machine.values()) * (timeout_s + 120)
    name = SWEEP_NAME if not keep else f"{SWEEP_NAME}-{time.strftime('%H%M%S')}"
    body = report_sweep(name, planned, keep=keep)
    labels = {variant_name(p.cell): f"{p.cell.column.label}: {p.cell.scenario.key}"
              for p in planned}  # fmt: skip
    seen: set[str] = set()

    def progress(status: dict[str, Any]) -> None:
        for row in newly_finished(status, seen):
            if on_done:
                on_done(f"  {labels.get(str(row.get('variant')), '?')}: "
                        f"{row.get('observed') or row.get('phase')}")  # fmt: skip

    began = time.monotonic()
    try:
        _replace_leftover(NAMESPACE, name)
        if on_step:
            on_step(f"the cluster: sweep {name}, {len(planned)} cells")
        status, items = kube_sweep.run_sweep(NAMESPACE, body, timeout_s=wait_s, on_status=progress)
    except (ApiException, typer.BadParameter) as exc:
        why = exc.message if isinstance(exc, typer.BadParameter) else kube.error_message(exc)
        for each in planned:
            each.cell.error = f"the API server refused the sweep: {why}"
        return
    finally:
        part.steps.append(Step(f"the cluster: sweep {name}", round(time.monotonic() - began, 3)))
        if not keep:
            kube_sweep.delete_sweep(NAMESPACE, name)
    done = status.get("phase") in ("Done", "Invalid")
    for cell in read_back(planned, status, items, finished_waiting=True):
        if cell.seconds:
            part.steps.append(Step(labels[variant_name(cell)], cell.seconds))
    if not done and on_done:
        on_done(f"  the sweep did not finish in time: {status.get('message') or '?'}")


def _replace_leftover(namespace: str, name: str) -> None:
    """Delete a sweep of this name that an earlier report left (killed before its clean-up) and
    wait until it and its experiments are gone, so the new one's cells are its own."""
    from oomlab.cli import kube_sweep

    if not kube_sweep.sweep_exists(namespace, name):
        return
    kube_sweep.delete_sweep(namespace, name, foreground=True)
    for _ in range(120):
        if not kube_sweep.sweep_exists(namespace, name):
            return
        time.sleep(1.0)
