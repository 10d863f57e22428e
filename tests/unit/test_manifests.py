"""Static checks of manifests/, the kind configs and the operator image's Dockerfile.

No cluster is needed. The CRD's OpenAPI schema is checked here with `jsonschema` (after turning
the Kubernetes extensions into plain JSON Schema), and so are its regex-only CEL rules
(`self.matches(...)`); the quantity rules need the API server and are proven by
tests/e2e/test_crd_validation.py.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
CRD_FILE = MANIFESTS / "crd" / "oomexperiments.yaml"
SAMPLES = MANIFESTS / "samples"
VALID_SAMPLES = ["seed-oom.yaml", "seed-swap.yaml", "streaming.yaml", "leak.yaml"]
# Valid, but they need a LimitedSwap node: not in the samples' kustomization (Pending without it).
LIMITED_SWAP_SAMPLES = [
    "seed-limited-swap.yaml",
    "seed-limited-swap-guaranteed.yaml",
    "seed-limited-swap-cost.yaml",
]
# Invalid samples the API server rejects, and the field each error names.
REJECTED_BY_API = {
    "limit-500m.yaml": "spec.resources.limits.memory",
    "limit-below-request.yaml": "spec.resources.limits.memory",
    "no-limit.yaml": "spec.resources.limits.memory",
    "size-zero.yaml": "spec.workload.size",
}
# Valid to the API server; the operator sets phase Invalid (size above its cap).
REJECTED_BY_OPERATOR = {"over-cap.yaml"}

OPERATOR_COMMAND = [
    "kopf",
    "run",
    "--standalone",
    "--all-namespaces",
    "--liveness=http://0.0.0.0:8080/healthz",
    "-m",
    "oomlab.operator.handlers",
]


def load_all(path: Path) -> list[dict[str, Any]]:
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def load_one(path: Path) -> dict[str, Any]:
    docs = load_all(path)
    assert len(docs) == 1, f"{path} should hold one document"
    return docs[0]


def all_yaml() -> list[Path]:
    return sorted(p for p in MANIFESTS.rglob("*") if p.suffix in {".yaml", ".yml"})


def crd() -> dict[str, Any]:
    return load_one(CRD_FILE)


def crd_version() -> dict[str, Any]:
    versions = crd()["spec"]["versions"]
    assert len(versions) == 1
    version: dict[str, Any] = versions[0]
    return version


def root_schema() -> dict[str, Any]:
    schema: dict[str, Any] = crd_version()["schema"]["openAPIV3Schema"]
    return schema


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its dotted path (items of a list are `path[]`)."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


# --- every file -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", all_yaml(), ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_parses_with_kind_and_api_version(path: Path) -> None:
    for doc in load_all(path):
        assert isinstance(doc, dict)
        assert doc.get("apiVersion"), f"{path}: no apiVersion"
        assert doc.get("kind"), f"{path}: no kind"


@pytest.mark.parametrize(
    "kustomization", [MANIFESTS / "kustomization.yaml", SAMPLES / "kustomization.yaml"]
)
def test_kustomization_resources_exist(kustomization: Path) -> None:
    k = load_one(kustomization)
    assert k["kind"] == "Kustomization"
    assert k["resources"], "no resources"
    for res in k["resources"]:
        assert (kustomization.parent / res).is_file(), f"{kustomization}: missing {res}"


def test_top_level_kustomization_deploys_everything_but_samples() -> None:
    resources = load_one(MANIFESTS / "kustomization.yaml")["resources"]
    kinds = set()
    for res in resources:
        assert not res.startswith("samples"), "samples must not be deployed by apply -k manifests/"
        assert not res.startswith("kind"), "kind configs are not Kubernetes objects"
        kinds |= {d["kind"] for d in load_all(MANIFESTS / res)}
    assert kinds == {
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
    }


def test_samples_kustomization_lists_the_valid_samples_only() -> None:
    assert load_one(SAMPLES / "kustomization.yaml")["resources"] == VALID_SAMPLES


# --- the CRD ------------------------------------------------------------------------------------


def test_crd_names_follow_the_contract() -> None:
    c = crd()
    assert c["metadata"]["name"] == "oomexperiments.oomlab.dev"
    spec = c["spec"]
    assert spec["group"] == "oomlab.dev"
    assert spec["scope"] == "Namespaced"
    names = spec["names"]
    assert names["kind"] == "OOMExperiment"
    assert names["plural"] == "oomexperiments"
    assert names["singular"] == "oomexperiment"
    assert names["shortNames"] == ["oomx"]
    assert names["categories"] == ["oomlab"]
    v = crd_version()
    assert (v["name"], v["served"], v["storage"]) == ("v1alpha1", True, True)


def test_crd_has_status_subresource_and_printer_columns() -> None:
    v = crd_version()
    assert v["subresources"] == {"status": {}}
    columns = {c["name"]: c for c in v["additionalPrinterColumns"]}
    assert [c["name"] for c in v["additionalPrinterColumns"]] == [
        "Phase",
        "Outcome",
        "Docker",
        "Parity",
        "Node",
        "Swap",
        "Swap-Cost",
        "Runtime",
        "Limit",
        "Kubelet",
        "Age",
    ]
    assert columns["Runtime"]["jsonPath"] == ".status.kubernetes.runtimeHandler"
    assert columns["Phase"]["jsonPath"] == ".status.phase"
    assert columns["Outcome"]["jsonPath"] == ".status.kubernetes.outcome"
    assert columns["Docker"]["jsonPath"] == ".status.docker.outcome"
    assert columns["Parity"]["jsonPath"] == ".status.parity.result"
    assert columns["Node"]["jsonPath"] == ".status.kubernetes.nodeName"
    assert columns["Swap"]["jsonPath"] == ".spec.swapBehavior"
    assert columns["Swap-Cost"]["jsonPath"] == ".status.swapCost.summary"
    assert columns["Limit"]["jsonPath"] == ".spec.resources.limits.memory"
    assert columns["Limit"]["priority"] == 1
    assert columns["Kubelet"]["jsonPath"] == ".status.kubernetes.kubeletVersion"
    assert columns["Kubelet"]["priority"] == 1
    assert columns["Age"] == {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
    }


def test_every_cel_rule_has_a_message() -> None:
    rules = 0
    for path, node in walk(root_schema()):
        for rule in node.get("x-kubernetes-validations", []):
            rules += 1
            assert rule.get("message") or rule.get("messageExpression"), f"{path}: {rule['rule']}"
            if "fieldPath" in rule:
                assert rule["fieldPath"].startswith("."), f"{path}: fieldPath {rule['fieldPath']}"
                target = node
                for part in rule["fieldPath"].strip(".").split("."):
                    target = target["properties"][part]
    assert rules >= 15


def test_spec_is_immutable_by_a_transition_rule_with_a_sentence() -> None:
    spec = root_schema()["properties"]["spec"]
    (rule,) = [r for r in spec["x-kubernetes-validations"] if "oldSelf" in r["rule"]]
    assert rule["rule"] == "self == oldSelf"
    assert "spec cannot be changed" in rule["message"]
    assert "create a new experiment" in rule["message"]
    assert "messageExpression" not in rule  # the sentence is fixed: tests/e2e matches it whole


def test_only_the_spec_is_immutable() -> None:
    """Status (the operator's) and metadata (annotations, labels) stay patchable."""
    transitions = [
        path
        for path, node in walk(root_schema())
        for rule in node.get("x-kubernetes-validations", [])
        if "oldSelf" in rule["rule"]
    ]
    assert transitions == ["spec"]
    assert "x-kubernetes-validations" not in root_schema()


def test_strings_and_collections_are_bounded_for_cel_cost() -> None:
    spec = root_schema()["properties"]["spec"]
    for path, node in walk(spec, "spec"):
        if node.get("type") == "string" and "enum" not in node:
            assert "maxLength" in node, f"{path}: string without maxLength"
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path}: list without maxItems"
        if node.get("type") == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, f"{path}: map without maxProperties"


