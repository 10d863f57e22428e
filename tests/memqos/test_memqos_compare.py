"""``oomlab memqos-compare`` on the real LimitedSwap VM node: it restarts that node's kubelet
with other Memory QoS settings for several minutes, so it is not part of ``make test-e2e``;
``make test-memqos`` runs it (hold the cluster lock). Every cell's memory.min, memory.low and
memory.high as the workload read them equal the rules' prediction under each setting, the
outcomes are the seed's, and the node's kubelet settings and labels are as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from lab import ClusterUnavailable, connect, unavailable, vm_node
from oomlab.cli.memqos_compare import COMPARE_LABEL
from oomlab.rules.memory_qos import MemoryQoSSettings, settings_labels

pytestmark = pytest.mark.e2e
OOMLAB = str(Path(sys.executable).parent / "oomlab")
LABELS = tuple(settings_labels(MemoryQoSSettings()))


def test_memqos_compare_observes_the_predicted_values_and_restores_the_kubelet() -> None:
    kubeconfig = os.environ.get("KUBECONFIG", "/var/lib/oomlab/cluster/kubeconfig")
    namespace = os.environ.get("OOMLAB_MEMQOS_NAMESPACE", "default")
    try:
        core = client.CoreV1Api(connect(kubeconfig))
    except ClusterUnavailable as exc:
        unavailable(str(exc))
    labels = vm_node(core)["metadata"].get("labels") or {}
    before = {key: labels.get(key) for key in LABELS}
    done = subprocess.run(
        [OOMLAB, "memqos-compare", "--json", "-n", namespace, "--settings", "off,tiered"],
        capture_output=True, text=True, timeout=3600,
        env={**os.environ, "KUBECONFIG": kubeconfig},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    print(json.dumps(result, indent=2))  # what was measured, for the log (pytest -s)
    assert [(r["setting"], r["cell"]) for r in result["runs"]] == [
        ("off", "burstable"), ("off", "guaranteed"), ("tiered", "burstable"),
        ("tiered", "guaranteed"),
    ]  # fmt: skip
    for run in result["runs"]:
        assert run["agrees"] is True, run
        assert run["seen"] == run["predicted"], run
        assert (
            run["observed"] == {"burstable": "Completed", "guaranteed": "OOMKilled"}[run["cell"]]
        ), run
    tiered = {r["cell"]: r for r in result["runs"] if r["setting"] == "tiered"}
    assert tiered["burstable"]["seen"]["memoryLow"] == 400 * 2**20
    assert tiered["guaranteed"]["seen"]["memoryMin"] == 500 * 2**20
    labels = vm_node(core)["metadata"].get("labels") or {}
    assert {key: labels.get(key) for key in LABELS} == before
    left = core.list_pod_for_all_namespaces(label_selector=COMPARE_LABEL).items
    assert [p.metadata.name for p in left if p.metadata.name.startswith("oomlab-memqos-")] == []
