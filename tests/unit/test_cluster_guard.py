"""The operator and e2e tiers (and the operator benchmarks) only touch the project's own clusters:
tests/lab.py's guard, with a kubeconfig written here (no cluster is contacted)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client

from lab import ALLOW_FOREIGN, ClusterUnavailable, connect, current_cluster, refusal, vm_node

pytestmark = pytest.mark.unit


def kubeconfig(tmp_path: Path, current: str, clusters: dict[str, str]) -> str:
    """A kubeconfig with one context per (context -> cluster) pair; ``current`` is selected."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": c, "cluster": {"server": "https://127.0.0.1:1"}} for c in clusters.values()
        ],
        "users": [{"name": "someone", "user": {"token": "t"}}],
        "contexts": [
            {"name": ctx, "context": {"cluster": c, "user": "someone"}}
            for ctx, c in clusters.items()
        ],
        "current-context": current,
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.parametrize("cluster", ["oomlab", "kind-oomlab"])
def test_the_project_clusters_are_accepted(cluster: str) -> None:
    assert refusal(cluster, allow_foreign=False) is None


@pytest.mark.parametrize("cluster", ["prod", "kind-kind", "oomlab-prod", "", None])
def test_any_other_cluster_is_refused_with_the_way_out(cluster: str | None) -> None:
    reason = refusal(cluster, allow_foreign=False)
    assert reason is not None
    assert repr(cluster) in reason
    assert f"{ALLOW_FOREIGN}=1" in reason


def test_allow_foreign_accepts_any_cluster() -> None:
    assert refusal("prod", allow_foreign=True) is None


def test_the_current_context_decides_not_the_first_cluster(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, "work", {"lab": "oomlab", "work": "prod"})
    assert current_cluster(path) == "prod"
    path = kubeconfig(tmp_path, "lab", {"lab": "oomlab", "work": "prod"})
    assert current_cluster(path) == "oomlab"


def test_connect_refuses_a_foreign_cluster_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ALLOW_FOREIGN, raising=False)
    path = kubeconfig(tmp_path, "work", {"work": "prod"})
    with pytest.raises(ClusterUnavailable, match="'prod', not one of this project's"):
        connect(path)


def test_connect_with_allow_foreign_goes_on_to_the_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_FOREIGN, "1")
    # connect() loads the kubeconfig as the client's default: give it back after this test
    monkeypatch.setattr(client.Configuration, "_default", client.Configuration._default)
    path = kubeconfig(tmp_path, "work", {"work": "prod"})  # https://127.0.0.1:1: nobody there
    with pytest.raises(ClusterUnavailable, match="does not answer"):
        connect(path)


def test_an_unreadable_kubeconfig_is_no_cluster(tmp_path: Path) -> None:
    with pytest.raises(ClusterUnavailable, match="cannot read the kubeconfig"):
        connect(str(tmp_path / "missing"))


class FakeCore:
    def __init__(self, nodes: list[client.V1Node]) -> None:
        self.nodes = nodes
        self.selectors: list[str] = []

    def list_node(self, label_selector: str) -> client.V1NodeList:
        self.selectors.append(label_selector)
        return client.V1NodeList(items=self.nodes)


def test_vm_node_is_the_limited_swap_node_as_a_mapping() -> None:
    node = client.V1Node(metadata=client.V1ObjectMeta(name="oomlab-vm", labels={"a": "b"}))
    core = FakeCore([node])
    found = vm_node(core)  # type: ignore[arg-type]
    assert found["metadata"] == {"name": "oomlab-vm", "labels": {"a": "b"}}
    assert core.selectors == ["oomlab.dev/swap-behavior=LimitedSwap"]


def test_no_vm_node_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OOMLAB_REQUIRE_CLUSTER", "1")
    with pytest.raises(pytest.fail.Exception, match="no LimitedSwap node"):
        vm_node(FakeCore([]))  # type: ignore[arg-type]