def test_quantities_are_int_or_string_with_quantity_rules() -> None:
    resources = root_schema()["properties"]["spec"]["properties"]["resources"]
    for part in ("requests", "limits"):
        memory = resources["properties"][part]["properties"]["memory"]
        assert memory.get("x-kubernetes-int-or-string") is True
        text = " ".join(r["rule"] for r in memory["x-kubernetes-validations"])
        assert "isQuantity(" in text and ".isInteger()" in text
    messages = " ".join(r["message"] for r in resources["x-kubernetes-validations"])
    spec_rules = root_schema()["properties"]["spec"]["x-kubernetes-validations"]
    messages += " ".join(r["message"] for r in spec_rules)
    assert "limits.memory is required: an experiment without a memory limit" in messages
    assert "limits.memory must be >= requests.memory" in messages
    limit_rules = resources["properties"]["limits"]["properties"]["memory"]
    assert any(
        "in Kubernetes '500m' means 0.5 bytes (milli), not 500 MiB; write 500Mi" in r["message"]
        for r in limit_rules["x-kubernetes-validations"]
    )


def test_spec_defaults_and_status_shape() -> None:
    props = root_schema()["properties"]
    spec = props["spec"]
    assert spec["required"] == ["workload", "resources"]
    w = spec["properties"]["workload"]["properties"]
    assert w["mode"]["enum"] == ["bulk", "streaming", "leak", "spike"]
    assert (w["mode"]["default"], w["size"]["default"], w["hold"]["default"]) == (
        "bulk",
        "1000Mi",
        0,
    )
    assert w["image"]["default"] == "oomlab/memhog:dev"
    assert w["imagePullPolicy"]["default"] == "IfNotPresent"
    t = spec["properties"]["timeoutSeconds"]
    assert (t["minimum"], t["maximum"], t["default"]) == (1, 86400, 300)
    assert spec["properties"]["docker"]["properties"]["runtime"]["default"] == "runc"
    status = props["status"]["properties"]
    assert status["phase"]["enum"] == [
        "Pending",
        "Running",
        "Completed",
        "OOMKilled",
        "Failed",
        "TimedOut",
        "Invalid",
    ]
    assert status["conditions"]["x-kubernetes-list-type"] == "map"
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert status["kopf"]["x-kubernetes-preserve-unknown-fields"] is True
    assert status["parity"]["properties"]["result"]["enum"] == ["Match", "Mismatch", "Unknown"]
    assert status["docker"]["properties"]["source"]["enum"] == ["Predicted", "Observed"]
    for key in ("outcome", "allocatedBytes", "peakBytes", "qosClass", "swapBehavior"):
        assert key in status["kubernetes"]["properties"]
    assert "oomKilled" in status["docker"]["properties"]["observed"]["properties"]


