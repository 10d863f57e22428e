"""Kubernetes swap for real: experiments on the cluster's LimitedSwap node (cgroup v2; on this
machine the qemu guest of hack/vm-node.sh, or the kind node inside hack/kind-vm.sh's guest),
checked against what the kernel set.

The check that can fail: the swap limit the workload reads from its own cgroup
(``memory.swap.max``) must equal the operator's prediction to the byte, in whole pages, from the
node's own ``capacity.memory`` and ``nodeInfo.swap.capacity``; the test also computes it itself
from the Node object. The checks run on the cluster's own LimitedSwap node, or with
OOMLAB_E2E_KUBELET=v1.34.4 (make test-e2e-old-kubelet) on the second VM node of
hack/vm-node-old.sh, whose kubelet is v1.34.4 on the same guest kernel; the last test runs on
every LimitedSwap node present, whatever its kubelet version.
Skipped when the cluster has no LimitedSwap node, unless
OOMLAB_REQUIRE_LIMITED_SWAP=1 (CI with the VM node), where that is a failure. The Docker side is
observed on this host's engine with ``oomlab parity`` (the memhog image must be there).

The swap share depends on the node (request / capacity.memory x swap.capacity), so the expected
outcomes are computed from the Node object, never from one node's numbers:
- Burstable seed, request 400Mi, limit 500Mi, 1000Mi allocated. On the VM node (1,531,936,768 B
  memory, 2,147,479,552 B swap) the share is 587,960,320 B (about 561 MiB): limit + swap holds
  the ~1012 MiB workload with 49 MiB to spare, it completes and matches Docker (500m/1g). On the
  kind guest's node (about 3.8 GiB memory, 2 GiB swap) the share is about 209 MiB: it must be
  OOM-killed, and parity must be Mismatch because LimitedSwap gives less swap than Docker.
- the leak, request 100Mi, limit 200Mi, grows to 600Mi: far past limit + swap on either node, so
  it must be killed, after getting past its 200 MiB limit (into swap): the allocation it reached
  is asserted to be above the limit and at most limit + swap.
Timeouts are about 3x what emulation took (pod create -> Running 8-41 s, a 1000Mi bulk run
35-45 s under TCG).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from cluster import Namespace, experiment, kubectl, runtime_classes, sample, with_kubelet_of

from oomlab.rules.nodes import node_facts_from_node

MiB = 2**20
PAGE = 4096
TOO_CLOSE_TO_CALL = 32 * MiB
"""Limit + swap share this near the allocation: the outcome is not asserted (interpreter and
page-cache overhead, about 12 MiB, decide it)."""
RUN_TIMEOUT_S = 360
PARITY_TIMEOUT_S = 300


def expected_swap_limit(node: dict[str, Any], request_bytes: int) -> int:
    """The kubelet's LimitedSwap share from the Node object, as memory.swap.max reads it back."""
    facts = node_facts_from_node(node)
    assert facts.memory_capacity_bytes and facts.swap_capacity_bytes, facts
    share = int(request_bytes / facts.memory_capacity_bytes * facts.swap_capacity_bytes)
    return share // PAGE * PAGE


def expected_outcome(limit_bytes: int, swap_share_bytes: int, allocated_bytes: int) -> str | None:
    """Completed when limit + swap share holds the allocation with room, OOMKilled when it falls
    short by more than that room, None when too close to call."""
    room = limit_bytes + swap_share_bytes - allocated_bytes
    if abs(room) < TOO_CLOSE_TO_CALL:
        return None
    return "Completed" if room > 0 else "OOMKilled"


def test_expected_outcome_on_both_nodes_of_this_machine() -> None:
    def node(memory: int, swap: int) -> dict[str, Any]:
        status = {"capacity": {"memory": str(memory)}, "nodeInfo": {"swap": {"capacity": swap}}}
        return {"status": status}

    vm_node = node(1_531_936_768, 2_147_479_552)  # hack/vm-node.sh, -m 1536
    kind_node = node(4_103_299_072, 2_147_479_552)  # hack/kind-vm.sh, -m 4096
    seed = (500 * MiB, 1000 * MiB)
    assert expected_swap_limit(vm_node, 400 * MiB) == 587_960_320
    assert (
        expected_outcome(seed[0], expected_swap_limit(vm_node, 400 * MiB), seed[1]) == "Completed"
    )
    assert expected_swap_limit(kind_node, 400 * MiB) == 219_508_736
    assert (
        expected_outcome(seed[0], expected_swap_limit(kind_node, 400 * MiB), seed[1]) == "OOMKilled"
    )
    assert expected_outcome(seed[0], 510 * MiB, seed[1]) is None


