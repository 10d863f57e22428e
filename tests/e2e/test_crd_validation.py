"""The OOMExperiment CRD's validation, proven against a real API server.

Applies the CRD (manifests/crd/oomexperiments.yaml), then submits experiments with
`kubectl apply --dry-run=server` (nothing is stored): every file in manifests/samples/invalid/
that the API server must reject is rejected with an error naming the field and saying what to
change; the valid samples, and the over-cap sample (the operator's business, not the API
server's), are accepted; defaults are filled in.

Then stores one experiment and proves the spec is immutable: a patch of the spec is refused by
the API server with the CRD's sentence, while metadata and status stay patchable.

The cluster comes from KUBECONFIG (else /var/lib/oomlab/cluster/kubeconfig, the local cluster)
through the e2e tier's ``api`` fixture: skipped when no cluster answers or it is not the
project's own, a failure instead under OOMLAB_REQUIRE_CLUSTER=1. kubectl: $KUBECTL, else the one
that hack/k8s-build.sh built, else the one on PATH.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster import kubeconfig as cluster_kubeconfig
from cluster import kubectl_bin
from kubernetes import client

from lab import unavailable

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "manifests" / "crd" / "oomexperiments.yaml"
SAMPLES = ROOT / "manifests" / "samples"
INVALID = SAMPLES / "invalid"
NAMESPACE = "default"

# file -> (the field the error names, words the message must contain)
REJECTED = {
    "limit-500m.yaml": (
        "spec.resources.limits.memory",
        "must be a whole number of bytes: in Kubernetes '500m' means 0.5 bytes (milli), "
        "not 500 MiB; write 500Mi",
    ),
    "limit-below-request.yaml": (
        "spec.resources.limits.memory",
        "limits.memory must be >= requests.memory",
    ),
    "no-limit.yaml": (
        "spec.resources.limits.memory",
        "limits.memory is required: an experiment without a memory limit could take the whole "
        "node down",
    ),
    "size-zero.yaml": ("spec.workload.size", "workload.size must be greater than zero"),
}
ACCEPTED = [
    "seed-oom.yaml",
    "seed-swap.yaml",
    "streaming.yaml",
    "leak.yaml",
    "seed-limited-swap.yaml",
    "seed-limited-swap-guaranteed.yaml",
    "seed-limited-swap-cost.yaml",
    "invalid/over-cap.yaml",
]


class Kubectl:
    def __init__(self, binary: str, kubeconfig: str) -> None:
        self.base = [binary, f"--kubeconfig={kubeconfig}"]

    def __call__(
        self, *args: str, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.base, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def kubectl(api: client.ApiClient) -> Iterator[Kubectl]:
    """kubectl on the cluster the ``api`` fixture accepted (it answers and is the project's)."""
    try:
        binary = kubectl_bin()
    except RuntimeError as exc:
        unavailable(str(exc))
    kubeconfig = cluster_kubeconfig()
    assert kubeconfig, "the api fixture found a kubeconfig"
    k = Kubectl(binary, kubeconfig)
    try:
        ready = k("get", "--raw", "/readyz", timeout=20)
    except subprocess.TimeoutExpired:
        unavailable(f"the cluster in {kubeconfig} does not answer")
    if ready.returncode != 0:
        unavailable(f"the cluster in {kubeconfig} is not ready: {ready.stderr.strip()}")
    applied = k("apply", "-f", str(CRD_FILE))
    assert applied.returncode == 0, applied.stderr
    established = k(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/oomexperiments.oomlab.dev",
        timeout=90,
    )
    assert established.returncode == 0, established.stderr
    yield k


def dry_run(kubectl: Kubectl, obj: dict[str, Any] | Path) -> subprocess.CompletedProcess[str]:
    text = obj.read_text() if isinstance(obj, Path) else yaml.safe_dump(obj)
    return kubectl(
        "apply", "--dry-run=server", "-n", NAMESPACE, "-o", "json", "-f", "-", stdin=text
    )


def seed(**changes: Any) -> dict[str, Any]:
    """seed-oom.yaml with parts of its spec replaced (a value of None removes the key)."""
    obj: dict[str, Any] = yaml.safe_load((SAMPLES / "seed-oom.yaml").read_text())
    obj["metadata"]["name"] = "crd-validation-probe"
    for key, value in changes.items():
        if value is None:
            obj["spec"].pop(key, None)
        else:
            obj["spec"][key] = value
    return obj


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_invalid_sample_is_rejected_naming_the_field(kubectl: Kubectl, name: str) -> None:
    field, words = REJECTED[name]
    result = dry_run(kubectl, INVALID / name)
    assert result.returncode != 0, f"{name} was accepted:\n{result.stdout}"
    assert field in result.stderr, result.stderr
    assert words in result.stderr, result.stderr


@pytest.mark.parametrize("name", ACCEPTED)
def test_sample_is_accepted(kubectl: Kubectl, name: str) -> None:
    result = dry_run(kubectl, SAMPLES / name)
    assert result.returncode == 0, result.stderr


def test_defaults_are_filled_in(kubectl: Kubectl) -> None:
    obj = seed(workload={"size": "700Mi"}, docker={"memory": "500m"})
    result = dry_run(kubectl, obj)
    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout)["spec"]
    assert spec["workload"] == {
        "mode": "bulk",
        "size": "700Mi",
        "hold": 0,
        "reaccess": 0,
        "image": "oomlab/memhog:dev",
        "imagePullPolicy": "IfNotPresent",
    }
    assert spec["timeoutSeconds"] == 300
    assert spec["measureSwapCost"] is False
    assert spec["docker"] == {"memory": "500m", "runtime": "runc"}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        (
            {"workload": {"mode": "leak", "size": "1Gi", "chunk": "50Mi"}},
            "spec.workload.chunk",
            "workload.chunk applies to modes bulk and streaming",
        ),
        (
            {"workload": {"size": "1Gi", "window": 2}},
            "spec.workload.window",
            "workload.window applies to mode streaming",
        ),
        (
            {"workload": {"mode": "bulk", "size": "1Gi", "step": "10Mi"}},
            "spec.workload.step",
            "workload.step applies to mode leak",
        ),
        (
            {"workload": {"size": "500MB"}},
            "spec.workload.size",
            "use binary units like 500Mi",
        ),
        (
            {"resources": {"limits": {"memory": "lots"}}},
            "spec.resources.limits.memory",
            "must be a Kubernetes quantity",
        ),
        (
            {"resources": {"limits": {"memory": "1.5"}}},
            "spec.resources.limits.memory",
            "limits.memory must be a whole number of bytes",
        ),
        (
            {"resources": {"limits": {"memory": "-1Gi"}}},
            "spec.resources.limits.memory",
            "must be greater than zero",
        ),
        (
            {"resources": {"requests": {"memory": "500m"}, "limits": {"memory": "1Gi"}}},
            "spec.resources.requests.memory",
            "requests.memory must be a whole number of bytes",
        ),
        (
            {"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": 1000000000}}},
            "spec.resources.limits.memory",
            "limits.memory must be >= requests.memory",
        ),
        (
            {"docker": {"memory": "500x"}},
            "spec.docker.memory",
            "Docker syntax",
        ),
        (
            {"docker": {"memory": "500m", "memorySwap": "-2"}},
            "spec.docker.memorySwap",
            "-1 for unlimited",
        ),
        (
            {"swapBehavior": "UnlimitedSwap"},
            "spec.swapBehavior",
            'supported values: "NoSwap", "LimitedSwap"',
        ),
        (
            {"swapBehavior": "LimitedSwap", "nodeSelector": {"oomlab.dev/swap-behavior": "NoSwap"}},
            "spec.nodeSelector",
            "contradicts swapBehavior",
        ),
        (
            {"runtimeClassName": "Crun"},
            "spec.runtimeClassName",
            "runtimeClassName 'Crun' is not a RuntimeClass name",
        ),
        (
            {"runtimeClassName": "crun_v2"},
            "spec.runtimeClassName",
            "DNS-1123 subdomain",
        ),
    ],
)
def test_rule_rejects(kubectl: Kubectl, changes: dict[str, Any], field: str, words: str) -> None:
    result = dry_run(kubectl, seed(**changes))
    assert result.returncode != 0, f"accepted: {changes}"
    assert field in result.stderr, result.stderr
    assert words in result.stderr, result.stderr