# --- samples against the schema ------------------------------------------------------------------


def to_json_schema(node: Any) -> Any:
    """The CRD schema as plain JSON Schema: x-kubernetes-* dropped, int-or-string spelled out."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    closed = node.get("type") == "object" and "properties" in node
    if closed and not node.get("x-kubernetes-preserve-unknown-fields"):
        # The API server prunes unknown fields; here they are errors, to catch typos.
        out.setdefault("additionalProperties", False)
    if "properties" in node and "properties" in out:
        out["properties"] = {k: to_json_schema(v) for k, v in node["properties"].items()}
    return out


MATCHES = re.compile(r"^(!?)self\.matches\('((?:[^'\\]|\\.)*)'\)$")


def regex_rules(schema: dict[str, Any]) -> list[tuple[list[str], bool, str, str]]:
    """The CEL rules that are just `self.matches(RE)` or `!self.matches(RE)`, with their paths."""
    found = []

    def visit(node: dict[str, Any], path: list[str]) -> None:
        for rule in node.get("x-kubernetes-validations", []):
            m = MATCHES.match(rule["rule"].strip())
            if m:
                regex = m.group(2).encode().decode("unicode_escape")  # CEL string escapes
                found.append((path, m.group(1) == "!", regex, rule["message"]))
        for name, sub in node.get("properties", {}).items():
            visit(sub, [*path, name])

    visit(schema, [])
    return found


def schema_errors(obj: dict[str, Any]) -> list[str]:
    jsonschema = pytest.importorskip("jsonschema")
    schema = to_json_schema(copy.deepcopy(root_schema()))
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(obj)]
    for path, negated, regex, message in regex_rules(root_schema()):
        value: Any = obj
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str) and bool(re.search(regex, value)) == negated:
            errors.append(f"{'.'.join(path)}: {message}")
    return errors


@pytest.mark.parametrize("name", VALID_SAMPLES + LIMITED_SWAP_SAMPLES)
def test_valid_samples_match_the_schema(name: str) -> None:
    sample = load_one(SAMPLES / name)
    assert sample["apiVersion"] == "oomlab.dev/v1alpha1"
    assert sample["kind"] == "OOMExperiment"
    assert sample["metadata"]["name"] == name.removesuffix(".yaml")
    assert schema_errors(sample) == []
    assert sample["spec"]["resources"]["limits"]["memory"], "every sample sets a memory limit"


def test_invalid_samples_are_all_covered() -> None:
    present = {p.name for p in (SAMPLES / "invalid").glob("*.yaml")}
    assert present == set(REJECTED_BY_API) | REJECTED_BY_OPERATOR


def test_size_zero_fails_the_regex_rules_and_over_cap_passes() -> None:
    zero = schema_errors(load_one(SAMPLES / "invalid" / "size-zero.yaml"))
    assert zero == [
        "spec.workload.size: workload.size must be greater than zero, for example 1000Mi"
    ]
    assert schema_errors(load_one(SAMPLES / "invalid" / "over-cap.yaml")) == []


@pytest.mark.parametrize(
    ("patch", "error"),
    [
        ({"workload": {"size": "500MB"}}, "not a memhog size"),
        ({"workload": {"mode": "burst"}}, "is not one of"),
        ({"docker": {"memory": "500x"}}, "Docker syntax"),
        ({"docker": {"memory": "1 gigabyte"}}, "Docker syntax"),
        ({"timeoutSeconds": 0}, "less than the minimum"),
        ({"workload": {"hold": -1}}, "less than the minimum"),
        ({"workload": {"sizee": "1Gi"}}, "Additional properties"),
        ({"swapBehavior": "UnlimitedSwap"}, "is not one of"),
        ({"measureSwapCost": "yes"}, "is not of type 'boolean'"),
        ({"workload": {"reaccess": -1}}, "less than the minimum"),
    ],
)
def test_schema_rejects(patch: dict[str, Any], error: str) -> None:
    sample = load_one(SAMPLES / "seed-oom.yaml")
    for key, value in patch.items():
        if isinstance(value, dict):
            sample["spec"].setdefault(key, {}).update(value)
        else:
            sample["spec"][key] = value
    errors = schema_errors(sample)
    assert any(error in e for e in errors), errors


@pytest.mark.parametrize("value", ["500m", "500MiB", "1g", "1 g", "-1", "1073741824", "1.5GB"])
def test_schema_accepts_docker_sizes(value: str) -> None:
    sample = load_one(SAMPLES / "seed-swap.yaml")
    sample["spec"]["docker"]["memorySwap"] = value
    assert schema_errors(sample) == []


def test_seed_samples_say_what_the_issue_says() -> None:
    oom = load_one(SAMPLES / "seed-oom.yaml")["spec"]
    assert oom["resources"] == {"requests": {"memory": "500Mi"}, "limits": {"memory": "500Mi"}}
    assert oom["workload"] == {"mode": "bulk", "size": "1000Mi", "chunk": "500Mi"}
    assert oom["docker"] == {"memory": "500m", "memorySwap": "500m"}
    swap = load_one(SAMPLES / "seed-swap.yaml")["spec"]
    assert swap["resources"] == {"requests": {"memory": "250Mi"}, "limits": {"memory": "500Mi"}}
    assert swap["docker"] == {"memory": "500m", "memorySwap": "1g"}
    limited = load_one(SAMPLES / "seed-limited-swap.yaml")["spec"]
    assert limited["swapBehavior"] == "LimitedSwap"
    assert limited["workload"] == oom["workload"]
    assert limited["resources"] == {
        "requests": {"memory": "400Mi"},
        "limits": {"memory": "500Mi"},
    }
    assert limited["docker"] == {"memory": "500m", "memorySwap": "1g"}
    twin = load_one(SAMPLES / "seed-limited-swap-guaranteed.yaml")["spec"]
    assert twin == {**limited, "resources": oom["resources"]}


# --- operator Deployment and RBAC ---------------------------------------------------------------


def deployment() -> dict[str, Any]:
    return load_one(MANIFESTS / "operator" / "deployment.yaml")


def test_deployment_runs_the_operator_as_agreed() -> None:
    d = deployment()
    assert d["metadata"] == {
        **d["metadata"],
        "name": "oomlab-operator",
        "namespace": "oomlab-system",
    }
    spec = d["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "oomlab-operator"
    (c,) = pod["containers"]
    assert c["image"] == "oomlab/operator:dev"
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["command"] == OPERATOR_COMMAND
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["OOMLAB_SWAP_BEHAVIOR"] == "NoSwap"
    assert env["OOMLAB_MAX_EXPERIMENT_BYTES"] == "8Gi"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port = c["livenessProbe"]["httpGet"]["port"]
    assert port == 8080 or {"name": port, "containerPort": 8080, "protocol": "TCP"} in c["ports"]
    assert c["resources"] == {
        "requests": {"memory": "100Mi", "cpu": "50m"},
        "limits": {"memory": "256Mi"},
    }
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts == {"tmp": "/tmp"}
    assert "emptyDir" in volumes["tmp"]


def test_deployment_is_locked_down() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] == 65532
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "add" not in sc["capabilities"]
    assert not sc.get("privileged", False)


def test_namespace_enforces_restricted_pod_security() -> None:
    ns = load_one(MANIFESTS / "operator" / "namespace.yaml")
    assert ns["metadata"]["name"] == "oomlab-system"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_rbac_is_least_privilege() -> None:
    sa = load_one(MANIFESTS / "rbac" / "serviceaccount.yaml")
    assert (sa["metadata"]["name"], sa["metadata"]["namespace"]) == (
        "oomlab-operator",
        "oomlab-system",
    )
    role = load_one(MANIFESTS / "rbac" / "clusterrole.yaml")
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    for (group, resource), verbs in granted.items():
        assert "*" not in verbs and group != "*" and resource != "*"
        assert "escalate" not in verbs and "bind" not in verbs and "impersonate" not in verbs
    assert ("", "secrets") not in granted
    assert ("", "configmaps") not in granted
    assert ("", "pods/exec") not in granted
    assert ("", "nodes/proxy") not in granted
    assert not any(r == "kopfpeerings" or r == "clusterkopfpeerings" for _, r in granted)
    assert ("coordination.k8s.io", "leases") not in granted
    assert granted[("oomlab.dev", "oomexperiments")] == {"get", "list", "watch", "patch", "create"}
    assert granted[("oomlab.dev", "oomexperiments/status")] == {"get", "patch", "update"}
    assert granted[("", "pods")] == {"get", "list", "watch", "create", "delete", "patch"}
    assert granted[("", "events")] == {"create", "list"}
    assert granted[("events.k8s.io", "events")] == {"create"}
    assert granted[("", "nodes")] == {"get", "list", "watch"}
    assert granted[("", "nodes/stats")] == granted[("", "nodes/configz")] == {"get"}
    assert granted[("apiextensions.k8s.io", "customresourcedefinitions")] == {
        "get",
        "list",
        "watch",
    }
    assert granted[("", "namespaces")] == {"list", "watch"}
    assert granted[("node.k8s.io", "runtimeclasses")] == {"get", "list"}
    binding = load_one(MANIFESTS / "rbac" / "clusterrolebinding.yaml")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "oomlab-operator", "namespace": "oomlab-system"}
    ]


def test_every_rbac_rule_is_explained() -> None:
    text = (MANIFESTS / "rbac" / "clusterrole.yaml").read_text()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("- apiGroups:"):
            assert lines[i - 1].strip().startswith("#"), f"rule at line {i + 1} has no comment"


# --- kind configs -------------------------------------------------------------------------------

PRIVATE = [ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
SHARED = ipaddress.IPv4Network("100.64.0.0/10")
NODE_IMAGE = re.compile(r"^kindest/node:v1\.37\.\d+@sha256:[0-9a-f]{64}$")


@pytest.mark.parametrize(
    ("name", "behavior", "fail_cgroup_v1"),
    # no-swap is the config for cgroup v1 hosts: kubelets 1.35+ refuse v1 unless told not to
    [("limited-swap.yaml", "LimitedSwap", None), ("no-swap.yaml", "NoSwap", False)],
)
def test_kind_config(name: str, behavior: str, fail_cgroup_v1: bool | None) -> None:
    cfg = load_one(MANIFESTS / "kind" / name)
    assert cfg["kind"] == "Cluster"
    assert cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    for key in ("podSubnet", "serviceSubnet"):
        net = ipaddress.IPv4Network(cfg["networking"][key])
        assert net.subnet_of(SHARED), f"{key} {net} not inside 100.64.0.0/10"
        assert not any(net.overlaps(p) for p in PRIVATE)
    for node in cfg["nodes"]:
        assert NODE_IMAGE.match(node["image"]), node["image"]
        patches = [yaml.safe_load(p) for p in node["kubeadmConfigPatches"]]
        kubelet = [p for p in patches if p.get("kind") == "KubeletConfiguration"]
        assert len(kubelet) == 1
        assert kubelet[0]["failSwapOn"] is False
        assert kubelet[0]["memorySwap"] == {"swapBehavior": behavior}
        assert kubelet[0].get("failCgroupV1") is fail_cgroup_v1


def test_kind_configs_pin_the_same_image() -> None:
    images = {
        node["image"]
        for name in ("limited-swap.yaml", "no-swap.yaml")
        for node in load_one(MANIFESTS / "kind" / name)["nodes"]
    }
    assert len(images) == 1


# --- the operator image -------------------------------------------------------------------------


def test_dockerfile_matches_the_deployment() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.12-slim$", text, re.M)
    assert len(re.findall(r"^FROM \$\{BASE_IMAGE\}", text, re.M)) == 2, "both stages on BASE_IMAGE"
    assert re.search(r"^USER 65532(:65532)?$", text, re.M)
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M)
    assert entrypoint is not None
    assert yaml.safe_load(entrypoint.group(1)) == OPERATOR_COMMAND
    assert (ROOT / ".dockerignore").is_file()
