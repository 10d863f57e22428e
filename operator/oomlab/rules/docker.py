"""Docker's side of an experiment: its flags, whether the host honours them, and the prediction.

``oomlab docker``, ``oomlab report`` and the operator's status.docker all predict Docker through
:func:`docker_prediction`, so a rule changed here changes everywhere at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from oomlab.rules.results import RuntimeInfo
from oomlab.rules.semantics import Allowance, Prediction, docker_allowance, predict
from oomlab.rules.units import parse_docker_flags


@dataclass(frozen=True)
class DockerFlags:
    """``--memory``, ``--memory-swap`` and ``--runtime`` as written (Docker's size strings)."""

    memory: str | None = None
    memory_swap: str | None = None
    runtime: str = "runc"

    @property
    def memory_bytes(self) -> int | None:
        return parse_docker_flags(self.memory, None)[0]

    @property
    def memory_swap_bytes(self) -> int | None:
        return parse_docker_flags(None, self.memory_swap)[1]

    def cli(self) -> str:
        parts = []
        if self.memory is not None:
            parts.append(f"--memory={self.memory}")
        if self.memory_swap is not None:
            parts.append(f"--memory-swap={self.memory_swap}")
        if self.runtime != "runc":
            parts.append(f"--runtime={self.runtime}")
        return " ".join(parts) or "(no limits)"


def honours_memory_swap(host: RuntimeInfo | None) -> bool:
    """Whether ``--memory-swap`` takes effect on ``host``: unless its engine says the kernel has
    no swap accounting (``SwapLimit: false``); an unknown host is taken to have it."""
    return host is None or host.swap_limit_supported is not False


def flags_allowance(flags: DockerFlags, host: RuntimeInfo | None = None) -> Allowance:
    """Docker's allowance for ``flags`` on ``host`` (None: the flags alone); raises
    :class:`~oomlab.rules.semantics.FlagError` for flags Docker refuses."""
    return docker_allowance(
        flags.memory_bytes,
        flags.memory_swap_bytes,
        swap_accounting=honours_memory_swap(host),
        as_written=(flags.memory, flags.memory_swap),
    )


def docker_prediction(
    flags: DockerFlags,
    demand_bytes: int,
    host: RuntimeInfo | None = None,
    *,
    host_swap_bytes: int | None = None,
    subject: str = "Docker",
) -> tuple[Allowance, Prediction]:
    """The rules' verdict for a workload of ``demand_bytes`` under ``flags`` on ``host``.

    ``host_swap_bytes`` stands in for the host's swap total when given (``oomlab predict
    --host-swap``, the operator's configured Docker host).
    """
    allowance = flags_allowance(flags, host)
    swap = host_swap_bytes
    if swap is None and host is not None:
        swap = host.swap_total_bytes
    return allowance, predict(demand_bytes, allowance, host_swap_bytes=swap, subject=subject)
