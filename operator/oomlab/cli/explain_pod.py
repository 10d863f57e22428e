"""``oomlab explain pod/NAME``: a live pod, its node and, with ``--cgroup``, the container's own
cgroup files, read through the API (GETs and the exec connect only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from oomlab.cli.errors import fail
from oomlab.cli.explain_output import (
    Findings,
    _container_json,
    _pod_json,
    _profile_json,
)
from oomlab.rules.explain import (
    CONFIG_MIRROR_ANNOTATION,
    ContainerFacts,
    ContainerOnNode,
    FileCheck,
    NodeProfile,
    cgroup_version_of,
    compare_cgroup_files,
    explain_container,
    pod_facts,
    profile_from_node,
)
from oomlab.rules.results import CgroupVersion

# --------------------------------------------------------------------------------------------
# live


def _parse_target(target: str) -> str:
    kind, sep, name = target.partition("/")
    if not sep:
        return target
    if kind.lower() not in ("pod", "pods", "po"):
        fail(f"{target!r}: explain reads pods (pod/NAME); for a workload use -f with its manifest")
    if not name:
        fail(f"{target!r}: name the pod, as pod/NAME")
    return name


def _current_namespace() -> str:
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError):
        return "default"
    return str(((active or {}).get("context") or {}).get("namespace") or "default")


def _disagreement(checks: Sequence[FileCheck], memory_qos: bool) -> str:
    differing = [c.file for c in checks if c.agrees is False]
    if not differing:
        return ""
    why = f"{', '.join(differing)} differ from the kubelet's rule as read here"
    if "memory.high" in differing and memory_qos:
        why += "; the kubelet's MemoryQoS feature gate is on, which writes memory.high"
    return why


def explain_live_pod(
    name: str,
    namespace: str,
    *,
    read_cgroup: bool,
    working_set: Mapping[str | None, int],
    findings: Findings,
) -> dict[str, Any]:
    from oomlab.cli import explain_live as live

    api = live.audited_client()
    reader = live.ClusterReader(api)
    try:
        pod = reader.pod(namespace, name)
        document = _explain_read_pod(
            reader, pod, read_cgroup=read_cgroup, working_set=working_set, findings=findings
        )
    finally:
        requests = [{"method": r.method, "path": r.path} for r in api.requests]
    document["apiRequests"] = requests
    return document


def _explain_read_pod(
    reader: Any,
    pod: Mapping[str, Any],
    *,
    read_cgroup: bool,
    working_set: Mapping[str | None, int],
    findings: Findings,
) -> dict[str, Any]:
    metadata = pod.get("metadata") or {}
    namespace, name = str(metadata.get("namespace")), str(metadata.get("name"))
    notes: list[str] = []
    profile, kubelet_config = _live_profile(reader, (pod.get("spec") or {}).get("nodeName"), notes)
    facts = pod_facts("Pod", name, namespace, pod)
    states = _container_states(pod)
    containers = []
    for container in facts.containers:
        findings.problems.extend(f"{facts.ref}: {p}" for p in container.problems)
        wanted = working_set.get(container.name, working_set.get(None))
        if profile is None:
            containers.append(_container_json(facts, container, []))
            continue
        reading = (
            _read_container(reader, namespace, name, container, states) if read_cgroup else None
        )
        if reading is not None and profile.cgroup_version == CgroupVersion.UNKNOWN:
            seen = cgroup_version_of(reading.files)
            if seen != CgroupVersion.UNKNOWN:
                profile = _with_cgroup(profile, seen)
        result = explain_container(facts, container, profile, wanted)
        observed = None
        if reading is not None:
            observed = _observed(result, reading, kubelet_config)
            if observed["disagreement"]:
                findings.disagreements.append(
                    f"{facts.ref} {container.name}: {observed['disagreement']}"
                )
        containers.append(_container_json(facts, container, [result], observed))
    if CONFIG_MIRROR_ANNOTATION in (metadata.get("annotations") or {}):
        notes.append("a mirror pod: the kubelet runs it from a static manifest")
    return {
        "objects": [_pod_json(facts, containers)],
        "skipped": [],
        "nodes": [] if profile is None else [_profile_json(profile)],
        "problems": list(findings.problems),
        "notes": notes,
    }


def _live_profile(
    reader: Any, node_name: str | None, notes: list[str]
) -> tuple[NodeProfile | None, dict[str, Any] | None]:
    """The pod's node as a profile (its labels, else its kubelet's configz), and that configz."""
    from oomlab.cli import explain_live as live

    if not node_name:
        notes.append("the pod is not scheduled yet: no node to explain it on")
        return None, None
    node = reader.node(node_name)
    if node is None:
        notes.append(f"node {node_name} could not be read (RBAC: get nodes)")
        return None, None
    kubelet_config = None
    behavior = None
    if profile_from_node(node).notes:  # no swap-behaviour label: ask the kubelet itself
        kubelet_config, why_not = reader.kubelet_config(node_name)
        behavior = live.swap_behavior_from_config(kubelet_config)
        if why_not:
            notes.append(why_not)
    return profile_from_node(node, swap_behavior_from_config=behavior), kubelet_config


def _observed(
    result: ContainerOnNode, reading: Any, kubelet_config: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The container's own cgroup files beside the prediction, and why they differ if they do."""
    from dataclasses import asdict

    from oomlab.cli import explain_live as live

    checks = [] if reading.unreadable else compare_cgroup_files(result.cgroup_files, reading.files)
    return {
        "observed": dict(reading.files),
        "unreadable": reading.unreadable,
        "checks": [asdict(c) for c in checks],
        "agrees": None if not checks else all(c.agrees is not False for c in checks),
        "disagreement": _disagreement(checks, live.memory_qos_on(kubelet_config)),
    }


def _with_cgroup(profile: NodeProfile, version: CgroupVersion) -> NodeProfile:
    from dataclasses import replace

    return replace(
        profile,
        cgroup_version=version,
        notes=(*profile.notes, f"cgroup {version} as the container's own files show"),
    )


def _container_states(pod: Mapping[str, Any]) -> dict[str, str]:
    """Each container's state (running, waiting, terminated) from the pod's status."""
    status = pod.get("status") or {}
    states: dict[str, str] = {}
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for entry in status.get(key) or []:
            state = entry.get("state") or {}
            states[str(entry.get("name"))] = next(iter(state), "unknown")
    return states


def _read_container(
    reader: Any, namespace: str, pod: str, container: ContainerFacts, states: Mapping[str, str]
) -> Any:
    from oomlab.cli import explain_live as live

    state = states.get(container.name, "unknown")
    if state != "running":
        return live.CgroupReading(
            unreadable=f"the container is {state}, not running: its cgroup can only be read while "
            "it runs"
        )
    return live.read_cgroup_files(reader, namespace, pod, container.name)


def _profiles_from_cluster() -> tuple[list[NodeProfile], dict[str, int], list[dict[str, str]]]:
    from oomlab.cli import explain_live as live

    api = live.audited_client()
    reader = live.ClusterReader(api)
    profiles = []
    for node in reader.nodes():
        labelled = profile_from_node(node)
        behavior = None
        if labelled.notes:
            kubelet_config, _ = reader.kubelet_config(labelled.name)
            behavior = live.swap_behavior_from_config(kubelet_config)
        profiles.append(profile_from_node(node, swap_behavior_from_config=behavior))
    classes = reader.priority_classes()
    return profiles, classes, [{"method": r.method, "path": r.path} for r in api.requests]
