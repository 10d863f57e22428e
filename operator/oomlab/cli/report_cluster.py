"""The cluster's columns of ``oomlab report``, run: every scenario as an OOMExperiment, through
the operator, on the kubelet's two kinds of node (the pure side: :mod:`oomlab.cli.cluster_cells`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from oomlab.cli.cluster_cells import (
    CLUSTER_COLUMNS,
    NAMESPACE,
    REPORT_LABEL,
    ClusterCell,
    ClusterPart,
    KubeMapping,
    cluster_columns,
    column_reachability,
    kubernetes_equivalent,
    limited_swap_node,
)
from oomlab.cli.report_model import Scenario, Step, skip_reason


def measure_cluster(
    scenarios: Sequence[Scenario],
    *,
    image: str,
    timeout_s: float,
    on_step: Callable[[str], None] | None = None,
    on_done: Callable[[str], None] | None = None,
    skip: Sequence[str] = (),
) -> ClusterPart:
    """Every scenario on every cluster column, through the operator. The host node's column and
    the VM node's columns run at the same time (different machines); on the VM node (1.5 GiB)
    one experiment at a time."""
    from concurrent.futures import ThreadPoolExecutor

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
    stamp = time.strftime("%H%M%S")

    def run_machine(machine: str) -> list[ClusterCell]:
        cells: list[ClusterCell] = []
        for column in (c for c in columns if c.machine == machine):
            for scenario in scenarios:
                mapping = part.mapping[scenario.key]
                cell = ClusterCell(column, scenario, mapping)
                name = f"{column.label}: {scenario.key}"
                if column.label in part.unreachable:
                    cell.error = "column unreachable (see findings)"
                elif mapping.not_run:
                    cell.error = mapping.not_run
                elif skipped := skip_reason(skip, column.label, scenario.key):
                    cell.error = skipped
                else:
                    if on_step:
                        on_step(name)
                    begun = time.monotonic()
                    _run_cell(cell, stamp, image, timeout_s)
                    cell.seconds = round(time.monotonic() - begun, 3)
                    part.steps.append(Step(name, cell.seconds))
                cells.append(cell)
                if on_done:
                    on_done(f"  {name} ({mapping.text()}): {cell.text()}")
        return cells

    machines = list(dict.fromkeys(c.machine for c in columns))
    with ThreadPoolExecutor(len(machines)) as pool:
        results = list(pool.map(run_machine, machines))
    by_column = {c.label: i for i, c in enumerate(columns)}
    part.cells = sorted(
        (cell for cells in results for cell in cells), key=lambda c: by_column[c.column.label]
    )
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


def _run_cell(cell: ClusterCell, stamp: str, image: str, timeout_s: float) -> None:
    """One OOMExperiment through the Kubernetes runner: the scenario's whole workload (re-access
    passes included) under the mapping's request and limit; its last body kept, then deleted."""
    from oomlab import kube
    from oomlab.experiment import ExperimentSpec, InvalidSpec
    from oomlab.rules.docker import DockerFlags
    from oomlab.runners.kubernetes import ClusterExperiment, KubernetesRunner

    scenario, mapping, column = cell.scenario, cell.mapping, cell.column
    cell.name = f"report-{stamp}-{column.key.replace('.', '-')}-{scenario.key}"
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
        return
    experiment = ClusterExperiment(cell.name, spec, {REPORT_LABEL: stamp})
    try:
        (seen,) = KubernetesRunner(NAMESPACE).run_all([experiment], timeout_s=timeout_s + 120)
    except kube.ApiException as exc:
        cell.error = f"the API server refused the experiment: {kube.error_message(exc)}"
        return
    cell.body = seen.body
    cell.error = seen.problem
