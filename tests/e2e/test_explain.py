"""``kubectl oomlab explain pod/NAME`` against the kernel, and upstream's swap e2e cases done right.

Upstream's node e2e swap test (``test/e2e_node/swap_test.go``) builds Burstable and Guaranteed
resources and never attaches them (every case runs a BestEffort pod), and its LimitedSwap check
``Or(>= expected-4Ki, <= expected+4Ki)`` is true for every number. Here the same five cases
(tests/unit/fixtures/explain/upstream-cases.yaml: BestEffort, Burstable, Burstable with request ==
limit, Guaranteed, critical) run as real pods with their resources, on the LimitedSwap VM node and
on the cgroup v1 NoSwap host node; ``kubectl oomlab explain pod/NAME --cgroup --json`` predicts
each container's cgroup files and reads them through the exec API, and the test asserts that
every predicted file equals the kernel's to the byte (so to the page), that the swap limit also
equals the kubelet's formula computed here from the Node object, and that the command sent only
GET requests (its own audit of every request its API client made).

The sixth case upstream's IsCriticalPod names, a static pod, cannot be made through the API: it
needs a manifest in the kubelet's static pod directory on the node. Its rule is the mirror pod's
(the ``kubernetes.io/config.mirror`` annotation), covered by the unit tier; the local cluster runs
its control plane as host processes, so it has no mirror pods to read.

The pods sleep (``sleep 600`` in the workload image, no pull) and are deleted at the end; pod start
on the emulated VM node takes 8-40 s, so waits allow about 4 minutes.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster import kubeconfig, kubectl_bin, with_kubelet_of
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab import scratch_namespace
from oomlab.rules.nodes import node_facts_from_node, placement_for
from oomlab.rules.semantics import SwapBehavior

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "explain"
RUNNING_TIMEOUT_S = 240
PAGE = 4096
V1_UNLIMITED = 9_223_372_036_854_771_712
READ_ONLY_PATHS = ("/api/v1/namespaces/", "/api/v1/nodes/")


def upstream_cases() -> list[dict[str, Any]]:
    docs = list(yaml.safe_load_all((FIXTURES / "upstream-cases.yaml").read_text()))
    return [d for d in docs if d]


def placed(
    pod: dict[str, Any], behavior: SwapBehavior, prefix: str, node: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The pod sent to nodes of ``behavior`` (the project's own placement terms), and to
    ``node``'s kubelet when that node is tainted for it; renamed."""
    body = copy.deepcopy(pod)
    body["metadata"]["name"] = f"{prefix}-{body['metadata']['name']}"
    spec = body["spec"]
    placement = placement_for(behavior)
    spec.update(placement.pod_fields(spec.get("nodeSelector", {}), spec.get("tolerations", [])))
    if node is not None:
        body["spec"] = with_kubelet_of(spec, node)
    return body


