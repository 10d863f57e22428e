"""What the operator keeps between handlers, in kopf's ``memo``: its configuration, its alarms,
and what it knows of the nodes.

The nodes come from a kopf index over the Node watch (``nodes_by_name`` in handlers.py): kopf
fills it from its first listing before any other handler runs and keeps it current with every
Node event, so a label switched on purpose (``oomlab thp-compare`` sets ``oomlab.dev/thp``
between two runs) is used at once, and the RuntimeClass check needs no listing of its own. The
API is asked only when the index cannot answer (no RBAC to watch nodes, or a node too new).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from oomlab import kube
from oomlab.operator.alarms import Alarms, ExperimentRef
from oomlab.operator.config import OperatorConfig
from oomlab.operator.deadline import Deadline
from oomlab.rules.nodes import NodeFacts, node_facts_from_node
from oomlab.rules.runtimeclass import NodeView, node_view

MEMO_KEY = "oomlab"


@dataclass(frozen=True)
class NodeRecord:
    """One node as the operator keeps it: facts for the prediction, labels and taints for the
    RuntimeClass check."""

    facts: NodeFacts
    view: NodeView


def node_record(node: Mapping[str, Any]) -> NodeRecord:
    return NodeRecord(facts=node_facts_from_node(node), view=node_view(node))


NodeIndex = Mapping[str, Collection[NodeRecord]]
"""kopf's index: node name -> the records kopf keeps for it (one per node)."""

DeadlinePassed = Callable[["OperatorState", Deadline, ExperimentRef], Coroutine[Any, Any, None]]
"""What the operator does when an experiment's alarm goes off. It writes the status, which
arms alarms again, so it lives above this module and is handed in at startup."""


@dataclass
class OperatorState:
    config: OperatorConfig = field(default_factory=OperatorConfig)
    alarms: Alarms = field(default_factory=Alarms)
    nodes: NodeIndex = field(default_factory=dict)
    on_deadline: DeadlinePassed | None = None


def state_of(memo: kopf.Memo) -> OperatorState:
    state = memo.get(MEMO_KEY)
    if not isinstance(state, OperatorState):
        raise kopf.PermanentError("the operator's startup handler has not configured it")
    return state


async def node_facts(state: OperatorState, name: str | None) -> NodeFacts | None:
    """A node's memory, swap and labels: from the index, else read from the API."""
    if not name:
        return None
    records = state.nodes.get(name)
    if records:
        return next(iter(records)).facts
    return await asyncio.to_thread(kube.get_node_facts, name)


async def node_views(state: OperatorState) -> list[NodeView]:
    """Every node's name, labels and taints: from the index, else listed from the API ([] when
    the operator may not list them)."""
    if state.nodes:
        return [record.view for records in state.nodes.values() for record in records]
    listed = await asyncio.to_thread(kube.list_nodes)
    return [node_view(node) for node in listed or []]
