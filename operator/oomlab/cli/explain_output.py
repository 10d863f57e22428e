"""``oomlab explain``'s inputs (manifests, node profiles, working sets) and its output: the
explanation as data (the JSON) and as text. Pure but for reading files and printing."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape

from oomlab.cli.errors import fail
from oomlab.rules.explain import (
    ContainerFacts,
    ContainerOnNode,
    NodeProfile,
    PodFacts,
    Skipped,
    explain_container,
    no_swap_causes,
    parse_working_set,
    pod_facts,
    pod_templates,
    priority_classes_in,
)
from oomlab.rules.results import CgroupVersion
from oomlab.rules.semantics import SwapBehavior
from oomlab.rules.units import (
    format_binary,
    human,
    parse_binary_size,
    parse_k8s_quantity,
)

EXIT_FINDINGS = 1
OOMEXPERIMENT = "OOMExperiment"
PROFILE_KEYS = ("name", "memory", "swap", "behavior", "cgroup", "kubelet", "thp")

out = Console(width=None if sys.stdout.isatty() else 150, highlight=False, soft_wrap=True)

# --------------------------------------------------------------------------------------------
# inputs


def load_documents(paths: Sequence[str]) -> list[Any]:
    """Every YAML/JSON document in the files (``-``: stdin), in order."""
    docs: list[Any] = []
    for path in paths:
        if path == "-":
            text, where = sys.stdin.read(), "stdin"
        else:
            try:
                text, where = Path(path).read_text(), path
            except OSError as exc:
                fail(f"cannot read {path}: {exc.strerror or exc}")
        try:
            docs.extend(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" line {mark.line + 1}" if mark is not None else ""
            fail(f"{where}{at} is not YAML: {getattr(exc, 'problem', None) or exc}")
    return docs


def node_profile(spec: str) -> NodeProfile:
    """``--node name=vm,memory=1461Mi,swap=2Gi,behavior=LimitedSwap,cgroup=v2,kubelet=v1.34.4,
    thp=madvise``; behaviour defaults to LimitedSwap and cgroup to v2."""
    values: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in PROFILE_KEYS:
            fail(f"--node {spec!r}: use KEY=VALUE pairs with keys {', '.join(PROFILE_KEYS)}")
        values[key] = value.strip()
    return make_profile(**{key: values.get(key) for key in PROFILE_KEYS})


def make_profile(
    *,
    name: str | None,
    memory: str | None,
    swap: str | None,
    behavior: str | None,
    cgroup: str | None,
    kubelet: str | None,
    thp: str | None,
) -> NodeProfile:
    try:
        swap_behavior = SwapBehavior(behavior or SwapBehavior.LIMITED_SWAP.value)
    except ValueError:
        fail(
            f"swap behaviour {behavior!r}: use "
            f"{SwapBehavior.NO_SWAP} or {SwapBehavior.LIMITED_SWAP}"
        )
    version = (cgroup or "v2").lower()
    version = version if version.startswith("v") else f"v{version}"
    if version not in (CgroupVersion.V1, CgroupVersion.V2):
        fail(f"cgroup version {cgroup!r}: use v1 or v2")
    swap_bytes = 0 if swap in ("0", "none") else _size(swap, "node swap")
    return NodeProfile(
        name=name or "node",
        swap_behavior=swap_behavior,
        cgroup_version=CgroupVersion(version),
        memory_capacity_bytes=_size(memory, "node memory"),
        swap_capacity_bytes=swap_bytes,
        kubelet_version=kubelet or None,
        thp=thp or None,
    )


def _size(text: str | None, what: str) -> int | None:
    return None if text is None else parse_k8s_quantity(text, field=what)


def working_sets(values: Sequence[str]) -> dict[str | None, int]:
    """``--working-set 900Mi`` (every container) and ``--working-set app=900Mi``."""
    found: dict[str | None, int] = {}
    for text in values:
        name, size = parse_working_set(text)
        found[name] = parse_binary_size(size, field="--working-set")
    return found


@dataclass
class Findings:
    """What needs fixing, across all objects (exit status 1 when any)."""

    problems: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)


def experiment_pod(doc: Mapping[str, Any]) -> tuple[dict[str, Any] | None, int | None, str | None]:
    """An OOMExperiment as the Pod the operator makes of it, with its workload's demand as the
    working set; or why it cannot run (checked as the deployed operator does, with its default
    size cap)."""
    from oomlab.experiment import ExperimentSpec, InvalidSpec, build_pod
    from oomlab.operator.config import DEFAULT_MAX_EXPERIMENT_BYTES

    metadata = doc.get("metadata") or {}
    try:
        spec = ExperimentSpec.from_spec(
            doc.get("spec") or {}, max_bytes=DEFAULT_MAX_EXPERIMENT_BYTES
        )
    except InvalidSpec as exc:
        return None, None, f"{exc.field}: {exc}"
    pod = build_pod(
        str(metadata.get("name") or "experiment"),
        str(metadata.get("namespace") or "default"),
        "explain",
        spec,
    )
    return pod, spec.workload.demand_bytes(), None


# --------------------------------------------------------------------------------------------
# the explanation as data (the JSON output; the text output renders the same)


def _container_json(
    pod: PodFacts,
    container: ContainerFacts,
    on_nodes: Sequence[ContainerOnNode],
    observed: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    causes = None if container.problems else no_swap_causes(pod, container)
    return {
        "name": container.name,
        "role": container.role.value,
        "memoryRequest": container.memory_request,
        "memoryLimit": container.memory_limit,
        "requestFromLimit": container.request_from_limit,
        "problems": list(container.problems),
        "swapEligible": None if causes is None else not causes,
        "noSwapCauses": [str(c) for c in causes or []],
        "whyNoSwap": [c.sentence for c in causes or []],
        "nodes": [_on_node_json(result, observed) for result in on_nodes],
    }


def _cause(cause: Any) -> str | None:
    return None if cause is None else str(cause)


def _on_node_json(result: ContainerOnNode, observed: Mapping[str, Any] | None) -> dict[str, Any]:
    allowance = result.allowance
    prediction = result.prediction
    document: dict[str, Any] = {
        "node": result.node.name,
        "nodeProfile": result.node.describe(),
        "memoryLimitBytes": allowance.memory_bytes if allowance else None,
        "swapBytes": allowance.swap_bytes if allowance else None,
        "why": allowance.why if allowance else None,
        "noSwapCause": _cause(allowance.no_swap_cause) if allowance else None,
        "noSwapCauses": [str(c) for c in result.causes],
        "cgroupFiles": dict(result.cgroup_files),
        "docker": None
        if result.docker is None
        else {
            "flags": list(result.docker.flags),
            "cli": result.docker.cli(),
            "exact": result.docker.exact,
            "note": result.docker.note,
        },
        "workingSetBytes": result.working_set_bytes,
        "prediction": None
        if prediction is None
        else {
            "outcome": prediction.outcome.value,
            "capacityBytes": prediction.capacity_bytes,
            "explanation": prediction.explanation,
        },
        "notes": list(result.notes),
    }
    if observed is not None:
        document.update(observed)
    return document


def _profile_json(profile: NodeProfile) -> dict[str, Any]:
    return {
        "name": profile.name,
        "swapBehavior": profile.swap_behavior.value,
        "cgroupVersion": profile.cgroup_version.value,
        "memoryCapacityBytes": profile.memory_capacity_bytes,
        "swapCapacityBytes": profile.swap_capacity_bytes,
        "kubeletVersion": profile.kubelet_version,
        "transparentHugepages": profile.thp,
        "notes": list(profile.notes),
    }


def _pod_json(pod: PodFacts, containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "ref": pod.ref,
        "kind": pod.kind,
        "name": pod.name,
        "namespace": pod.namespace,
        "qosClass": pod.qos.value,
        "qosBasis": pod.qos_basis,
        "priority": pod.priority,
        "critical": pod.critical,
        "notes": list(pod.notes),
        "containers": containers,
    }


def explain_documents(
    docs: Sequence[Any],
    profiles: Sequence[NodeProfile],
    working_set: Mapping[str | None, int],
    *,
    static: bool = False,
    priority_classes: Mapping[str, int] | None = None,
    findings: Findings,
) -> dict[str, Any]:
    """Every workload in ``docs`` on every profile, as the JSON document."""
    classes = {**(priority_classes or {}), **priority_classes_in(docs)}
    objects: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for doc, pod, skip, own_set in _with_experiments(docs, findings):
        if skip is not None:
            skipped.append({"kind": skip.kind, "name": skip.name, "why": skip.why})
            continue
        assert pod is not None
        metadata = doc.get("metadata") or {}
        facts = pod_facts(
            str(doc.get("kind")),
            str(metadata.get("name") or ""),
            metadata.get("namespace"),
            pod,
            priority_classes=classes,
            static=static and doc.get("kind") == "Pod",
        )
        containers = []
        for container in facts.containers:
            findings.problems.extend(f"{facts.ref}: {p}" for p in container.problems)
            wanted = working_set.get(container.name, working_set.get(None))
            wanted = own_set.get(container.name) if wanted is None else wanted
            on_nodes = [explain_container(facts, container, p, wanted) for p in profiles]
            containers.append(_container_json(facts, container, on_nodes))
        objects.append(_pod_json(facts, containers))
    return {
        "objects": objects,
        "skipped": skipped,
        "nodes": [_profile_json(p) for p in profiles],
        "problems": list(findings.problems),
    }


Workload = tuple[Mapping[str, Any], Mapping[str, Any] | None, Skipped | None, dict[str, int]]


def _with_experiments(docs: Sequence[Any], findings: Findings) -> Iterator[Workload]:
    """:func:`pod_templates`, with each OOMExperiment turned into the Pod the operator makes and
    its workload's demand as the working set of that pod's container."""
    for doc, pod, skip in pod_templates(docs):
        if skip is None or skip.kind != OOMEXPERIMENT:
            yield doc, pod, skip, {}
            continue
        experiment_pod_doc, demand, invalid = experiment_pod(doc)
        if experiment_pod_doc is None or demand is None:
            findings.problems.append(f"{OOMEXPERIMENT}/{skip.name}: {invalid}")
            continue
        wrapped = {"kind": OOMEXPERIMENT, "metadata": doc.get("metadata") or {}}
        own = {c["name"]: demand for c in experiment_pod_doc["spec"]["containers"]}
        yield wrapped, experiment_pod_doc, None, own


# --------------------------------------------------------------------------------------------
# text


def render(document: Mapping[str, Any]) -> None:
    profiles = document.get("nodes") or []
    if profiles:
        out.print("nodes:")
        for profile in profiles:
            node_notes = "; ".join(profile["notes"])
            out.print(
                f"  {escape(_describe_profile(profile))}"
                + (f" ({escape(node_notes)})" if node_notes else "")
            )
    else:
        out.print(
            "no node given (--node, --from-cluster): swap shown as the pod and container rules "
            "decide it on any LimitedSwap cgroup v2 node with swap"
        )
    for obj in document["objects"]:
        where = f" in {obj['namespace']}" if obj.get("namespace") else ""
        out.print()
        out.print(
            f"[bold]{escape(obj['ref'])}[/]{escape(where)}: QoS {obj['qosClass']} "
            f"({escape(obj['qosBasis'])})"
        )
        if obj.get("critical"):
            out.print(f"  critical: {escape(obj['critical'])}")
        for note in obj["notes"]:
            out.print(f"  note: {escape(note)}")
        for container in obj["containers"]:
            _render_container(container)
    for skip in document.get("skipped") or []:
        out.print(f"skipped {escape(skip['kind'])}/{escape(skip['name'])}: {escape(skip['why'])}")
    for line in document.get("problems") or []:
        out.print(f"[bold red]fix:[/] {escape(line)}")


def _describe_profile(profile: Mapping[str, Any]) -> str:
    parts = [profile["swapBehavior"], f"cgroup {profile['cgroupVersion']}"]
    if profile["memoryCapacityBytes"] is not None:
        parts.append(f"memory {human(profile['memoryCapacityBytes'])}")
    swap = profile["swapCapacityBytes"]
    parts.append("swap unknown" if swap is None else f"swap {human(swap)}" if swap else "no swap")
    if profile["kubeletVersion"]:
        parts.append(f"kubelet {profile['kubeletVersion']}")
    if profile["transparentHugepages"]:
        parts.append(f"THP {profile['transparentHugepages']}")
    return f"{profile['name']}: {', '.join(parts)}"


def _size_text(value: int | None, *, defaulted: bool = False) -> str:
    if value is None:
        return "none"
    return format_binary(value) + (" (from the limit)" if defaulted else "")


def _render_container(container: Mapping[str, Any]) -> None:
    request = _size_text(container["memoryRequest"], defaulted=container["requestFromLimit"])
    sizes = f"memory request {request}, limit {_size_text(container['memoryLimit'])}"
    if container["problems"]:
        sizes = "memory as written cannot be meant"
    out.print(f"  {container['role']} [bold]{escape(container['name'])}[/]: {sizes}")
    for problem in container["problems"]:
        out.print(f"    [bold red]problem:[/] {escape(problem)}")
    if container["swapEligible"] is False:
        out.print(f"    swap: none on any node: {escape('; and '.join(container['whyNoSwap']))}")
    elif container["swapEligible"]:
        out.print(
            "    swap: a share on any LimitedSwap cgroup v2 node with swap (request / node memory "
            "x node swap)"
        )
    for on_node in container["nodes"]:
        _render_on_node(on_node)


def _render_on_node(result: Mapping[str, Any]) -> None:
    out.print(f"    on {escape(result['node'])}:")
    if result["why"]:
        swap = result["swapBytes"]
        amount = "unknown" if swap is None else f"{swap} B ({human(swap)})" if swap else "none"
        out.print(f"      swap {amount}: {escape(result['why'])}")
    files = result["cgroupFiles"]
    if files:
        out.print("      cgroup: " + ", ".join(f"{k} {v}" for k, v in files.items()))
    docker = result["docker"]
    if docker:
        same = "the same limits" if docker["exact"] else "not the same"
        note = f": {docker['note']}" if docker["note"] else ""
        out.print(f"      docker run {escape(docker['cli'])} ({same}{escape(note)})")
    prediction = result["prediction"]
    if prediction:
        colour = {"Completed": "green", "OOMKilled": "red"}.get(prediction["outcome"], "yellow")
        working = format_binary(result["workingSetBytes"])
        out.print(
            f"      working set {working}: [{colour}]{prediction['outcome']}[/]: "
            f"{escape(prediction['explanation'])}"
        )
    for note in result["notes"]:
        out.print(f"      note: {escape(note)}")
    if "checks" in result:
        _render_checks(result)


def _render_checks(result: Mapping[str, Any]) -> None:
    if result.get("unreadable"):
        out.print(f"      observed: not read: {escape(result['unreadable'])}")
        return
    if not result["checks"]:
        return
    out.print("      predicted vs observed:")
    for check in result["checks"]:
        mark = {True: "[green]agrees[/]", False: "[bold red]differs[/]", None: "-"}[check["agrees"]]
        out.print(
            f"        {check['file']}: predicted {check['predicted'] or '-'}, observed "
            f"{check['observed'] or '-'}: {mark}"
        )
    if result.get("disagreement"):
        out.print(f"      why: {escape(result['disagreement'])}")