def run(ns: Namespace, body: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Run the experiment on the LimitedSwap ``node`` (asking for its kubelet when it is tainted
    for it); its final status."""
    body = {**body, "spec": with_kubelet_of(body["spec"], node)}
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


def docker_completes(ns: Namespace, name: str, *, mismatch_because: str | None) -> None:
    """The Docker side completes (the seed's flags give it 500 MiB of swap); parity is Match,
    or Mismatch with ``mismatch_because`` in its explanation."""
    status = observe_docker(ns, name)
    assert status["docker"]["observed"]["outcome"] == "Completed", status["docker"]
    parity = status["parity"]
    if mismatch_because is None:
        assert parity["result"] == "Match", parity
    else:
        assert parity["result"] == "Mismatch", parity
        assert mismatch_because in parity["explanation"], parity


def ended_on_the_node(
    ns: Namespace, body: dict[str, Any], node: dict[str, Any], phase: str
) -> dict[str, Any]:
    """Run the experiment, check it ended in ``phase`` on the LimitedSwap ``node``; its
    status.kubernetes."""
    status = run(ns, body, node)
    assert status["phase"] == phase, status
    return on_the_node(status, node)


def on_the_node(status: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """status.kubernetes, checked to come from the LimitedSwap ``node`` and its facts."""
    k8s: dict[str, Any] = status["kubernetes"]
    assert k8s["nodeName"] == node["metadata"]["name"]
    assert (k8s["swapBehavior"], k8s["cgroupVersion"]) == ("LimitedSwap", "v2")
    assert k8s.get("transparentHugepages") == node["metadata"]["labels"].get("oomlab.dev/thp")
    return k8s


def test_burstable_seed_gets_the_predicted_swap_and_the_outcome_it_implies(
    ns: Namespace, limited_swap_node: dict[str, Any]
) -> None:
    swap = expected_swap_limit(limited_swap_node, 400 * MiB)
    assert swap > 0
    expected = expected_outcome(500 * MiB, swap, 1000 * MiB)
    status = run(ns, sample("seed-limited-swap"), limited_swap_node)
    k8s = on_the_node(status, limited_swap_node)
    assert status["phase"] in ("Completed", "OOMKilled"), status
    if expected:
        assert status["phase"] == expected, status
    assert k8s["qosClass"] == "Burstable"
    if status["phase"] == "Completed":
        assert k8s["allocatedBytes"] == 1000 * MiB
    else:
        assert k8s["exitCode"] == 137
        assert 500 * MiB < k8s["allocatedBytes"] < 1000 * MiB
    assert k8s["swapLimitBytes"] == k8s["predictedSwapBytes"] == swap
    assert k8s["swapLimitAgrees"] is True
    if expected:
        assert k8s["predictedOutcome"] == expected
    table = kubectl("get", "oomx", "-n", ns.name).stdout.splitlines()
    header = table[0].split()
    assert header[header.index("NODE") + 1] == "SWAP"
    assert "LimitedSwap" in table[1].split()

    docker_completes(
        ns,
        "seed-limited-swap",
        mismatch_because=None if status["phase"] == "Completed" else "LimitedSwap gives only",
    )


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

    docker_completes(ns, "seed-limited-swap-guaranteed", mismatch_because="Guaranteed QoS")


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
    if runtime_class not in runtime_classes():
        pytest.skip(
            f"allowed skip: this cluster has no RuntimeClass {runtime_class} (kind's node image"
            " has no crun; the VM node offers runc and crun)"
        )
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


def test_every_limited_swap_node_sets_the_predicted_swap_limit_whatever_its_kubelet(
    ns: Namespace, limited_swap_nodes: list[dict[str, Any]]
) -> None:
    """The same small Burstable pod pinned to each LimitedSwap node in turn (a node tainted for its
    kubelet version is asked for by that version): memory.swap.max as the workload reads it equals
    the operator's prediction and the test's own, and the status names that node's kubelet. The
    LimitedSwap rules are the same in 1.34 and 1.37 (rules/kubelet_versions.py), so the one
    formula must hold on both."""
    seen: dict[str, str] = {}
    for node in limited_swap_nodes:
        name = node["metadata"]["name"]
        spec: dict[str, Any] = {
            "swapBehavior": "LimitedSwap",
            "nodeSelector": {"kubernetes.io/hostname": name},
            "workload": {
                "mode": "bulk",
                "size": "64Mi",
                "chunk": "32Mi",
                "imagePullPolicy": "Never",
            },
            "resources": {"requests": {"memory": "100Mi"}, "limits": {"memory": "200Mi"}},
            "timeoutSeconds": RUN_TIMEOUT_S,
        }
        k8s = ended_on_the_node(ns, experiment(f"kubelet-{name}", spec), node, "Completed")
        swap = expected_swap_limit(node, 100 * MiB)
        assert k8s["swapLimitBytes"] == k8s["predictedSwapBytes"] == swap > 0, (name, k8s)
        assert k8s["swapLimitAgrees"] is True
        assert k8s["kubeletVersion"] == node["status"]["nodeInfo"]["kubeletVersion"]
        seen[name] = k8s["kubeletVersion"]
    print(f"\nswap.max = prediction on every LimitedSwap node: {seen}")
