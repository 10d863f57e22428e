"""The operator's configuration, from environment variables, checked once at startup.

``OOMLAB_SWAP_BEHAVIOR``
    ``NoSwap`` (default) or ``LimitedSwap``: the kubelets' ``memorySwap.swapBehavior``.
``OOMLAB_NODE_CGROUP_VERSION``
    ``v1``, ``v2`` or ``auto`` (default: what the workload reports about its cgroup, else
    unknown).
``OOMLAB_MAX_EXPERIMENT_BYTES``
    Binary size (``8Gi``, the default) or bytes: the cap on a workload's size and memory limit.
``OOMLAB_DOCKER_HOST_SWAP_BYTES``
    Binary size or bytes (``0``: no swap) of the Docker host, for Docker predictions.

Unset ``OOMLAB_DOCKER_HOST_SWAP_BYTES`` means: assume the Docker host has at least as much swap as
the flags ask for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from oomlab.rules.results import CgroupVersion
from oomlab.rules.semantics import SwapBehavior
from oomlab.rules.units import GiB, SizeError, parse_binary_size

ENV_SWAP_BEHAVIOR = "OOMLAB_SWAP_BEHAVIOR"
ENV_NODE_CGROUP_VERSION = "OOMLAB_NODE_CGROUP_VERSION"
ENV_MAX_EXPERIMENT_BYTES = "OOMLAB_MAX_EXPERIMENT_BYTES"
ENV_DOCKER_HOST_SWAP_BYTES = "OOMLAB_DOCKER_HOST_SWAP_BYTES"

DEFAULT_MAX_EXPERIMENT_BYTES = 8 * GiB
CGROUP_AUTO = "auto"


class ConfigError(ValueError):
    """One or more environment variables are wrong; the message names each and what to write."""


@dataclass(frozen=True)
class OperatorConfig:
    swap_behavior: SwapBehavior = SwapBehavior.NO_SWAP
    node_cgroup_version: CgroupVersion | None = None
    """None means auto: the workload's own report, else unknown."""
    max_experiment_bytes: int = DEFAULT_MAX_EXPERIMENT_BYTES
    docker_host_swap_bytes: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorConfig:
        """Read and check every variable; raise :class:`ConfigError` listing all problems."""
        env = os.environ if env is None else env
        problems: list[str] = []

        swap_text = env.get(ENV_SWAP_BEHAVIOR, "").strip() or SwapBehavior.NO_SWAP.value
        swap_behavior = SwapBehavior.NO_SWAP
        try:
            swap_behavior = SwapBehavior(swap_text)
        except ValueError:
            allowed = " or ".join(b.value for b in SwapBehavior)
            problems.append(
                f"{ENV_SWAP_BEHAVIOR}={swap_text!r} is not a kubelet swapBehavior: use {allowed} "
                "(UnlimitedSwap was removed in Kubernetes 1.30)"
            )

        cgroup_text = env.get(ENV_NODE_CGROUP_VERSION, "").strip().lower() or CGROUP_AUTO
        node_cgroup_version: CgroupVersion | None = None
        if cgroup_text in (CgroupVersion.V1.value, CgroupVersion.V2.value):
            node_cgroup_version = CgroupVersion(cgroup_text)
        elif cgroup_text != CGROUP_AUTO:
            problems.append(
                f"{ENV_NODE_CGROUP_VERSION}={cgroup_text!r} is not one of v1, v2, auto "
                "(auto: use what the workload reports about its cgroup)"
            )

        max_bytes = DEFAULT_MAX_EXPERIMENT_BYTES
        max_text = env.get(ENV_MAX_EXPERIMENT_BYTES, "").strip()
        if max_text:
            try:
                max_bytes = parse_binary_size(max_text, field=ENV_MAX_EXPERIMENT_BYTES)
            except SizeError as exc:
                problems.append(str(exc))

        docker_swap: int | None = None
        docker_swap_text = env.get(ENV_DOCKER_HOST_SWAP_BYTES, "").strip()
        if docker_swap_text == "0":
            docker_swap = 0
        elif docker_swap_text:
            try:
                docker_swap = parse_binary_size(docker_swap_text, field=ENV_DOCKER_HOST_SWAP_BYTES)
            except SizeError as exc:
                problems.append(str(exc) + " (or 0 for a Docker host without swap)")

        if problems:
            raise ConfigError("bad operator configuration: " + "; ".join(problems))
        return cls(
            swap_behavior=swap_behavior,
            node_cgroup_version=node_cgroup_version,
            max_experiment_bytes=max_bytes,
            docker_host_swap_bytes=docker_swap,
        )

    def describe(self) -> str:
        cgroup = self.node_cgroup_version.value if self.node_cgroup_version else CGROUP_AUTO
        docker_swap = (
            "as much as the flags ask"
            if self.docker_host_swap_bytes is None
            else f"{self.docker_host_swap_bytes} bytes"
        )
        return (
            f"swapBehavior={self.swap_behavior.value}, node cgroup={cgroup}, "
            f"max experiment={self.max_experiment_bytes} bytes, Docker host swap={docker_swap}"
        )
