"""``oomlab parity NAME``: an OOMExperiment's Docker flags run here, handed to the operator."""

from __future__ import annotations

from typing import Annotated

import typer

from oomlab.cli.errors import fail, guarded
from oomlab.cli.options import TimeoutOpt
from oomlab.cli.output import out, run_with_progress, show_rows
from oomlab.runners import ContainerRun


def parity(
    name: Annotated[str, typer.Argument(help="OOMExperiment name.")],
    namespace: Annotated[str, typer.Option("--namespace", "-n")] = "default",
    engine: Annotated[str, typer.Option(help="docker or podman.")] = "docker",
    timeout: TimeoutOpt = 180.0,
) -> None:
    """Run an OOMExperiment's workload under its spec.docker flags here; hand the run to the
    operator, which records it in the experiment's status."""

    def action() -> None:
        from oomlab import kube
        from oomlab.experiment import ExperimentSpec, InvalidSpec
        from oomlab.handover import OBSERVATION_ANNOTATION

        try:
            body = kube.get_experiment(namespace, name)
        except kube.NotFound:
            fail(f"OOMExperiment {namespace}/{name} not found")
        try:
            spec = ExperimentSpec.from_spec(body.get("spec") or {})
        except InvalidSpec as exc:
            fail(f"{exc.field}: {exc}")
        if spec.docker is None:
            fail(f"OOMExperiment {namespace}/{name} has no spec.docker flags to compare with")
        run = ContainerRun(
            spec.workload,
            spec.docker.memory,
            spec.docker.memory_swap,
            spec.docker.runtime,
            engine,
            spec.image,
            timeout,
        )
        rows = run_with_progress([run], quiet=True)
        show_rows(rows, title=f"oomlab parity {namespace}/{name}", as_json=False)
        result = rows[0].result
        if result is None:
            fail(rows[0].error)
        observed_at = kube.record_docker_observation(namespace, name, result, spec.docker)
        status = kube.wait_for_docker_fold(
            namespace, name, observed_at, timeout_s=kube.FOLD_TIMEOUT_S
        )
        if status is None:
            out.print(
                f"parity: handed to the operator (annotation {OBSERVATION_ANNOTATION}), which has "
                f"not folded it in after {kube.FOLD_TIMEOUT_S:.0f}s; it will when it runs: "
                f"kubectl get oomx {name} -n {namespace}"
            )
            return
        verdict = status.get("parity") or {}
        out.print(
            f"parity: [bold]{verdict.get('result', 'Unknown')}[/]: {verdict.get('explanation', '')}"
        )

    guarded(action)
