"""What the kubelet's version changes for this project's question: how much swap a container gets,
and whether the kubelet runs at all on its node's cgroup version.

Read from the sources of both versions the project runs (k8s.io/kubernetes v1.34.4 and v1.37.2 in
the Go module cache; paths under pkg/ and cmd/ of each):

| rule (source)                                                 | 1.34.4        | 1.37.2        |
|---------------------------------------------------------------|---------------|---------------|
| LimitedSwap share ``int(request / capacity.memory x            | same          | same          |
| swap.capacity)``, whole node, nothing reserved subtracted; 0  |               |               |
| when request > capacity (kubelet/kuberuntime/                 |               |               |
| kuberuntime_container_linux.go ``calcSwapForBurstablePods``)  |               |               |
| who gets swap: Burstable, not critical, memory request or     | same          | same          |
| limit set, request != limit, cgroup v2                        |               |               |
| (``GetContainerSwapBehavior``)                                |               |               |
| NoSwap on cgroup v1: memsw limit = memory limit               | same          | same          |
| (``ConfigureNoSwap``)                                         |               |               |
| LimitedSwap on cgroup v1: the kubelet refuses to start        | same          | same          |
| (cmd/kubelet/app/server.go)                                   |               |               |
| NodeSwap feature gate (features/kube_features.go)             | GA, locked on | GA, locked on |
| ``failCgroupV1`` default (kubelet/apis/config/v1beta1/        | false         | true          |
| defaults.go): with true the kubelet refuses a cgroup v1 host  |               |               |
| MemoryQoS feature gate (memory.min/low/high; the Memory QoS   | alpha, off    | beta, on      |
| rules' own table)                                             |               |               |
| InPlacePodVerticalScaling (resize)                            | beta, on      | GA, locked on |

So the swap a container gets is the same for both: a LimitedSwap prediction needs the node's
capacities and swap behaviour, not its kubelet version, and the e2e checks hold on both. What
differs is whether a kubelet starts on cgroup v1 (``failCgroupV1``, from 1.35) and whether Memory
QoS is on by default (from 1.37): :func:`kubelet_defaults` says which, by version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from oomlab.rules.nodes import NodeFacts
from oomlab.rules.results import CgroupVersion

_VERSION = re.compile(r"^v?(\d+)\.(\d+)")

FAIL_CGROUP_V1_FROM = (1, 35)
"""The first minor whose kubelet defaults to ``failCgroupV1: true``."""
MEMORY_QOS_BETA_FROM = (1, 37)
"""The first minor where the MemoryQoS gate is beta and on by default."""
RESIZE_GA_FROM = (1, 35)


def kubelet_minor(version: str | None) -> tuple[int, int] | None:
    """``v1.34.4`` -> (1, 34); None when absent or not a version."""
    match = _VERSION.match((version or "").strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True)
class KubeletDefaults:
    """A kubelet version's defaults where they matter here (the module's table)."""

    fail_cgroup_v1: bool
    memory_qos_on: bool
    resize_ga: bool
    limited_swap_formula: str = "request / capacity.memory x swap.capacity"
    """The same in every version the project runs (see the table)."""


def kubelet_defaults(version: str | None) -> KubeletDefaults | None:
    minor = kubelet_minor(version)
    if minor is None:
        return None
    return KubeletDefaults(
        fail_cgroup_v1=minor >= FAIL_CGROUP_V1_FROM,
        memory_qos_on=minor >= MEMORY_QOS_BETA_FROM,
        resize_ga=minor >= RESIZE_GA_FROM,
    )


def fail_cgroup_v1(node: NodeFacts, cgroup: CgroupVersion | None = None) -> bool | None:
    """The node's kubelet ``failCgroupV1``: as its label states it; else, for a kubelet running on
    cgroup v1 from 1.35 on, false (with true it would not have started); else the version's
    default. None when nothing says. ``cgroup``: the node's cgroup version when known better than
    its label (a workload read it)."""
    cgroup = cgroup or node.cgroup_version
    if node.fail_cgroup_v1 is not None:
        return node.fail_cgroup_v1
    defaults = kubelet_defaults(node.kubelet_version)
    if defaults is None:
        return None
    if cgroup == CgroupVersion.V1 and defaults.fail_cgroup_v1:
        return False
    return defaults.fail_cgroup_v1


def cgroup_v1_note(node: NodeFacts, cgroup: CgroupVersion | None = None) -> str | None:
    """What a cgroup v1 node's kubelet version and ``failCgroupV1`` mean for users; None on other
    nodes (cgroup v2, or unknown). ``cgroup`` as for :func:`fail_cgroup_v1`."""
    cgroup = cgroup or node.cgroup_version
    if cgroup != CgroupVersion.V1:
        return None
    version = node.kubelet_version or "of unknown version"
    # Only a stated false survives an upgrade; 1.34's default false does not.
    stated = node.fail_cgroup_v1
    defaults = kubelet_defaults(node.kubelet_version)
    if defaults is not None and defaults.fail_cgroup_v1:
        how = (
            f"kubelet {version} runs on this cgroup v1 node only because its configuration sets "
            "failCgroupV1: false (the default is true from 1.35, and then the kubelet refuses to "
            "start on cgroup v1)"
        )
    elif stated is False:
        how = (
            f"kubelet {version} runs on cgroup v1 with failCgroupV1: false, so it keeps starting "
            "after an upgrade to 1.35+ (where the default becomes true and a cgroup v1 host is "
            "refused)"
        )
    else:
        how = (
            f"kubelet {version} runs on cgroup v1; from 1.35 a kubelet refuses cgroup v1 unless "
            "its configuration sets failCgroupV1: false"
        )
    return (
        f"{how}. Upstream keeps cgroup v1 in maintenance mode and will remove it; on cgroup v1 "
        "the kubelet gives containers no swap at all (NoSwap: memsw limit = memory limit, and "
        "LimitedSwap refuses to start), so move nodes to cgroup v2 to use swap."
    )
