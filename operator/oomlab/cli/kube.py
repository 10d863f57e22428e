"""``oomlab kube ...``: OOMExperiments from the command line, and the containerd-via-kubelet
column of the runtime matrix (the operator must be deployed: ``kubectl apply -k manifests/``)."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from oomlab import kube
from oomlab.cli.errors import App
from oomlab.cli.kube_sweep import delete_sweep, matrix_sweep, run_sweep, sweep_summary
from oomlab.experiment import ExperimentSpec, InvalidSpec
from oomlab.rules.docker import DockerFlags
from oomlab.rules.runtimeclass import (
    DEFAULT_HANDLER,
    check_runtime_class,
    is_dns1123_subdomain,
    node_view,
    runtime_class_from_doc,
)
from oomlab.rules.semantics import SwapBehavior
from oomlab.rules.units import SizeError, human
from oomlab.rules.workload import WorkloadSpec
from oomlab.runners.kubernetes import ClusterExperiment, KubernetesRunner, Observed, WatchUpdate

kube_app = App(help="Run OOMExperiments on the cluster in KUBECONFIG (operator deployed).")
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


FLAG_OF_FIELD = {
    "spec.resources.limits.memory": "--limit",
    "spec.resources.requests.memory": "--request",
    "spec.workload": "--mode/--size",
    "spec.docker": "--docker-memory/--docker-memory-swap",
    "spec.timeoutSeconds": "--timeout",
}


def cluster_spec(
    *,
    limit: str,
    request: str | None,
    mode: str,
    size: str,
    docker_memory: str | None,
    docker_memory_swap: str | None,
    timeout_s: int,
    swap_behavior: str | None = None,
    measure_swap_cost: bool = False,
    runtime_class: str | None = None,
) -> ExperimentSpec:
    """The experiment the options ask for, checked before anything reaches the cluster; a size
    that would mean something else there (Kubernetes ``500m`` is half a byte) names its option."""
    try:
        workload = WorkloadSpec.from_mapping({"mode": mode, "size": size})
    except SizeError as exc:
        raise typer.BadParameter(str(exc), param_hint="--mode/--size") from None
    docker = None
    if docker_memory is not None:
        docker = DockerFlags(docker_memory, docker_memory_swap)
    try:
        return ExperimentSpec.build(
            workload, limit=limit, request=request, docker=docker, timeout_s=timeout_s,
            swap_behavior=None if swap_behavior is None else SwapBehavior(swap_behavior),
            measure_swap_cost=measure_swap_cost, runtime_class=runtime_class,
        )  # fmt: skip
    except InvalidSpec as exc:
        raise typer.BadParameter(str(exc), param_hint=FLAG_OF_FIELD.get(exc.field)) from None


def run_experiments(
    namespace: str, experiments: Sequence[ClusterExperiment], *, keep: bool
) -> list[Observed]:
    """Run them all on the cluster through the operator, with a spinner while they run."""
    with err.status(f"waiting for {len(experiments)} experiment(s)") as spinner:

        def show(update: WatchUpdate) -> None:
            spinner.update(
                f"{update.finished}/{update.total} experiment(s) finished; "
                f"{update.name}: {update.phase}"
            )

        observed = KubernetesRunner(namespace, keep=keep, on_update=show).run_all(experiments)
    for seen in observed:
        if seen.problem:
            err.print(f"{seen.name}: {seen.problem}", highlight=False)
    return observed


def render(bodies: Sequence[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, show_lines=True)
    for column in (
        "experiment",
        "node",
        "QoS",
        "swap given",
        "predicted",
        "observed",
        "got to",
        "Docker",
    ):
        table.add_column(column, no_wrap=True)
    table.add_column("parity / why", ratio=1, min_width=40)
    for body in bodies:
        spec = body.get("spec") or {}
        status = body.get("status") or {}
        k8s = status.get("kubernetes") or {}
        docker = status.get("docker") or {}
        parity = status.get("parity") or {}
        resources = spec.get("resources") or {}
        request = (resources.get("requests") or {}).get("memory", "=limit")
        limit = (resources.get("limits") or {}).get("memory")
        workload = spec.get("workload") or {}
        observed = status.get("phase", "Pending")
        if k8s.get("exitCode") is not None:
            observed += f"\nexit {k8s['exitCode']}"
        allocated = k8s.get("allocatedBytes")
        cost_short, cost_sentence = swap_cost_note(status)
        table.add_row(
            f"{body['metadata']['name']}\n{workload.get('mode')} {workload.get('size')}\n"
            f"request {request} limit {limit}",
            node_cell(spec, k8s),
            k8s.get("qosClass", "-"),
            swap_cell(k8s),
            k8s.get("predictedOutcome", "-"),
            observed + cost_short,
            "-" if allocated is None else human(allocated),
            f"{docker.get('outcome', '-')}\n({docker.get('source', 'n/a')})",
            f"{parity.get('result', 'Unknown')}: {parity.get('explanation', '')}\n"
            f"{k8s.get('explanation') or status.get('message') or ''}{cost_sentence}",
        )
    return table


SwapCostOpt = Annotated[
    bool,
    typer.Option(
        "--measure-swap-cost",
        help="Also run each experiment's unconstrained twin and show the slowdown "
        "(status.swapCost; waits up to twice as long).",
    ),
]


def swap_cost_note(status: dict[str, Any]) -> tuple[str, str]:
    """status.swapCost (spec.measureSwapCost) for the observed cell and the why cell: the
    slowdown against the unconstrained twin (6.1x) and its sentence; nothing when not asked."""
    cost = status.get("swapCost") or {}
    if not cost:
        return "", ""
    return f"\nswap cost {cost.get('summary', '?')}", f"\nSwap cost: {cost.get('message', '')}"


def node_cell(spec: dict[str, Any], k8s: dict[str, Any]) -> str:
    """Where it ran and what that node does with swap: NoSwap on cgroup v1, LimitedSwap on v2;
    and which runtime handler ran it."""
    asked = spec.get("swapBehavior") or "any node"
    if spec.get("runtimeClassName"):
        asked += f", runtime class {spec['runtimeClassName']}"
    if not k8s.get("nodeName"):
        return f"(asked: {asked})"
    facts = [k8s.get("swapBehavior", "?"), f"cgroup {k8s.get('cgroupVersion', '?')}"]
    if k8s.get("transparentHugepages"):
        facts.append(f"THP {k8s['transparentHugepages']}")
    if k8s.get("runtimeHandler"):
        facts.append(f"runtime {k8s['runtimeHandler']}")
    return f"{k8s['nodeName']}\n" + "\n".join(facts)


def swap_cell(k8s: dict[str, Any]) -> str:
    """The swap limit the kernel set, and whether it is the predicted one (to the page)."""
    observed, predicted = k8s.get("swapLimitBytes"), k8s.get("predictedSwapBytes")
    if observed is None:
        return "-" if predicted is None else f"{human(predicted)}\n(predicted)"
    seen = "unlimited" if observed < 0 else human(observed)
    agrees = k8s.get("swapLimitAgrees")
    verdict = "" if agrees is None else ("\n= predicted" if agrees else "\n!= predicted")
    return f"{seen}{verdict}"


SWAP_BEHAVIORS = {"any": None, "NoSwap": "NoSwap", "LimitedSwap": "LimitedSwap"}
DEFAULT_RUNTIME = DEFAULT_HANDLER
"""``--runtime-class default``: no runtimeClassName, the node's default runtime."""


