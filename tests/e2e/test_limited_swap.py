"""Kubernetes swap for real: experiments on the cluster's LimitedSwap node (cgroup v2; on this
machine the qemu guest of hack/vm-node.sh), checked against what the kernel set.

The check that can fail: the swap limit the workload reads from its own cgroup
(``memory.swap.max``) must equal the operator's prediction to the byte, in whole pages, from the
node's own ``capacity.memory`` and ``nodeInfo.swap.capacity``; the test also computes it itself
from the Node object. Skipped when the cluster has no LimitedSwap node, unless
OOMLAB_REQUIRE_LIMITED_SWAP=1 (CI with the VM node), where that is a failure. The Docker side is
observed on this host's engine with ``oomlab parity`` (the memhog image must be there).

Sizes and margins, on the VM node (1,531,936,768 B memory, 2,147,479,552 B swap, THP madvise):
- Burstable seed, request 400Mi, limit 500Mi: swap share 587,960,320 B (about 561 MiB), so
  limit + swap is about 1061 MiB for a ~1012 MiB workload: 49 MiB (5 %) to spare.
- the leak, request 100Mi, limit 200Mi: swap share about 140 MiB; it grows to 600Mi, 260 MiB
  past limit + swap, so it must be killed, and it must get past its 200 MiB limit before (it
  is killed near 340 MiB minus the interpreter): the allocation it reached is asserted to be
  above the limit and at most limit + swap.
Timeouts are about 3x what emulation took (pod create -> Running 8-41 s, a 1000Mi bulk run
35-45 s under TCG).
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from cluster import Namespace, experiment, kubectl, sample
from kubernetes import client

from oomlab.nodes import node_facts_from_node

MiB = 2**20
PAGE = 4096
RUN_TIMEOUT_S = 360
PARITY_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def limited_swap_node(api: client.ApiClient) -> dict[str, Any]:
    """The Ready node labelled oomlab.dev/swap-behavior=LimitedSwap, as the API returns it."""
    nodes = client.CoreV1Api(api).list_node(label_selector="oomlab.dev/swap-behavior=LimitedSwap")
    for node in nodes.items:
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        if ready:
            found: dict[str, Any] = api.sanitize_for_serialization(node)
            return found
    reason = "no Ready LimitedSwap node in the cluster: hack/vm-node.sh up adds one"
    if os.environ.get("OOMLAB_REQUIRE_LIMITED_SWAP") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def expected_swap_limit(node: dict[str, Any], request_bytes: int) -> int:
    """The kubelet's LimitedSwap share from the Node object, as memory.swap.max reads it back."""
    facts = node_facts_from_node(node)
    assert facts.memory_capacity_bytes and facts.swap_capacity_bytes, facts
    share = int(request_bytes / facts.memory_capacity_bytes * facts.swap_capacity_bytes)
    return share // PAGE * PAGE


def run(ns: Namespace, body: dict[str, Any]) -> dict[str, Any]:
    name = body["metadata"]["name"]
    started = time.monotonic()
    created = ns.apply(body)
    # The API server prunes fields its CRD does not know: an older CRD would send this anywhere.
    assert created["spec"].get("swapBehavior") == body["spec"].get("swapBehavior"), (
        "the cluster's CRD dropped spec.swapBehavior: apply manifests/crd/ from this tree"
    )
    status = ns.wait_terminal(name, timeout=RUN_TIMEOUT_S)
    k8s = status.get("kubernetes") or {}
    # the numbers the report quotes (pytest -s shows them)
    print(
        f"\n{name}: {status.get('phase')} in {time.monotonic() - started:.0f}s from apply "
        f"(workload {k8s.get('durationSeconds')}s) on {k8s.get('nodeName')}: "
        f"swap.max {k8s.get('swapLimitBytes')} vs predicted {k8s.get('predictedSwapBytes')}, "
        f"allocated {k8s.get('allocatedBytes')}, THP {k8s.get('transparentHugepages')}"
    )
    return status


