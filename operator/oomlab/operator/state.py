"""What the operator keeps between handlers, in kopf's ``memo``: its configuration, its alarms,
and the node facts it has read (kept current by the Node watch, ``node_event`` in handlers.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf

from oomlab import kube
from oomlab.operator.alarms import Alarms, ExperimentRef
from oomlab.operator.config import OperatorConfig
from oomlab.operator.deadline import Deadline
from oomlab.rules.nodes import NodeFacts

MEMO_KEY = "oomlab"
NODE_FACTS_TTL = timedelta(minutes=5)

DeadlinePassed = Callable[["OperatorState", Deadline, ExperimentRef], Coroutine[Any, Any, None]]
"""What the operator does when an experiment's alarm goes off. It writes the status, which
arms alarms again, so it lives above this module and is handed in at startup."""


@dataclass
class OperatorState:
    config: OperatorConfig = field(default_factory=OperatorConfig)
    alarms: Alarms = field(default_factory=Alarms)
    nodes: dict[str, tuple[datetime, NodeFacts | None]] = field(default_factory=dict)
    on_deadline: DeadlinePassed | None = None


def state_of(memo: kopf.Memo) -> OperatorState:
    state = memo.get(MEMO_KEY)
    if not isinstance(state, OperatorState):
        raise kopf.PermanentError("the operator's startup handler has not configured it")
    return state


async def node_facts(state: OperatorState, name: str | None) -> NodeFacts | None:
    """A node's memory and swap capacity, cached for a few minutes."""
    if not name:
        return None
    cached = state.nodes.get(name)
    if cached is not None and datetime.now(UTC) - cached[0] < NODE_FACTS_TTL:
        return cached[1]
    facts = await asyncio.to_thread(kube.get_node_facts, name)
    state.nodes[name] = (datetime.now(UTC), facts)
    return facts
