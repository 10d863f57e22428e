"""The whole unit tier, run with every way out of the environment pointing at a trap, reaches
nothing: no connection to the trap and no container or cluster CLI started.

A listener on 127.0.0.1 counts every connection; KUBECONFIG, ~/.kube/config, DOCKER_HOST,
CONTAINER_HOST, KUBERNETES_SERVICE_HOST and the OOMLAB_ENGINE_* addresses all name it, and docker,
podman, kubectl, crictl and nerdctl on PATH only write down that they were started
(tests/hermetic.py's TrappedRun). tests/unit/conftest.py starts that run, without this test,
once the tier is collected."""

from __future__ import annotations

from hermetic import TrappedRun


def test_the_unit_tier_reaches_nothing_the_environment_points_at(
    trapped_tier_run: TrappedRun,
) -> None:
    outcome = trapped_tier_run.finish(timeout_s=600)
    assert outcome.connections == [], f"the unit tier connected to the trap: {outcome.connections}"
    assert outcome.started == [], f"the unit tier started: {outcome.started}"
    assert outcome.returncode == 0, outcome.output[-6000:]
