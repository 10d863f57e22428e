"""One Docker prediction: the CLI's, the report's and the operator's status.docker are the same
function's, for the flags and the host they are given."""

from __future__ import annotations

import pytest

from oomlab.cli.container_runs import docker_prediction as cli_prediction
from oomlab.experiment import ExperimentSpec
from oomlab.operator.config import OperatorConfig
from oomlab.operator.docker_view import docker_view
from oomlab.rules.docker import DockerFlags, docker_prediction, flags_allowance, honours_memory_swap
from oomlab.rules.results import CgroupVersion, Predicted, RuntimeInfo
from oomlab.rules.semantics import FlagError
from oomlab.rules.workload import Mode, WorkloadSpec
from oomlab.runners import ContainerRun

MiB = 2**20
GiB = 2**30
SEED = WorkloadSpec(Mode.BULK, 1000 * MiB, 500 * MiB)
SWAP_FLAGS = DockerFlags("500m", "1g")


def host(swap: int | None, limits: bool | None) -> RuntimeInfo:
    return RuntimeInfo(
        cgroup_version=CgroupVersion.V2, swap_total_bytes=swap, swap_limit_supported=limits
    )


@pytest.mark.parametrize(
    ("info", "honoured"),
    [
        (None, True),
        (host(GiB, None), True),
        (host(GiB, True), True),
        (host(GiB, False), False),
    ],
)
def test_memory_swap_is_honoured_unless_the_engine_says_no_swap_accounting(
    info: RuntimeInfo | None, honoured: bool
) -> None:
    assert honours_memory_swap(info) is honoured
    swap = flags_allowance(DockerFlags("500m", "500m"), info).swap_bytes
    assert swap == (0 if honoured else None)


def test_the_given_host_swap_stands_in_for_the_hosts_own() -> None:
    on_host = docker_prediction(SWAP_FLAGS, SEED.demand_bytes(), host(0, True))[1]
    given = docker_prediction(SWAP_FLAGS, SEED.demand_bytes(), host(0, True), host_swap_bytes=GiB)[
        1
    ]
    assert on_host.outcome == Predicted.OOM_KILLED
    assert given.outcome == Predicted.COMPLETED


def test_refused_flags_raise() -> None:
    with pytest.raises(FlagError, match="at least --memory"):
        docker_prediction(DockerFlags("500m", "100m"), SEED.demand_bytes())


def test_the_cli_and_the_operator_predict_docker_alike() -> None:
    spec = ExperimentSpec.from_spec(
        {
            "workload": {"mode": "bulk", "size": "1000Mi", "chunk": "500Mi"},
            "resources": {"limits": {"memory": "500Mi"}},
            "docker": {"memory": "500m", "memorySwap": "1g"},
        }
    )
    view = docker_view(spec, OperatorConfig(docker_host_swap_bytes=2 * GiB), None)
    run = ContainerRun(SEED, "500m", "1g")
    _, cli = cli_prediction(run, None, host_swap=2 * GiB)
    assert view.section is not None
    assert view.section["predictedOutcome"] == cli.outcome.value == "Completed"
    assert view.section["explanation"] == cli.explanation
