"""Operator configuration from the environment: defaults, each variable, clear errors."""

from __future__ import annotations

import pytest

from oomlab.operator.config import ConfigError, OperatorConfig
from oomlab.rules.results import CgroupVersion
from oomlab.rules.semantics import SwapBehavior

GiB = 2**30


def test_defaults() -> None:
    config = OperatorConfig.from_env({})
    assert config == OperatorConfig(
        swap_behavior=SwapBehavior.NO_SWAP,
        node_cgroup_version=None,
        max_experiment_bytes=8 * GiB,
        docker_host_swap_bytes=None,
    )


def test_every_variable() -> None:
    config = OperatorConfig.from_env(
        {
            "OOMLAB_SWAP_BEHAVIOR": "LimitedSwap",
            "OOMLAB_NODE_CGROUP_VERSION": "V2",
            "OOMLAB_MAX_EXPERIMENT_BYTES": "2Gi",
            "OOMLAB_DOCKER_HOST_SWAP_BYTES": "0",
        }
    )
    assert config.swap_behavior == SwapBehavior.LIMITED_SWAP
    assert config.node_cgroup_version == CgroupVersion.V2
    assert config.max_experiment_bytes == 2 * GiB
    assert config.docker_host_swap_bytes == 0


def test_auto_cgroup_is_none() -> None:
    assert (
        OperatorConfig.from_env({"OOMLAB_NODE_CGROUP_VERSION": "auto"}).node_cgroup_version is None
    )


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        OperatorConfig.from_env(
            {
                "OOMLAB_SWAP_BEHAVIOR": "UnlimitedSwap",
                "OOMLAB_NODE_CGROUP_VERSION": "v3",
                "OOMLAB_MAX_EXPERIMENT_BYTES": "8G",
                "OOMLAB_DOCKER_HOST_SWAP_BYTES": "lots",
            }
        )
    message = str(caught.value)
    assert "OOMLAB_SWAP_BEHAVIOR='UnlimitedSwap'" in message
    assert "removed in Kubernetes 1.30" in message
    assert "OOMLAB_NODE_CGROUP_VERSION='v3'" in message
    assert "OOMLAB_MAX_EXPERIMENT_BYTES '8G' is ambiguous" in message
    assert "OOMLAB_DOCKER_HOST_SWAP_BYTES 'lots'" in message


def test_describe_mentions_each_setting() -> None:
    text = OperatorConfig.from_env({"OOMLAB_DOCKER_HOST_SWAP_BYTES": "1Gi"}).describe()
    assert "swapBehavior=NoSwap" in text and "node cgroup=auto" in text
    assert "Docker host swap=1073741824 bytes" in text