def observe_docker(ns: Namespace, name: str) -> dict[str, Any]:
    """The Docker side (spec.docker) run on this host's engine and handed to the operator."""
    proc = ns.oomlab_parity(name, timeout=PARITY_TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = ns.status(name)
    assert status["docker"]["source"] == "Observed", status["docker"]
    return status


def ended_on_the_node(
    ns: Namespace, body: dict[str, Any], node: dict[str, Any], phase: str
) -> dict[str, Any]:
    """Run the experiment, check it ended in ``phase`` on the LimitedSwap ``node``; its
    status.kubernetes."""
    status = run(ns, body)
    assert status["phase"] == phase, status
    k8s: dict[str, Any] = status["kubernetes"]
    assert k8s["nodeName"] == node["metadata"]["name"]
    assert (k8s["swapBehavior"], k8s["cgroupVersion"]) == ("LimitedSwap", "v2")
    assert k8s.get("transparentHugepages") == node["metadata"]["labels"].get("oomlab.dev/thp")
    return k8s


def test_burstable_seed_gets_the_predicted_swap_and_matches_docker(
    ns: Namespace, limited_swap_node: dict[str, Any]
) -> None:
    k8s = ended_on_the_node(ns, sample("seed-limited-swap"), limited_swap_node, "Completed")
    assert k8s["qosClass"] == "Burstable"
    assert k8s["allocatedBytes"] == 1000 * MiB
    expected = expected_swap_limit(limited_swap_node, 400 * MiB)
    assert expected > 0
    assert k8s["swapLimitBytes"] == k8s["predictedSwapBytes"] == expected
    assert k8s["swapLimitAgrees"] is True
    assert k8s["predictedOutcome"] == "Completed"
    table = kubectl("get", "oomx", "-n", ns.name).stdout.splitlines()
    header = table[0].split()
    assert header[header.index("NODE") + 1] == "SWAP"
    assert "LimitedSwap" in table[1].split()

    status = observe_docker(ns, "seed-limited-swap")
    assert status["docker"]["observed"]["outcome"] == "Completed"
    assert status["parity"]["result"] == "Match", status["parity"]


def test_guaranteed_seed_gets_no_swap_and_is_oom_killed(
    ns: Namespace, limited_swap_node: dict[str, Any]
) -> None:
    k8s = ended_on_the_node(
        ns, sample("seed-limited-swap-guaranteed"), limited_swap_node, "OOMKilled"
    )
    assert k8s["qosClass"] == "Guaranteed"
    assert k8s["exitCode"] == 137
    assert k8s["swapLimitBytes"] == k8s["predictedSwapBytes"] == 0
    assert k8s["swapLimitAgrees"] is True
    assert k8s["allocatedBytes"] < 500 * MiB

    status = observe_docker(ns, "seed-limited-swap-guaranteed")
    assert status["docker"]["observed"]["outcome"] == "Completed"
    assert status["parity"]["result"] == "Mismatch", status["parity"]
    assert "Guaranteed QoS" in status["parity"]["explanation"]


def test_streaming_fix_completes_on_the_limited_swap_node(
    ns: Namespace, limited_swap_node: dict[str, Any]
) -> None:
    k8s = ended_on_the_node(
        ns, sample("streaming", swapBehavior="LimitedSwap"), limited_swap_node, "Completed"
    )
    assert k8s["processedBytes"] == 1000 * MiB
    assert k8s["swapLimitAgrees"] is True


def test_leak_past_limit_and_swap_share_is_killed_after_using_swap(
    ns: Namespace, limited_swap_node: dict[str, Any]
) -> None:
    spec = {
        "swapBehavior": "LimitedSwap",
        "workload": {"mode": "leak", "size": "600Mi", "step": "10Mi", "interval": 0.05},
        "resources": {"requests": {"memory": "100Mi"}, "limits": {"memory": "200Mi"}},
        "timeoutSeconds": RUN_TIMEOUT_S,
    }
    k8s = ended_on_the_node(
        ns, experiment("leak-limited-swap", spec), limited_swap_node, "OOMKilled"
    )
    swap = expected_swap_limit(limited_swap_node, 100 * MiB)
    assert k8s["swapLimitBytes"] == k8s["predictedSwapBytes"] == swap > 0
    # past the memory limit: the pages above it were in swap
    assert 200 * MiB < k8s["allocatedBytes"] <= 200 * MiB + swap


@pytest.mark.parametrize("runtime_class", ["runc", "crun"])
def test_runc_and_crun_classes_both_get_the_predicted_swap_limit(
    ns: Namespace, limited_swap_node: dict[str, Any], runtime_class: str
) -> None:
    """The same small Burstable pod under each RuntimeClass the VM node offers: the runtime
    writes the kubelet's memory.swap.max either way (crun refuses every container on the v1
    host, so this is where it is compared)."""
    spec = {
        "swapBehavior": "LimitedSwap",
        "runtimeClassName": runtime_class,
        "workload": {"mode": "bulk", "size": "64Mi", "chunk": "32Mi", "imagePullPolicy": "Never"},
        "resources": {"requests": {"memory": "100Mi"}, "limits": {"memory": "200Mi"}},
        "timeoutSeconds": RUN_TIMEOUT_S,
    }
    k8s = ended_on_the_node(
        ns, experiment(f"class-{runtime_class}", spec), limited_swap_node, "Completed"
    )
    assert (k8s["runtimeClassName"], k8s["runtimeHandler"]) == (runtime_class, runtime_class)
    swap = expected_swap_limit(limited_swap_node, 100 * MiB)
    assert k8s["swapLimitBytes"] == k8s["predictedSwapBytes"] == swap > 0
    assert k8s["swapLimitAgrees"] is True
