"""How a Docker run reaches an OOMExperiment: the annotation ``oomlab parity`` writes.

Only the operator reads it (:mod:`oomlab.operator.docker_view`) and folds it into status.docker
under its own configuration, so the status has one writer. The writer (through
:mod:`oomlab.kube`) and the reader share the format from here.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from oomlab.rules.docker import DockerFlags
from oomlab.rules.results import RunResult
from oomlab.rules.timestamps import rfc3339

OBSERVATION_ANNOTATION = "docker.oomlab.dev/observation"
"""Not under ``oomlab.dev/``: kopf's progress and diff-base storages own that prefix and leave its
annotations out of the state they compare, so kopf would never see this one change."""


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


def flags_document(flags: DockerFlags) -> dict[str, Any]:
    """The Docker flags a run was made with, as the annotation records them."""
    return _without_none({"memory": flags.memory, "memorySwap": flags.memory_swap})


def observation_document(result: RunResult, flags: DockerFlags, now: datetime) -> dict[str, Any]:
    """What ``oomlab parity`` observed, as the annotation's JSON object."""
    progress = result.progress
    return _without_none(
        {
            "outcome": result.outcome.value,
            "exitCode": result.exit_code,
            "reason": result.reason,
            "oomKilled": result.oom_killed,
            "allocatedBytes": progress.allocated_bytes,
            "peakBytes": result.peak_usage_bytes
            or progress.peak_rss_bytes
            or progress.peak_allocated_bytes,
            "durationSeconds": None if result.duration_s is None else round(result.duration_s, 3),
            "engine": result.host.engine or result.runner,
            "engineVersion": result.host.engine_version,
            "runtime": result.runtime or result.host.runtime,
            "cgroupVersion": result.host.cgroup_version.value,
            "hostSwapBytes": result.host.swap_total_bytes,
            "host": result.host.hostname,
            "flags": flags_document(flags),
            "observedAt": rfc3339(now),
        }
    )


def observation_annotation(result: RunResult, flags: DockerFlags, now: datetime) -> str:
    return json.dumps(observation_document(result, flags, now), sort_keys=True)
