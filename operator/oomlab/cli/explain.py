"""``oomlab explain``: why the user's own workloads get the memory and swap they get.

``oomlab explain -f FILE`` (``-`` for stdin) reads Pods, workloads with pod templates, ``List``
documents (``kubectl kustomize`` output), multi-document files and OOMExperiments (as the Pod the
operator makes of them), and needs no cluster: nodes are given as profiles (``--node``), or read
from the cluster with ``--from-cluster``. ``oomlab explain pod/NAME`` reads a live pod and its
node, and with ``--cgroup`` the container's own cgroup files, and compares. It is read-only; with
``--json`` it lists every request it made. The rules are :mod:`oomlab.rules.explain`.

Exit status: 0; 1 when a manifest has something to fix (``500m`` of memory) or an observed cgroup
file disagrees with the prediction; 2 for an error (one line).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from oomlab.cli.errors import fail
from oomlab.cli.explain_output import (
    EXIT_FINDINGS,
    Findings,
    explain_documents,
    load_documents,
    make_profile,
    node_profile,
    out,
    render,
    working_sets,
)
from oomlab.cli.explain_pod import (
    _current_namespace,
    _parse_target,
    _profiles_from_cluster,
    explain_live_pod,
)

# --------------------------------------------------------------------------------------------
# the command


def explain(
    target: Annotated[
        str | None, typer.Argument(help="pod/NAME: explain a live pod (read-only).")
    ] = None,
    filename: Annotated[
        list[str] | None,
        typer.Option("-f", "--filename", help="Manifest file, - for stdin (repeatable)."),
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("-n", "--namespace", help="The pod's namespace.")
    ] = None,
    node: Annotated[
        list[str] | None,
        typer.Option(
            help="A node profile: name=,memory=,swap=,behavior=LimitedSwap|NoSwap,cgroup=v2|v1,"
            "kubelet=,thp= (repeatable)."
        ),
    ] = None,
    node_memory: Annotated[
        str | None, typer.Option(help="One node's capacity.memory (e.g. 1461Mi).")
    ] = None,
    node_swap: Annotated[str | None, typer.Option(help="That node's swap (e.g. 2Gi, 0).")] = None,
    swap_behavior: Annotated[
        str | None, typer.Option(help="That node's swapBehavior (default LimitedSwap).")
    ] = None,
    cgroup_version: Annotated[
        str | None, typer.Option(help="That node's cgroup version (default v2).")
    ] = None,
    kubelet_version: Annotated[str | None, typer.Option(help="That node's kubelet.")] = None,
    thp: Annotated[
        str | None, typer.Option(help="That node's transparent hugepages (always, madvise).")
    ] = None,
    from_cluster: Annotated[
        bool, typer.Option("--from-cluster", help="Every node of the cluster in KUBECONFIG.")
    ] = False,
    working_set: Annotated[
        list[str] | None,
        typer.Option(help="Peak memory: 900Mi for every container, or NAME=900Mi (repeatable)."),
    ] = None,
    static: Annotated[
        bool, typer.Option("--static", help="The manifests are static pods (critical: no swap).")
    ] = False,
    cgroup: Annotated[
        bool,
        typer.Option("--cgroup", help="Live pod: read its containers' cgroup files (exec cat)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text.")] = False,
) -> None:
    """Why each container gets the memory and swap it gets: QoS, swap or why not, the LimitedSwap
    share on each node, the same limits as Docker flags, the outcome for a working set."""
    import json

    findings = Findings()
    sets = working_sets(working_set or [])
    if target is not None:
        if filename:
            fail("give either pod/NAME or -f FILE, not both")
        name = _parse_target(target)
        document = explain_live_pod(
            name,
            namespace or _current_namespace(),
            read_cgroup=cgroup,
            working_set=sets,
            findings=findings,
        )
    else:
        if not filename:
            fail("nothing to explain: give -f FILE (- for stdin) or pod/NAME")
        profiles = [node_profile(spec) for spec in node or []]
        if any(v is not None for v in (node_memory, node_swap, swap_behavior, cgroup_version)):
            profiles.append(
                make_profile(
                    name="node",
                    memory=node_memory,
                    swap=node_swap,
                    behavior=swap_behavior,
                    cgroup=cgroup_version,
                    kubelet=kubelet_version,
                    thp=thp,
                )
            )
        classes: dict[str, int] = {}
        requests: list[dict[str, str]] | None = None
        if from_cluster:
            found, classes, requests = _profiles_from_cluster()
            profiles.extend(found)
        docs = load_documents(filename)
        document = explain_documents(
            docs, profiles, sets, static=static, priority_classes=classes, findings=findings
        )
        if requests is not None:
            document["apiRequests"] = requests
        if not document["objects"] and not document["problems"]:
            fail("no workloads found (Pods, Deployments, StatefulSets, DaemonSets, Jobs, CronJobs)")
    if as_json:
        print(json.dumps(document, indent=2))
    else:
        render(document)
        for note in document.get("notes") or []:
            out.print(f"note: {escape(note)}")
    if findings.problems or findings.disagreements:
        raise typer.Exit(EXIT_FINDINGS)