@dataclass(frozen=True)
class Skipped:
    runtime_class: str
    swap_behavior: str
    why: str


def runnable_pairs(
    behaviors: Sequence[str],
    runtime_classes: Sequence[str],
    cluster_classes: Sequence[dict[str, Any]] | None,
    nodes: Sequence[dict[str, Any]] | None,
) -> tuple[list[tuple[str, str]], list[Skipped]]:
    """(swap behaviour, runtime class) pairs the cluster can run, and the ones it cannot, each
    with the operator's own sentence. Unknown classes/nodes (no right to list): run them all and
    let the operator say."""
    pairs: list[tuple[str, str]] = []
    skipped: list[Skipped] = []
    for behavior in behaviors:
        for runtime in runtime_classes:
            if runtime == DEFAULT_RUNTIME or cluster_classes is None:
                pairs.append((behavior, runtime))
                continue
            asked = SWAP_BEHAVIORS[behavior]
            check = check_runtime_class(
                runtime,
                [runtime_class_from_doc(doc) for doc in cluster_classes],
                [node_view(node) for node in nodes or []],
                swap_behavior=SwapBehavior(asked) if asked else None,
            )
            if check.reason:
                skipped.append(Skipped(runtime, behavior, check.message))
            else:
                pairs.append((behavior, runtime))
    return pairs, skipped


NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n")]
KeepOpt = Annotated[
    bool,
    typer.Option(
        "--keep/--delete",
        help="Keep the experiments (and their pods) for kubectl and `oomlab parity`, or delete "
        "them once shown. Ctrl-C deletes what was created unless kept.",
    ),
]


@kube_app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="Name of the new OOMExperiment.")],
    limit: Annotated[str, typer.Option(help="Kubernetes limits.memory (500Mi, not 500m).")] = (
        "500Mi"
    ),
    request: Annotated[str | None, typer.Option(help="requests.memory; default = limit.")] = None,
    mode: Annotated[str, typer.Option(help="bulk, streaming, leak, spike.")] = "bulk",
    size: Annotated[str, typer.Option(help="Workload size, binary units.")] = "1000Mi",
    docker_memory: Annotated[str | None, typer.Option(help="Docker --memory to compare.")] = None,
    docker_memory_swap: Annotated[str | None, typer.Option(help="Docker --memory-swap.")] = None,
    namespace: NamespaceOpt = "default",
    timeout: Annotated[int, typer.Option(help="Seconds before TimedOut.", min=1)] = 300,
    measure_swap_cost: SwapCostOpt = False,
    keep: KeepOpt = True,
) -> None:
    """Create one OOMExperiment, wait for its outcome, and show its status."""
    spec = cluster_spec(
        limit=limit, request=request, mode=mode, size=size, docker_memory=docker_memory,
        docker_memory_swap=docker_memory_swap, timeout_s=timeout,
        measure_swap_cost=measure_swap_cost,
    )  # fmt: skip
    (seen,) = run_experiments(namespace, [ClusterExperiment(name, spec)], keep=keep)
    body = seen.body if "spec" in seen.body else spec.to_document(name)
    out.print(render([body], f"OOMExperiment {namespace}/{name}"))


def split_values(values: Sequence[str]) -> list[str]:
    """Repeated options and comma-separated lists, flattened: ["a,b", "c"] -> [a, b, c]."""
    return [v.strip() for x in values for v in x.split(",") if v.strip()]