def pod_named(name: str, **spec: Any) -> dict[str, Any]:
    """A pod of this module's with ``spec``: it stops within a second when deleted."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 1, **spec},
    }


@pytest.fixture(scope="module")
def namespace(api: client.ApiClient) -> Iterator[str]:
    with scratch_namespace(api, "oomlab-explain", "e2e") as name:
        yield name


@pytest.fixture(scope="module")
def no_swap_node(api: client.ApiClient) -> dict[str, Any]:
    """A Ready node that is not labelled LimitedSwap (the host node, cgroup v1, NoSwap)."""
    for node in client.CoreV1Api(api).list_node().items:
        labels = node.metadata.labels or {}
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        if ready and labels.get("oomlab.dev/swap-behavior") != "LimitedSwap":
            found: dict[str, Any] = api.sanitize_for_serialization(node)
            return found
    pytest.skip("no Ready node without LimitedSwap")


class Pods:
    """Pods this module creates, always deleted."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.names: list[str] = []

    def create(self, body: dict[str, Any]) -> None:
        self.core.create_namespaced_pod(self.namespace, body)
        self.names.append(body["metadata"]["name"])

    def wait_running(self, names: list[str], timeout: float = RUNNING_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        waiting = set(names)
        while waiting:
            for name in sorted(waiting):
                pod = self.core.read_namespaced_pod(name, self.namespace)
                statuses = pod.status.container_statuses or []
                if pod.status.phase == "Running" and all(s.ready for s in statuses):
                    waiting.discard(name)
                elif pod.status.phase in ("Failed", "Succeeded"):
                    pytest.fail(f"{name} ended: {pod.status}")
            if waiting and time.monotonic() > deadline:
                pods = [self.core.read_namespaced_pod(n, self.namespace).status for n in waiting]
                pytest.fail(f"not Running after {timeout}s: {sorted(waiting)}: {pods}")
            time.sleep(2)

    def delete_all(self) -> None:
        for name in self.names:
            with contextlib.suppress(ApiException):
                self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
        self.names.clear()


@pytest.fixture
def pods(api: client.ApiClient, namespace: str) -> Iterator[Pods]:
    made = Pods(api, namespace)
    try:
        yield made
    finally:
        made.delete_all()


def plugin_env() -> dict[str, str]:
    """kubectl (the cluster's build, else the system's) and this venv's kubectl-oomlab on PATH."""
    dirs = [str(Path(sys.executable).parent), str(Path(kubectl_bin()).parent), "/usr/bin", "/bin"]
    env = {k: v for k, v in os.environ.items() if k not in ("PATH", "KUBECONFIG")}
    env.update(PATH=os.pathsep.join(dirs), KUBECONFIG=kubeconfig() or "")
    return env


def kubectl_oomlab(*args: str) -> tuple[int, dict[str, Any]]:
    """``kubectl oomlab explain ARGS --json`` as a user runs it: the exit code and the document."""
    proc = subprocess.run(
        [kubectl_bin(), "oomlab", "explain", *args, "--json"],
        capture_output=True, text=True, env=plugin_env(), timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    document: dict[str, Any] = json.loads(proc.stdout)
    return proc.returncode, document


def assert_read_only(document: dict[str, Any], namespace: str, pod: str) -> None:
    """Every request the command made was a GET of the pod, a node, a kubelet's configz or the
    exec connect into this pod; nothing created, patched or deleted."""
    requests = document["apiRequests"]
    assert requests, "the command's audit recorded no request at all"
    assert {r["method"] for r in requests} == {"GET"}, requests
    for request in requests:
        path = request["path"].split("?")[0]
        allowed = (
            path == f"/api/v1/namespaces/{namespace}/pods/{pod}",
            path == f"/api/v1/namespaces/{namespace}/pods/{pod}/exec",
            path.startswith("/api/v1/nodes/") and path.count("/") == 4,
            path.startswith("/api/v1/nodes/") and path.endswith("/proxy/configz"),
        )
        assert any(allowed), request


def kubelet_share(node: dict[str, Any], request_bytes: int) -> int:
    """The kubelet's LimitedSwap share from the Node object, as memory.swap.max reads it (the
    formula as written in FACTS, independent of explain's code)."""
    facts = node_facts_from_node(node)
    assert facts.memory_capacity_bytes and facts.swap_capacity_bytes, facts
    return (
        int(request_bytes / facts.memory_capacity_bytes * facts.swap_capacity_bytes) // PAGE * PAGE
    )


MiB = 2**20
EXPECTED_SWAP_REQUEST = {
    # the upstream case -> the request whose share it gets on the LimitedSwap node (None: no swap)
    "swap-besteffort": None,
    "swap-burstable": 128 * MiB,
    "swap-burstable-request-equals-limit": None,
    "swap-guaranteed": None,
    "swap-critical": None,
}


def explain_and_compare(
    namespace: str, name: str, behavior: SwapBehavior
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the plugin on a pod; its one container's node result, after checking that the node
    was read as ``behavior``, every predicted cgroup file equals the observed one and the command
    only read."""
    code, document = kubectl_oomlab(f"pod/{name}", "-n", namespace, "--cgroup")
    assert_read_only(document, namespace, name)
    (node,) = document["nodes"]
    assert node["swapBehavior"] == behavior.value, node
    (obj,) = document["objects"]
    (container,) = obj["containers"]
    (result,) = container["nodes"]
    assert result["unreadable"] is None, result
    assert result["checks"] and all(c["agrees"] for c in result["checks"]), result["checks"]
    assert code == 0
    return obj, result


def running_upstream_cases(
    pods: Pods, behavior: SwapBehavior, prefix: str, node: dict[str, Any] | None = None
) -> list[str]:
    """The upstream cases placed on nodes of ``behavior`` (on ``node``'s kubelet when it is
    tainted for it; names ``PREFIX-<case>``), created and Running: their names."""
    bodies = [placed(p, behavior, prefix, node) for p in upstream_cases()]
    for body in bodies:
        pods.create(body)
    names = [b["metadata"]["name"] for b in bodies]
    pods.wait_running(names)
    return names


def test_upstream_cases_on_the_limited_swap_node(
    api: client.ApiClient, namespace: str, limited_swap_node: dict[str, Any], pods: Pods
) -> None:
    for name in running_upstream_cases(pods, SwapBehavior.LIMITED_SWAP, "vm", limited_swap_node):
        case = name.removeprefix("vm-")
        obj, result = explain_and_compare(namespace, name, SwapBehavior.LIMITED_SWAP)
        live = client.CoreV1Api(api).read_namespaced_pod(name, namespace)
        assert live.spec.node_name == limited_swap_node["metadata"]["name"]
        assert obj["qosClass"] == live.status.qos_class
        request = EXPECTED_SWAP_REQUEST[case]
        expected = 0 if request is None else kubelet_share(limited_swap_node, request)
        observed = int(result["observed"]["memory.swap.max"])
        assert int(result["cgroupFiles"]["memory.swap.max"]) == observed == expected, case
        assert (observed > 0) is (request is not None), case
        if case == "swap-critical":
            assert live.spec.priority >= 2_000_000_000
            assert obj["critical"] and result["noSwapCause"] == "critical"
        print(
            f"\n{case} on {live.spec.node_name}: QoS {obj['qosClass']}, memory.swap.max "
            f"predicted {result['cgroupFiles']['memory.swap.max']} observed {observed}, "
            f"memory.max {result['observed']['memory.max']}, why: {result['why']}"
        )


def test_upstream_cases_on_the_no_swap_cgroup_v1_node(
    api: client.ApiClient, namespace: str, no_swap_node: dict[str, Any], pods: Pods
) -> None:
    for name in running_upstream_cases(pods, SwapBehavior.NO_SWAP, "host"):
        obj, result = explain_and_compare(namespace, name, SwapBehavior.NO_SWAP)
        observed = result["observed"]
        # the kubelet holds memory+swap to the memory limit: no swap, with or without a limit
        assert observed["memory.memsw.limit_in_bytes"] == observed["memory.limit_in_bytes"]
        limited = name.endswith(("request-equals-limit", "guaranteed"))
        assert (int(observed["memory.limit_in_bytes"]) == V1_UNLIMITED) is not limited, name
        assert result["swapBytes"] == 0 and result["noSwapCause"] == "cgroup-v1"
        print(
            f"\n{name} on {no_swap_node['metadata']['name']}: QoS {obj['qosClass']}, "
            f"memory.limit_in_bytes = memsw {observed['memory.limit_in_bytes']} as predicted"
        )


def test_init_container_and_sidecar_each_get_their_own_share(
    namespace: str, limited_swap_node: dict[str, Any], pods: Pods
) -> None:
    """The kubelet applies the swap rule to init containers and native sidecars too, each with
    its own request. A finished init container's cgroup is gone, so it leaves its own
    memory.swap.max in a shared volume for the test to read."""

    def sleeper(name: str, request: str, limit: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "image": "oomlab/memhog:dev",
            "imagePullPolicy": "IfNotPresent",
            "command": ["sleep", "600"],
            "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
            "resources": {"requests": {"memory": request}, "limits": {"memory": limit}},
            **extra,
        }

    init = sleeper("init", "64Mi", "128Mi")
    init["command"] = ["cp", "/sys/fs/cgroup/memory.swap.max", "/shared/init-swap.max"]
    pod = pod_named(
        "roles",
        volumes=[{"name": "shared", "emptyDir": {}}],
        initContainers=[init, sleeper("sidecar", "32Mi", "64Mi", restartPolicy="Always")],
        containers=[sleeper("main", "100Mi", "200Mi")],
    )
    body = placed(pod, SwapBehavior.LIMITED_SWAP, "vm", limited_swap_node)
    pods.create(body)
    pods.wait_running(["vm-roles"])
    code, document = kubectl_oomlab("pod/vm-roles", "-n", namespace, "--cgroup")
    assert_read_only(document, namespace, "vm-roles")
    by_name = {c["name"]: c for c in document["objects"][0]["containers"]}
    assert {n: c["role"] for n, c in by_name.items()} == {
        "init": "init", "sidecar": "sidecar", "main": "container"}  # fmt: skip
    for name, request in (("sidecar", 32 * MiB), ("main", 100 * MiB)):
        (result,) = by_name[name]["nodes"]
        assert all(c["agrees"] for c in result["checks"]), result
        assert int(result["observed"]["memory.swap.max"]) == kubelet_share(
            limited_swap_node, request
        )
    (init_result,) = by_name["init"]["nodes"]
    assert "not running" in init_result["unreadable"]
    left = subprocess.run(
        [kubectl_bin(), "exec", "-n", namespace, "vm-roles", "-c", "main", "--",
         "cat", "/shared/init-swap.max"],
        capture_output=True, text=True, env=plugin_env(), timeout=120, check=True,
    ).stdout.strip()  # fmt: skip
    assert left == init_result["cgroupFiles"]["memory.swap.max"]
    assert int(left) == kubelet_share(limited_swap_node, 64 * MiB) > 0
    assert code == 0
    print(f"\ninit container's memory.swap.max {left} as predicted; sidecar and main agree")


def pause_image(api: client.ApiClient, node: dict[str, Any]) -> str | None:
    """A pause image the node already has (it has no shell and no cat)."""
    images = (node.get("status") or {}).get("images") or []
    for image in images:
        for name in image.get("names") or []:
            if "pause" in name.rsplit("/", 1)[-1].split(":", 1)[0]:
                return str(name)
    return None


def test_an_image_without_cat_is_said_plainly(
    api: client.ApiClient, namespace: str, no_swap_node: dict[str, Any], pods: Pods
) -> None:
    image = pause_image(api, no_swap_node)
    if image is None:
        pytest.skip("the node lists no pause image")
    pod = pod_named(
        "no-cat",
        containers=[
            {
                "name": "pause",
                "image": image,
                "imagePullPolicy": "Never",
                "resources": {"requests": {"memory": "16Mi"}, "limits": {"memory": "32Mi"}},
            }
        ],
    )
    pods.create(placed(pod, SwapBehavior.NO_SWAP, "host"))
    pods.wait_running(["host-no-cat"])
    code, document = kubectl_oomlab("pod/host-no-cat", "-n", namespace, "--cgroup")
    assert_read_only(document, namespace, "host-no-cat")
    (result,) = document["objects"][0]["containers"][0]["nodes"]
    assert "the image has no cat" in result["unreadable"], result
    # the prediction is still made (its files too when the node's cgroup version is labelled)
    assert result["swapBytes"] == 0 and result["why"]
    assert code == 0
    print(f"\n{image}: {result['unreadable']}")


def test_from_cluster_profiles_predict_what_the_nodes_gave(
    api: client.ApiClient, limited_swap_node: dict[str, Any]
) -> None:
    """``-f --from-cluster``: the nodes read from the cluster (only read) as profiles."""
    code, document = kubectl_oomlab("-f", str(FIXTURES / "upstream-cases.yaml"), "--from-cluster")
    assert code == 0
    assert {r["method"] for r in document["apiRequests"]} == {"GET"}
    vm_name = limited_swap_node["metadata"]["name"]
    profiles = {p["name"]: p for p in document["nodes"]}
    assert profiles[vm_name]["swapBehavior"] == "LimitedSwap"
    assert profiles[vm_name]["cgroupVersion"] == "v2"
    burstable = next(o for o in document["objects"] if o["name"] == "swap-burstable")
    (on_vm,) = [n for n in burstable["containers"][0]["nodes"] if n["node"] == vm_name]
    assert int(on_vm["cgroupFiles"]["memory.swap.max"]) == kubelet_share(
        limited_swap_node, 128 * MiB
    )
    # a second LimitedSwap node (hack/vm-node-old.sh) gets its own share: only NoSwap ones get none
    no_swap = [
        n
        for n in burstable["containers"][0]["nodes"]
        if profiles[n["node"]]["swapBehavior"] != "LimitedSwap"
    ]
    assert all(n["swapBytes"] == 0 for n in no_swap), no_swap


def test_every_running_pod_in_the_cluster(api: client.ApiClient) -> None:
    """Pods this module did not make (the operator, experiments, other tests' pods): each one
    explained with its cgroup files read, and every file it could read agrees; nothing written.
    Pods that end between the listing and the reading are passed over."""
    listed = client.CoreV1Api(api).list_pod_for_all_namespaces(
        field_selector="status.phase=Running"
    )
    running = [
        (p.metadata.namespace, p.metadata.name)
        for p in listed.items
        if not p.metadata.namespace.startswith("oomlab-explain-")
    ]
    if not running:
        # The local cluster runs no pod of its own while this module runs (the operator is
        # deployed later in the tier); kind's CoreDNS pods make the case there.
        pytest.skip(
            "allowed skip: no running pods besides this module's (none on this cluster now)"
        )
    compared = 0
    for namespace, name in running:
        proc = subprocess.run(
            [kubectl_bin(), "oomlab", "explain", f"pod/{name}", "-n", namespace, "--cgroup",
             "--json"],
            capture_output=True, text=True, env=plugin_env(), timeout=300, check=False,
        )  # fmt: skip
        if proc.returncode == 2 and "not found" in proc.stderr:
            continue
        assert proc.returncode in (0, 1), proc.stderr
        document = json.loads(proc.stdout)
        assert_read_only(document, namespace, name)
        for container in document["objects"][0]["containers"]:
            for result in container["nodes"]:
                if result.get("unreadable"):
                    print(f"\n{namespace}/{name} {container['name']}: {result['unreadable']}")
                    continue
                assert all(c["agrees"] is not False for c in result["checks"]), (name, result)
                compared += 1
                print(
                    f"\n{namespace}/{name} {container['name']} on {result['node']}: "
                    + ", ".join(f"{c['file']} {c['observed']}" for c in result["checks"])
                    + " as predicted"
                )
    print(f"\n{compared} containers compared in {len(running)} running pods")
