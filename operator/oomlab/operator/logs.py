"""The workload's progress from its pod: the termination message first, the log when needed.

memhog writes one JSON line per report step. Its first line holds its cgroup report (the swap
the node really gave it) and its last ones the progress, so:

* a container that ended: its termination message (the last log lines, FallbackToLogsOnError)
  when that has the progress and the cgroup report, else the whole log (exit 0 leaves no
  message), which stays small;
* a timed-out experiment: the log's tail, for how far it got.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from oomlab import kube
from oomlab.rules.results import Progress
from oomlab.rules.workload import parse_lines

FULL_LOG_LINES = 5000
"""memhog writes a line per report step (50 MiB by default): thousands of lines is a lot."""


def terminated_state(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``state.terminated`` of the first container that ended; None while none has."""
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated")
        if terminated:
            return dict(terminated)
    return None


async def workload_progress(namespace: str, pod: Mapping[str, Any]) -> Progress | None:
    """memhog's progress once the container ended; None while it runs."""
    terminated = terminated_state(pod)
    if terminated is None:
        return None
    progress = parse_lines(str(terminated.get("message") or "").splitlines())
    if progress.lines and progress.allocated_bytes is not None and progress.cgroup:
        return progress
    name = (pod.get("metadata") or {}).get("name", "")
    lines = await asyncio.to_thread(kube.read_pod_log_tail, namespace, name, FULL_LOG_LINES)
    from_log = parse_lines(lines)
    return from_log if from_log.lines else progress


async def progress_so_far(namespace: str, pod: str) -> Progress | None:
    """How far a workload that is still running got: its log's tail; None without a log."""
    lines = await asyncio.to_thread(kube.read_pod_log_tail, namespace, pod)
    return parse_lines(lines) if lines else None