@pytest.mark.parametrize(
    "changes",
    [
        {"resources": {"limits": {"memory": 524288000}}},
        {"resources": {"requests": {"memory": "0.25Gi"}, "limits": {"memory": "1e9"}}},
        {"workload": {"mode": "spike", "base": "100Mi", "size": "1Gi", "hold": 1.5}},
        {"docker": {"memory": "500MiB", "memorySwap": "-1", "runtime": "crun"}},
        {"swapBehavior": "NoSwap", "nodeSelector": {"oomlab.dev/swap-behavior": "NoSwap"}},
        {"runtimeClassName": "crun"},
        {"runtimeClassName": "gvisor.example-1"},
    ],
)
def test_rule_accepts(kubectl: Kubectl, changes: dict[str, Any]) -> None:
    result = dry_run(kubectl, seed(**changes))
    assert result.returncode == 0, result.stderr


def test_printer_columns_are_served(kubectl: Kubectl) -> None:
    result = kubectl("get", "crd", "oomexperiments.oomlab.dev", "-o", "json")
    assert result.returncode == 0, result.stderr
    crd = json.loads(result.stdout)
    (version,) = crd["spec"]["versions"]
    names = [c["name"] for c in version["additionalPrinterColumns"]]
    assert names == [
        "Phase", "Outcome", "Docker", "Parity", "Node", "Swap", "Swap-Cost", "Runtime", "Limit",
        "Kubelet", "Age",
    ]  # fmt: skip
    assert crd["spec"]["names"]["shortNames"] == ["oomx"]


