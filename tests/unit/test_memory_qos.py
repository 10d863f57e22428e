"""Memory QoS: the memory.min / memory.low / memory.high the kubelet writes into a container's
cgroup, per kubelet version (1.34.4 and 1.37.2 read in the source), settings and pod shape.

Sizes are the project's VM node's (FACTS.md): capacity.memory 1,531,936,768 B; allocatable is
that minus evictionHard 100Mi.
"""

from __future__ import annotations

import pytest

from oomlab.rules.memory_qos import (
    MEMORY_QOS_LABEL,
    RESERVATION_POLICY_LABEL,
    THROTTLING_FACTOR_LABEL,
    CgroupProtection,
    Generation,
    MemoryQoSSettings,
    ReservationPolicy,
    container_protection,
    effective,
    generation_of,
    protection_check,
    settings_from_labels,
    settings_labels,
    throttle_note,
)
from oomlab.rules.results import CgroupVersion
from oomlab.rules.semantics import QoSClass

MiB = 2**20
ALLOCATABLE = 1_531_936_768 - 100 * MiB
B, G, BE = QoSClass.BURSTABLE, QoSClass.GUARANTEED, QoSClass.BEST_EFFORT
TIERED = ReservationPolicy.TIERED
V137, V134 = "v1.37.2", "v1.34.4"


