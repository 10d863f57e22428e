"""The kubelet reads of node-scale experiments: through the API server's node proxy when the
caller may, else from the kubelet itself (nodes/stats, nodes/configz), never an exception."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from oomlab.operator import node_pressure_io as io

NODE = {
    "metadata": {"name": "oomlab-vm"},
    "status": {
        "addresses": [
            {"type": "Hostname", "address": "oomlab-vm"},
            {"type": "InternalIP", "address": "100.64.0.2"},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
    },
}


def test_the_kubelet_address_is_the_internal_ip_and_kubelet_port() -> None:
    assert io.kubelet_address(NODE) == "https://100.64.0.2:10250"
    v6 = {"status": {**NODE["status"], "addresses": [{"type": "InternalIP", "address": "fd::2"}]}}
    assert io.kubelet_address(v6) == "https://[fd::2]:10250"
    assert io.kubelet_address({"status": {"addresses": NODE["status"]["addresses"]}}) is None
    assert (
        io.kubelet_address({"status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 1}}}})
        is None
    )


class Raw:
    def __init__(self, status: int, data: Any) -> None:
        self.status = status
        self.data = json.dumps(data).encode()

    def read(self) -> None:
        pass


class FakeCore:
    proxy_status = 403

    def __init__(self, api: Any) -> None:
        pass

    def connect_get_node_proxy_with_path(self, node: str, path: str, **_: Any) -> Raw:
        if self.proxy_status != 200:
            raise ApiException(status=self.proxy_status, reason="proxy")
        return Raw(200, {"via": "proxy", "path": path})

    def read_node(self, name: str) -> dict[str, Any]:
        return NODE


class FakeApi:
    kubelet_status = 200

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.headers: dict[str, str] = {}

    def sanitize_for_serialization(self, obj: Any) -> Any:
        return obj

    def param_serialize(self, method: str, path: str, **kwargs: Any) -> tuple[Any, ...]:
        assert kwargs["auth_settings"] == ["BearerToken"]
        return method, kwargs["_host"] + path, {"authorization": "Bearer sa-token"}, None, None

    def call_api(self, method: str, url: str, **kwargs: Any) -> Raw:
        self.urls.append(url)
        self.headers = kwargs["header_params"]
        return Raw(self.kubelet_status, {"via": "kubelet"})


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    api = FakeApi()
    monkeypatch.setattr(io, "load_client_config", lambda: api)
    monkeypatch.setattr(client, "CoreV1Api", FakeCore)
    return api


def test_through_the_proxy_when_allowed(fake: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FakeCore, "proxy_status", 200)
    assert io.read_summary("oomlab-vm") == {"via": "proxy", "path": "stats/summary"}
    assert fake.urls == []


def test_from_the_kubelet_itself_when_the_proxy_is_forbidden(fake: FakeApi) -> None:
    assert io.read_summary("oomlab-vm") == {"via": "kubelet"}
    assert io.configz("oomlab-vm") == {"via": "kubelet"}
    assert fake.urls == [
        "https://100.64.0.2:10250/stats/summary",
        "https://100.64.0.2:10250/configz",
    ]
    assert fake.headers == {"authorization": "Bearer sa-token"}


def test_none_when_neither_answers(fake: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FakeApi, "kubelet_status", 403)
    assert io.read_summary("oomlab-vm") is None
    monkeypatch.setattr(FakeCore, "proxy_status", 503)
    assert io.configz("oomlab-vm") is None
    assert fake.urls == ["https://100.64.0.2:10250/stats/summary"]
