"""oomlab.kube's cached API client follows the configuration in force when it is asked for: a
changed KUBECONFIG, a rewritten kubeconfig or another HOME gives a fresh client (no cluster is
contacted: making a client sends nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes.config import ConfigException

from hermetic import write_kubeconfig
from oomlab import kube, kube_client


def kubeconfig(path: Path, server: str) -> str:
    return str(write_kubeconfig(path, server))


def server() -> str:
    return str(kube.load_client_config().configuration.host)


def test_the_same_configuration_keeps_its_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", kubeconfig(tmp_path / "a", "https://127.0.0.1:1"))
    assert kube.load_client_config() is kube.load_client_config()


def test_a_changed_kubeconfig_variable_gives_a_fresh_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", kubeconfig(tmp_path / "a", "https://127.0.0.1:1"))
    first = kube.load_client_config()
    monkeypatch.setenv("KUBECONFIG", kubeconfig(tmp_path / "b", "https://127.0.0.1:2"))
    assert kube.load_client_config() is not first
    assert server() == "https://127.0.0.1:2"


def test_a_rewritten_kubeconfig_gives_a_fresh_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = kubeconfig(tmp_path / "a", "https://127.0.0.1:1")
    monkeypatch.setenv("KUBECONFIG", path)
    assert server() == "https://127.0.0.1:1"
    kubeconfig(Path(path), "https://127.0.0.1:3")
    assert server() == "https://127.0.0.1:3"


def test_a_kubeconfig_that_went_away_is_no_configuration_not_the_cached_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", kubeconfig(tmp_path / "a", "https://127.0.0.1:1"))
    kube.load_client_config()
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(ConfigException):
        kube.load_client_config()


def test_without_kubeconfig_the_home_read_now_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client library fixes its default location when it is imported; a later HOME counts.
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    kubeconfig(tmp_path / ".kube" / "config", "https://127.0.0.1:4")
    assert server() == "https://127.0.0.1:4"


def test_a_listed_kubeconfig_that_appears_later_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    later, present = tmp_path / "later", kubeconfig(tmp_path / "present", "https://127.0.0.1:1")
    monkeypatch.setenv("KUBECONFIG", f"{later}:{present}")
    assert server() == "https://127.0.0.1:1"
    kubeconfig(later, "https://127.0.0.1:5")  # the first file's context wins the merge
    assert server() == "https://127.0.0.1:5"


def test_in_a_pod_the_service_account_is_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", kubeconfig(tmp_path / "a", "https://127.0.0.1:1"))
    token = tmp_path / "token"
    token.write_text("t")
    monkeypatch.setattr(kube_client, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "100.64.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert kube.client_source() == ("in-cluster", "100.64.0.1", "443")
    token.unlink()  # host and port alone, without the service account's token: not in a pod
    assert kube.client_source()[0] == "kubeconfig"