def page_floor(value: float) -> int:
    return int(value // 4096 * 4096)


def on(policy: ReservationPolicy | None = None, factor: float | None = None) -> MemoryQoSSettings:
    return MemoryQoSSettings(gate=True, reservation_policy=policy, throttling_factor=factor)


DEFAULT = MemoryQoSSettings()
OFF = MemoryQoSSettings(gate=False)

CASES = [
    # (id, version, settings, qos, request, limit, (min, low, high))
    ("1.37 defaults: gate on, policy None, no factor", V137, DEFAULT, B, 400 * MiB, 500 * MiB,
     (0, 0, None)),
    ("1.37 gate off", V137, OFF, B, 400 * MiB, 500 * MiB, (0, 0, None)),
    ("1.37 tiered Burstable: memory.low", V137, on(TIERED), B, 400 * MiB, 500 * MiB,
     (0, 400 * MiB, None)),
    ("1.37 tiered Guaranteed: memory.min", V137, on(TIERED), G, 500 * MiB, 500 * MiB,
     (500 * MiB, 0, None)),
    ("1.37 tiered + 0.9 Burstable", V137, on(TIERED, 0.9), B, 400 * MiB, 500 * MiB,
     (0, 400 * MiB, 490 * MiB)),
    ("1.37 factor without policy", V137, on(None, 0.9), B, 400 * MiB, 500 * MiB,
     (0, 0, 490 * MiB)),
    ("1.37 factor, Guaranteed: no memory.high", V137, on(TIERED, 0.9), G, 500 * MiB, 500 * MiB,
     (500 * MiB, 0, None)),
    ("1.37 factor, Burstable request == limit", V137, on(TIERED, 0.9), B, 500 * MiB, 500 * MiB,
     (0, 500 * MiB, None)),
    ("1.37 factor, no limit: node allocatable", V137, on(None, 0.5), B, 400 * MiB, None,
     (0, 0, page_floor(400 * MiB + 0.5 * (ALLOCATABLE - 400 * MiB)))),
    ("1.37 factor, BestEffort: allocatable", V137, on(TIERED, 0.9), BE, None, None,
     (0, 0, page_floor(0.9 * ALLOCATABLE))),
    ("1.37 request not page aligned: read back in pages", V137, on(TIERED), B,
     400 * MiB + 100, 500 * MiB, (0, 400 * MiB, None)),
    ("1.37 factor too small to pass the request", V137, on(None, 0.00001), B, 400 * MiB,
     400 * MiB + 4096, (0, 0, None)),
    ("1.34 defaults: gate off", V134, DEFAULT, B, 400 * MiB, 500 * MiB, (0, 0, None)),
    ("1.34 gate on: memory.min for Burstable, factor 0.9 by default", V134, on(), B,
     400 * MiB, 500 * MiB, (400 * MiB, 0, 490 * MiB)),
    ("1.34 gate on, Guaranteed", V134, on(), G, 500 * MiB, 500 * MiB, (500 * MiB, 0, None)),
    ("1.34 gate on, BestEffort: nothing", V134, on(), BE, None, None, (0, 0, None)),
    ("1.34 has no reservation policy: tiered ignored", V134, on(TIERED), B, 400 * MiB,
     500 * MiB, (400 * MiB, 0, 490 * MiB)),
    ("1.34 factor 0.5", V134, on(None, 0.5), B, 400 * MiB, 500 * MiB,
     (400 * MiB, 0, 450 * MiB)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("version", "settings", "qos", "memory_request", "limit", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_container_protection(
    version: str,
    settings: MemoryQoSSettings,
    qos: QoSClass,
    memory_request: int | None,
    limit: int | None,
    expected: tuple[int, int, int | None],
) -> None:
    qos_settings = effective(settings, version)
    assert qos_settings is not None
    got = container_protection(
        qos_settings,
        cgroup=CgroupVersion.V2,
        qos=qos,
        request=memory_request,
        limit=limit,
        node_allocatable=ALLOCATABLE,
    )
    assert got is not None
    assert (got.memory_min, got.memory_low, got.memory_high) == expected


def test_cgroup_v1_has_no_such_files() -> None:
    qos_settings = effective(on(TIERED, 0.9), V137)
    assert qos_settings is not None
    for cgroup in (CgroupVersion.V1, CgroupVersion.UNKNOWN):
        got = container_protection(
            qos_settings, cgroup=cgroup, qos=B, request=MiB, limit=2 * MiB,
            node_allocatable=ALLOCATABLE,
        )  # fmt: skip
        assert got is None


def test_no_limit_and_unknown_allocatable_predicts_max() -> None:
    qos_settings = effective(on(None, 0.9), V137)
    assert qos_settings is not None
    got = container_protection(
        qos_settings, cgroup=CgroupVersion.V2, qos=B, request=MiB, limit=None,
        node_allocatable=None,
    )  # fmt: skip
    assert got is not None and got.memory_high is None
    assert "allocatable unknown" in got.why


@pytest.mark.parametrize(
    ("version", "expected"),
    [("v1.37.2", Generation.V1_37), ("v1.38.0-alpha.1", Generation.V1_37),
     ("v1.34.4", Generation.V1_34), ("1.30.1", Generation.V1_34),
     ("v1.35.4", None), ("v1.36.3", None), ("v1.26.0", None), (None, None), ("dev", None)],
)  # fmt: skip
def test_generation_of(version: str | None, expected: Generation | None) -> None:
    assert generation_of(version) == expected


def test_effective_defaults_per_version() -> None:
    new = effective(DEFAULT, V137)
    old = effective(DEFAULT, V134)
    assert new is not None and old is not None
    assert (new.enabled, new.reservation_policy, new.throttling_factor) == (
        True, ReservationPolicy.NONE, None,
    )  # fmt: skip
    assert (old.enabled, old.reservation_policy, old.throttling_factor) == (
        False, ReservationPolicy.NONE, 0.9,
    )  # fmt: skip
    assert "v1.37.2's defaults" in new.source
    assert effective(DEFAULT, "v1.36.3") is None
    unset = effective(MemoryQoSSettings(gate=True, factor_unset=True), V134)
    assert unset is not None and unset.throttling_factor is None
    assert "labels" in unset.source


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({}, MemoryQoSSettings()),
        ({MEMORY_QOS_LABEL: "on"}, MemoryQoSSettings(gate=True)),
        ({MEMORY_QOS_LABEL: "off"}, MemoryQoSSettings(gate=False)),
        ({MEMORY_QOS_LABEL: "maybe"}, MemoryQoSSettings()),
        (
            {MEMORY_QOS_LABEL: "on", RESERVATION_POLICY_LABEL: "TieredReservation",
             THROTTLING_FACTOR_LABEL: "0.9"},
            MemoryQoSSettings(True, ReservationPolicy.TIERED, 0.9),
        ),
        ({THROTTLING_FACTOR_LABEL: "unset"}, MemoryQoSSettings(factor_unset=True)),
        ({THROTTLING_FACTOR_LABEL: "1.5"}, MemoryQoSSettings()),
        ({THROTTLING_FACTOR_LABEL: "x"}, MemoryQoSSettings()),
        ({RESERVATION_POLICY_LABEL: "Tiered"}, MemoryQoSSettings()),
    ],
)  # fmt: skip
def test_settings_from_labels(labels: dict[str, str], expected: MemoryQoSSettings) -> None:
    assert settings_from_labels(labels) == expected


@pytest.mark.parametrize(
    "settings",
    [MemoryQoSSettings(), OFF, on(TIERED, 0.9), on(None, 0.25),
     MemoryQoSSettings(gate=True, factor_unset=True)],
)  # fmt: skip
def test_labels_round_trip(settings: MemoryQoSSettings) -> None:
    labels = {k: v for k, v in settings_labels(settings).items() if v is not None}
    assert settings_from_labels(labels) == settings


def test_protection_check_against_memhog_report() -> None:
    predicted = CgroupProtection(0, 400 * MiB, 490 * MiB, "")
    same = {"memory_min_bytes": 0, "memory_low_bytes": 400 * MiB, "memory_high_bytes": 490 * MiB}
    assert protection_check(predicted, same) == (True, [])
    agrees, wrong = protection_check(predicted, {**same, "memory_high_bytes": None})
    assert agrees is False
    assert wrong == ["memory.high reads max, predicted 513802240 (490 MiB)"]
    assert protection_check(predicted, {"version": "v2"}) == (None, [])
    assert protection_check(predicted, None) == (None, [])


def test_throttle_note_says_what_acts() -> None:
    throttled = CgroupProtection(0, 400 * MiB, 490 * MiB, "")
    note = throttle_note(throttled, 500 * MiB, 700 * MiB)
    assert note.startswith("The workload's 700 MiB passes memory.high 490 MiB")
    assert "never kills" in note and "memory.min/low protection only shields" in note
    assert "not throttled" in throttle_note(throttled, 500 * MiB, 300 * MiB)
    nothing = throttle_note(CgroupProtection(0, 0, None, ""), 500 * MiB, 700 * MiB)
    assert nothing == "Memory QoS writes nothing that acts on this experiment."