def immutability_message() -> str:
    """The sentence the CRD's transition rule on spec answers with."""
    crd = yaml.safe_load(CRD_FILE.read_text())
    (version,) = crd["spec"]["versions"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    (rule,) = [r for r in spec["x-kubernetes-validations"] if r["rule"] == "self == oldSelf"]
    message: str = rule["message"]
    return message


def small_experiment() -> dict[str, Any]:
    obj = seed(
        workload={"size": "8Mi", "imagePullPolicy": "Never"},
        resources={"limits": {"memory": "64Mi"}},
    )
    obj["metadata"]["name"] = "immutable"
    return obj


@pytest.fixture
def stored(kubectl: Kubectl) -> Iterator[tuple[str, str]]:
    """(namespace, name) of small_experiment() really stored, in a namespace of its own."""
    namespace = f"oomlab-crd-{uuid.uuid4().hex[:6]}"
    created = kubectl("create", "namespace", namespace)
    assert created.returncode == 0, created.stderr
    obj = small_experiment()
    try:
        applied = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(obj))
        assert applied.returncode == 0, applied.stderr
        yield namespace, obj["metadata"]["name"]
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")


def stored_spec(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    got = kubectl("get", "oomexperiments", name, "-n", namespace, "-o", "json")
    assert got.returncode == 0, got.stderr
    spec: dict[str, Any] = json.loads(got.stdout)["spec"]
    return spec


@pytest.mark.parametrize(
    "patch",
    [
        {"spec": {"timeoutSeconds": 77}},
        {"spec": {"workload": {"size": "9Mi"}}},
        {"spec": {"resources": {"limits": {"memory": "128Mi"}}}},
        {"spec": {"docker": {"memory": "64m"}}},
        {"spec": {"measureSwapCost": True}},
    ],
    ids=["timeout", "size", "limit", "docker", "swap-cost"],
)
def test_spec_change_is_refused_with_a_sentence(
    kubectl: Kubectl, stored: tuple[str, str], patch: dict[str, Any]
) -> None:
    namespace, name = stored
    before = stored_spec(kubectl, namespace, name)
    result = kubectl(
        "patch", "oomexperiments", name, "-n", namespace, "--type", "merge", "-p", json.dumps(patch)
    )
    assert result.returncode != 0, f"the spec patch was accepted: {result.stdout}"
    assert immutability_message() in result.stderr, result.stderr
    assert stored_spec(kubectl, namespace, name) == before


def test_spec_change_by_apply_is_refused_too(kubectl: Kubectl, stored: tuple[str, str]) -> None:
    namespace, _ = stored
    changed = small_experiment()
    changed["spec"]["timeoutSeconds"] = 61
    result = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(changed))
    assert result.returncode != 0, result.stdout
    assert immutability_message() in result.stderr, result.stderr


def test_metadata_and_status_stay_patchable(kubectl: Kubectl, stored: tuple[str, str]) -> None:
    namespace, name = stored
    before = stored_spec(kubectl, namespace, name)
    annotated = kubectl(
        "annotate", "oomexperiments", name, "-n", namespace, "oomlab.dev/note=kept", "-o", "json"
    )
    assert annotated.returncode == 0, annotated.stderr
    assert json.loads(annotated.stdout)["metadata"]["annotations"]["oomlab.dev/note"] == "kept"
    status = {"status": {"message": "written through the status subresource"}}
    patched = kubectl(
        "patch", "oomexperiments", name, "-n", namespace, "--subresource=status",
        "--type", "merge", "-p", json.dumps(status), "-o", "json",
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr
    assert json.loads(patched.stdout)["status"]["message"] == status["status"]["message"]
    assert stored_spec(kubectl, namespace, name) == before