@kube_app.command("matrix")
def matrix(
    limit: Annotated[list[str], typer.Option(help="limits.memory values.")] = ["500Mi"],  # noqa: B006
    request: Annotated[
        list[str], typer.Option(help="requests.memory values; 'limit' means equal (Guaranteed).")
    ] = ["limit", "250Mi"],  # noqa: B006
    mode: Annotated[list[str], typer.Option(help="Workload modes.")] = ["bulk", "streaming"],  # noqa: B006
    size: Annotated[str, typer.Option(help="Workload size, binary units.")] = "1000Mi",
    docker_memory: Annotated[str, typer.Option(help="Docker --memory to compare.")] = "500m",
    docker_memory_swap: Annotated[str, typer.Option(help="Docker --memory-swap.")] = "1g",
    swap_behavior: Annotated[
        list[str],
        typer.Option(
            help="Nodes to run on, by swap behaviour: NoSwap (cgroup v1 here), LimitedSwap "
            "(the VM node: hack/vm-node.sh up), any."
        ),
    ] = ["any"],  # noqa: B006
    runtime_class: Annotated[
        list[str],
        typer.Option(
            help="RuntimeClasses to run each cell with (runc, crun: crun only on the cgroup v2 "
            "VM node); 'default' = none, the node's default runtime. A class that cannot meet a "
            "--swap-behavior is left out, with the reason."
        ),
    ] = [DEFAULT_RUNTIME],  # noqa: B006
    namespace: NamespaceOpt = "default",
    timeout: Annotated[int, typer.Option(help="Seconds per experiment.", min=1)] = 300,
    measure_swap_cost: SwapCostOpt = False,
    keep: KeepOpt = True,
    sweep: Annotated[
        bool,
        typer.Option(
            "--sweep",
            help="Create one OOMSweep and read its status: the operator starts the cells, at "
            "most --max-running per kind of node (a class that cannot meet a swap behaviour "
            "gets a row saying why).",
        ),
    ] = False,
    max_running: Annotated[
        int, typer.Option(help="With --sweep: experiments per kind of node at once.", min=1)
    ] = 2,
) -> None:
    """limits x requests x modes x nodes x runtime classes as OOMExperiments: what the kubelet's
    swap rules really did, on each kind of node, under each runtime."""
    stamp = time.strftime("%H%M%S")
    run_label = {"oomlab.dev/matrix": stamp}
    behaviors = split_values(swap_behavior)
    unknown = [b for b in behaviors if b not in SWAP_BEHAVIORS]
    if unknown:
        raise typer.BadParameter(
            f"{', '.join(unknown)}: use {', '.join(SWAP_BEHAVIORS)} (comma-separated)",
            param_hint="--swap-behavior",
        )
    runtimes = split_values(runtime_class)
    malformed = [r for r in runtimes if r != DEFAULT_RUNTIME and not is_dns1123_subdomain(r)]
    if malformed:
        raise typer.BadParameter(
            f"{', '.join(malformed)}: not a RuntimeClass name (lowercase letters, digits, '-' "
            "and '.'; a DNS-1123 subdomain)",
            param_hint="--runtime-class",
        )
    if sweep:
        _matrix_as_sweep(
            f"matrix-{stamp}", run_label, namespace, keep, timeout,
            cluster_spec(
                limit=split_values(limit)[0], request=None, mode=split_values(mode)[0],
                size=size, docker_memory=docker_memory, docker_memory_swap=docker_memory_swap,
                timeout_s=timeout, measure_swap_cost=measure_swap_cost,
            ),
            limits=split_values(limit), requests=split_values(request),
            modes=split_values(mode), behaviors=behaviors, runtimes=runtimes,
            default_runtime=DEFAULT_RUNTIME, max_running=max_running, labels=run_label,
        )  # fmt: skip
        return
    listed = [r for r in runtimes if r != DEFAULT_RUNTIME]
    classes = kube.list_runtime_classes() if listed else []
    nodes = kube.list_nodes() if listed else []
    pairs, skipped = runnable_pairs(behaviors, runtimes, classes, nodes)
    for left_out in skipped:
        err.print(
            f"left out: runtime class {left_out.runtime_class} with swap behaviour "
            f"{left_out.swap_behavior}: {left_out.why}"
        )
    cells = itertools.product(pairs, split_values(limit), split_values(request), split_values(mode))
    experiments = [
        ClusterExperiment(
            f"matrix-{stamp}-{index:02d}",
            cluster_spec(
                limit=lim, request=None if req == "limit" else req, mode=md, size=size,
                docker_memory=docker_memory, docker_memory_swap=docker_memory_swap,
                timeout_s=timeout, swap_behavior=SWAP_BEHAVIORS[behavior],
                measure_swap_cost=measure_swap_cost,
                runtime_class=None if runtime == DEFAULT_RUNTIME else runtime,
            ),
            run_label,
        )
        for index, ((behavior, runtime), lim, req, md) in enumerate(cells)
    ]  # fmt: skip
    observed = run_experiments(namespace, experiments, keep=keep)
    out.print(render([o.body for o in observed if "spec" in o.body], "oomlab kube matrix"))
    if keep:
        err.print(
            f"experiments kept: kubectl delete oomx -n {namespace} -l oomlab.dev/matrix={stamp}"
        )


def _matrix_as_sweep(
    name: str,
    run_label: dict[str, str],
    namespace: str,
    keep: bool,
    timeout: int,
    template: ExperimentSpec,
    **axes: Any,
) -> None:
    """The matrix as one OOMSweep: created, waited for, shown, and kept or deleted."""
    body = matrix_sweep(name, template, **axes)
    cells = 1
    for values in body["spec"]["axes"].values():
        cells *= len(values)
    with err.status(f"waiting for the sweep {namespace}/{name}") as spinner:
        status, bodies = run_sweep(
            namespace,
            body,
            timeout_s=timeout * cells,
            on_status=lambda s: spinner.update(
                f"sweep {name}: {s.get('progress', '0/' + str(cells))} cells finished"
            ),
        )
    out.print(render(bodies, f"oomlab kube matrix (OOMSweep {namespace}/{name})"))
    err.print(sweep_summary(status), highlight=False)
    if keep:
        err.print(f"kept: kubectl delete oomsweep -n {namespace} {name} (its experiments go too)")
    else:
        delete_sweep(namespace, name)
