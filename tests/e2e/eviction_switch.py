"""For the node-pressure cases that need the kubelet to evict before the kernel swaps: the VM
node's evictionHard memory.available raised above its reclaim point for a while, through a
drop-in in the kubelet's --config-dir (/run/oomlab/kubelet.conf.d, tmpfs) and a kubelet
restart, with the node's oomlab.dev/eviction-hard-memory label (the deployed operator's source)
set to match; put back afterwards. The standing config keeps 100Mi: above the reclaim point,
allocatable would fall below what a seed swap-cost twin asks for."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from oomlab.cli.node_switch import privileged_helper_pod
from oomlab.rules.pressure_spec import EVICTION_HARD_LABEL

DROPIN = "/run/oomlab/kubelet.conf.d/60-oomlab-pressure.conf"
HELPER = "oomlab-eviction-switch"
STANDING = "100Mi"
"""hack/vm/kubelet-config.yaml's evictionHard memory.available."""
TRANSITION = "30s"
"""evictionPressureTransitionPeriod while switched: MemoryPressure clears in 30 s, not 5 min."""
SWITCH_TIMEOUT_S = 300.0


def dropin(threshold: str) -> str:
    return (
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        f"evictionHard:\n  memory.available: {threshold}\n  nodefs.available: 2%\n"
        "  nodefs.inodesFree: 2%\n  imagefs.available: 2%\n"
        f"evictionPressureTransitionPeriod: {TRANSITION}\n"
    )


def _running_threshold(core: client.CoreV1Api, node: str) -> str | None:
    try:
        raw = core.connect_get_node_proxy_with_path(node, "configz", _preload_content=False)
        config = json.loads(raw.data)["kubeletconfig"]
    except (ApiException, ValueError, KeyError):
        return None  # the kubelet is restarting
    hard: str | None = (config.get("evictionHard") or {}).get("memory.available")
    return hard


def _ready(core: client.CoreV1Api, node: str) -> bool:
    conditions = core.read_node(node).status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def switch(core: client.CoreV1Api, node: str, threshold: str, namespace: str) -> None:
    """Run the kubelet of ``node`` with ``threshold`` (STANDING: its own config), wait until its
    /configz says so and the node is Ready, and label the node to match."""
    script = (
        f"rm -f {DROPIN} && systemctl restart kubelet"
        if threshold == STANDING
        else f"mkdir -p {DROPIN.rsplit('/', 1)[0]} && printf '%s' '{dropin(threshold)}' > {DROPIN}"
        " && systemctl restart kubelet"
    )
    pod = privileged_helper_pod(
        HELPER, namespace, node, image="oomlab/memhog:dev", component="eviction-switch",
        labels={}, volumes=[], host_pid=True,
        container={"name": "switch", "command": ["nsenter", "-t", "1", "-m", "-u", "-i", "-n",
                                                 "-p", "--", "sh", "-c", script]},
    )  # fmt: skip
    with contextlib.suppress(ApiException):
        core.delete_namespaced_pod(HELPER, namespace, grace_period_seconds=0)
    deadline = time.monotonic() + SWITCH_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            core.create_namespaced_pod(namespace, pod)
            break
        except ApiException as exc:
            if exc.status != 409:  # the previous helper is still going away
                raise
            time.sleep(2)
    while time.monotonic() < deadline:
        if _running_threshold(core, node) == threshold and _ready(core, node):
            break
        time.sleep(3)
    else:
        raise AssertionError(f"{node}'s kubelet did not come back with {threshold} Ready")
    core.patch_node(node, {"metadata": {"labels": {EVICTION_HARD_LABEL: threshold}}})
    with contextlib.suppress(ApiException):
        core.delete_namespaced_pod(HELPER, namespace, grace_period_seconds=0)


@contextlib.contextmanager
def eviction_threshold(core: client.CoreV1Api, node: str, threshold: str) -> Iterator[None]:
    """``threshold`` on ``node`` for the block; the standing one afterwards, whatever happens."""
    try:
        switch(core, node, threshold, "default")
        yield
    finally:
        switch(core, node, STANDING, "default")
