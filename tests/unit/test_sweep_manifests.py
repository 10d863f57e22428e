"""Static checks of the OOMSweep CRD, the metrics Service and the optional ServiceMonitor."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from oomlab.rules.sweep import AXES, MAX_CELLS

pytestmark = pytest.mark.unit

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def load(relative: str) -> dict[str, Any]:
    (doc,) = [d for d in yaml.safe_load_all((MANIFESTS / relative).read_text()) if d]
    return dict(doc)


def version() -> dict[str, Any]:
    (served,) = load("crd/oomsweeps.yaml")["spec"]["versions"]
    return dict(served)


def test_same_group_and_names() -> None:
    crd = load("crd/oomsweeps.yaml")
    experiments = load("crd/oomexperiments.yaml")
    assert crd["spec"]["group"] == experiments["spec"]["group"] == "oomlab.dev"
    assert crd["spec"]["names"]["kind"] == "OOMSweep"
    assert crd["spec"]["names"]["plural"] == "oomsweeps"
    assert crd["metadata"]["name"] == "oomsweeps.oomlab.dev"
    assert version()["name"] == "v1alpha1" and version()["subresources"] == {"status": {}}


def test_printer_columns_done_agreeing_phase() -> None:
    columns = {c["name"]: c["jsonPath"] for c in version()["additionalPrinterColumns"]}
    assert columns["Done"] == ".status.progress"
    assert columns["Agreeing"] == ".status.predictionsHeld"
    assert columns["Phase"] == ".status.phase"


def test_the_axes_are_the_rules_axes_and_bounded() -> None:
    spec = version()["schema"]["openAPIV3Schema"]["properties"]["spec"]
    axes = spec["properties"]["axes"]["properties"]
    assert tuple(axes) == AXES
    for name, axis in axes.items():
        assert axis["type"] == "array" and axis["maxItems"] >= 1, name
        assert axis["minItems"] == 1, name


def test_cel_caps_the_cell_count_at_the_rules_cap() -> None:
    spec = version()["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = [rule["rule"] for rule in spec["x-kubernetes-validations"]]
    (cap,) = [rule for rule in rules if "size(self.axes." in rule]
    for axis in AXES:
        assert f"size(self.axes.{axis})" in cap
    assert re.search(r"<= (\d+)\s*$", cap) and int(re.findall(r"<= (\d+)", cap)[-1]) == MAX_CELLS
    assert "self == oldSelf" in rules


def test_every_cel_rule_has_a_message() -> None:
    def visit(node: Any) -> Any:
        if isinstance(node, dict):
            yield from node.get("x-kubernetes-validations", [])
            for value in node.values():
                yield from visit(value)
        elif isinstance(node, list):
            for value in node:
                yield from visit(value)

    rules = list(visit(version()["schema"]))
    assert len(rules) >= 6
    assert all(rule.get("message") for rule in rules)


def test_kustomization_deploys_crd_and_service_not_the_servicemonitor() -> None:
    resources = load("kustomization.yaml")["resources"]
    assert "crd/oomsweeps.yaml" in resources
    assert "operator/metrics-service.yaml" in resources
    assert not any(r.startswith("monitoring") for r in resources)


def test_the_metrics_service_reaches_the_operator_port() -> None:
    service = load("operator/metrics-service.yaml")
    deployment = load("operator/deployment.yaml")
    pod = deployment["spec"]["template"]
    assert service["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    (port,) = service["spec"]["ports"]
    assert ports[port["targetPort"]] == int(env["OOMLAB_METRICS_PORT"]) == port["port"]
    assert env["OOMLAB_METRICS_ADDRESS"] == "0.0.0.0"
    assert service["spec"]["type"] == "ClusterIP"


def test_the_servicemonitor_selects_the_service() -> None:
    monitor = load("monitoring/servicemonitor.yaml")
    service = load("operator/metrics-service.yaml")
    assert monitor["kind"] == "ServiceMonitor"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]


def test_rbac_for_sweeps_is_least_privilege() -> None:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in load("rbac/clusterrole.yaml")["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    assert granted[("oomlab.dev", "oomsweeps")] == {"get", "list", "watch"}
    assert granted[("oomlab.dev", "oomsweeps/status")] == {"get", "patch"}
    assert granted[("oomlab.dev", "oomsweeps/finalizers")] == {"update"}
    assert "delete" not in granted[("oomlab.dev", "oomexperiments")]
