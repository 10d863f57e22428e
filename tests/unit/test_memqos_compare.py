"""oomlab memqos-compare without a cluster: the kubelet drop-in per setting, the /configz check,
the restore in every case (a fake node), and the rows it prints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from oomlab.cli import memqos_compare as mq
from oomlab.cli.memqos import helper_pod
from oomlab.rules.memory_qos import MemoryQoSSettings, ReservationPolicy

MiB = 2**20
TIERED = MemoryQoSSettings(True, ReservationPolicy.TIERED, 0.9)


def test_dropin_per_setting() -> None:
    assert mq.dropin(MemoryQoSSettings()) == ""
    assert mq.dropin(mq.variant("off")) == (
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        "featureGates:\n  MemoryQoS: false\n"
    )
    text = mq.dropin(mq.variant("tiered", 0.5))
    assert "  MemoryQoS: true\n" in text
    assert "memoryReservationPolicy: TieredReservation\n" in text
    assert text.endswith("memoryThrottlingFactor: 0.5\n")
    with pytest.raises(mq.MemQoSError, match="unknown setting"):
        mq.variant("sometimes")
    with pytest.raises(mq.MemQoSError, match="--factor"):
        mq.variant("tiered", 1.5)


@pytest.mark.parametrize(
    ("config", "settings", "wrong"),
    [
        ({}, MemoryQoSSettings(), ""),
        ({"memoryReservationPolicy": "None"}, MemoryQoSSettings(), ""),
        ({"featureGates": {"MemoryQoS": False}}, mq.variant("off"), ""),
        ({}, mq.variant("off"), "MemoryQoS gate None (want False)"),
        (
            {"featureGates": {"MemoryQoS": True}, "memoryReservationPolicy": "TieredReservation",
             "memoryThrottlingFactor": 0.9},
            TIERED, "",
        ),
        (
            {"featureGates": {"MemoryQoS": True}, "memoryReservationPolicy": "None"},
            TIERED,
            "memoryReservationPolicy None (want TieredReservation); "
            "memoryThrottlingFactor None (want 0.9)",
        ),
        ({"featureGates": {"MemoryQoS": False}}, MemoryQoSSettings(), "MemoryQoS gate False"),
    ],
)  # fmt: skip
def test_config_mismatch(config: dict[str, Any], settings: MemoryQoSSettings, wrong: str) -> None:
    found = mq.config_mismatch({"kubeletconfig": config}, settings)
    assert found.startswith(wrong) if wrong else found == ""


class FakeNode:
    def __init__(self, fail_on: str | None = None) -> None:
        self.labels: dict[str, str | None] = {"oomlab.dev/memory-qos": None}
        self.applied: list[MemoryQoSSettings] = []
        self.fail_on = fail_on

    def apply(self, settings: MemoryQoSSettings) -> None:
        self.applied.append(settings)
        if self.fail_on == "apply" and settings.gate is not None:
            raise mq.MemQoSError("kubelet did not come back")

    def read_labels(self) -> dict[str, str | None]:
        return dict(self.labels)

    def set_labels(self, labels: Mapping[str, str | None]) -> None:
        self.labels.update(labels)


def body(cell: str, phase: str, agrees: bool = True) -> dict[str, Any]:
    predicted = {"memoryMin": 0, "memoryLow": 400 * MiB, "memoryHigh": 490 * MiB}
    seen = predicted if agrees else {**predicted, "memoryHigh": -1}
    return {
        "metadata": {"name": f"memqos-x-{cell}"},
        "status": {
            "phase": phase,
            "kubernetes": {
                "predictedOutcome": "Completed" if cell == "burstable" else "OOMKilled",
                "durationSeconds": 41.5,
                "swapBytesAtEnd": 530 * MiB if phase == "Completed" else None,
                "memoryQoS": {"predicted": predicted, "observed": seen, "agrees": agrees,
                              "explanation": "why"},
            },
        },
    }  # fmt: skip


def test_compare_runs_every_cell_per_setting_and_restores() -> None:
    node = FakeNode()
    seen: list[tuple[str, str]] = []

    def run(variant: str, cell: mq.Cell) -> Mapping[str, Any]:
        seen.append((variant, cell.name))
        assert node.labels["oomlab.dev/memory-qos"] == ("on" if variant == "tiered" else "off")
        return body(cell.name, "Completed" if cell.name == "burstable" else "OOMKilled")

    variants = [("off", mq.variant("off")), ("tiered", TIERED)]
    comparison = mq.compare(node, run, node="oomlab-vm", variants=variants)
    assert seen == [("off", "burstable"), ("off", "guaranteed"),
                    ("tiered", "burstable"), ("tiered", "guaranteed")]  # fmt: skip
    assert node.applied == [mq.variant("off"), TIERED, MemoryQoSSettings()]
    assert node.labels == {
        "oomlab.dev/memory-qos": None,
        "oomlab.dev/memory-reservation-policy": None,
        "oomlab.dev/memory-throttling-factor": None,
    }
    assert mq.findings(comparison) == []
    rows = mq.table_rows(comparison)
    assert rows[0] == ["off", "burstable", "0 B", "400 MiB", "490 MiB", "yes", "Completed",
                       "Completed", "530 MiB", "42 s"]  # fmt: skip
    assert mq.to_json(comparison)["runs"][3]["observed"] == "OOMKilled"


def test_a_failed_switch_still_restores_the_node() -> None:
    node = FakeNode(fail_on="apply")
    with pytest.raises(mq.MemQoSError, match="did not come back"):
        mq.compare(node, lambda v, c: {}, node="n", variants=[("tiered", TIERED)])
    assert node.applied[-1] == MemoryQoSSettings()


def test_a_failed_restore_is_loud() -> None:
    class Stuck(FakeNode):
        def apply(self, settings: MemoryQoSSettings) -> None:
            if settings.gate is None:
                raise mq.MemQoSError("no answer")

    with pytest.raises(mq.MemQoSRestoreError, match=r"kubelet\.conf\.d/50-oomlab-memqos\.conf"):
        mq.compare(Stuck(), lambda v, c: body(c.name, "Completed"), node="n",
                   variants=[("off", mq.variant("off"))])  # fmt: skip


def test_findings_name_disagreements() -> None:
    comparison = mq.Comparison(
        "n",
        (mq.run_from_experiment("tiered", "burstable", body("burstable", "OOMKilled", False)),),
        {},
        "",
    )
    found = mq.findings(comparison)
    assert found[0].startswith("tiered/burstable (memqos-x-burstable): memory.min/low/high")
    assert found[1].endswith("predicted Completed, observed OOMKilled")
    assert mq.table_rows(comparison)[0][4] == "max (predicted 490 MiB)"


def test_helper_pod_restarts_the_kubelet_through_its_drop_in_directory() -> None:
    pod = helper_pod("h", "ns", "oomlab-vm", "oomlab/memhog:dev", "text", "s")
    spec = pod["spec"]
    assert spec["hostPID"] is True and spec["nodeName"] == "oomlab-vm"
    assert spec["volumes"][0]["hostPath"] == {"path": mq.DROPIN_DIR, "type": "Directory"}
    assert spec["containers"][0]["command"][-1] == "text"
