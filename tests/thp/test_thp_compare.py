"""``oomlab thp-compare`` on the real LimitedSwap VM node: it changes that node's THP mode for
several minutes, so it is not part of ``make test-e2e``; ``make test-thp`` runs it (hold the
cluster lock). It checks the mechanics, not which mode kills: both runs terminal and sampled,
predicted with the mode they ran under, the kernel's swap limit as predicted, and the node's THP
mode, its label and the pods exactly as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from lab import ClusterUnavailable, connect, unavailable, vm_node
from oomlab.cli.thp_compare import COMPARE_LABEL, MODES, from_json, report_section
from oomlab.rules.nodes import THP_LABEL

pytestmark = pytest.mark.e2e
OOMLAB = str(Path(sys.executable).parent / "oomlab")


def test_thp_compare_measures_both_modes_and_leaves_the_node_as_it_found_it() -> None:
    kubeconfig = os.environ.get("KUBECONFIG", "/var/lib/oomlab/cluster/kubeconfig")
    try:
        core = client.CoreV1Api(connect(kubeconfig))
    except ClusterUnavailable as exc:
        unavailable(str(exc))
    before = vm_node(core)["metadata"]["labels"].get(THP_LABEL)
    done = subprocess.run(
        [OOMLAB, "thp-compare", "--json"], capture_output=True, text=True, timeout=3600,
        env={**os.environ, "KUBECONFIG": kubeconfig},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    print(report_section(from_json(result)))  # what was measured, for the log (pytest -s)
    assert [run["mode"] for run in result["runs"]] == list(MODES)
    for run in result["runs"]:
        assert run["observed"] in ("Completed", "OOMKilled"), run
        assert run["operator_thp"] == run["mode"], run
        assert (
            run["swap_limit_bytes"]
            == run["predicted_swap_bytes"]
            == (result["sizing"]["swap_share_bytes"])
        )
        assert run["end"] is not None and run["end"]["samples"] > 0, run
        assert run["end"]["thp_seen"] == run["mode"]
    assert vm_node(core)["metadata"]["labels"].get(THP_LABEL) == before
    assert result["original_mode"] == before
    left = core.list_pod_for_all_namespaces(label_selector=COMPARE_LABEL).items
    assert [p.metadata.name for p in left if p.metadata.name.startswith("oomlab-thp-")] == []
