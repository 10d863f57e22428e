"""Kit overhead: the seed pair through oomlab's runner vs the bare ``docker run`` CLI.

Both sides run the same image, workload and flags (500m/500m, then 500m/1g) on the same engine
in the same process run, interleaved so drift in the machine hits both alike. The kit does more
per run (creates, samples the cgroup, reads logs, inspects, removes); the goal is that this costs
at most 1.2x the bare CLI's wall time.

    python bench/kit_overhead.py [--reps 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import time

from oomlab.rules.workload import DEFAULT_IMAGE, Mode, WorkloadSpec
from oomlab.runners import ContainerRun, DockerRunner

MiB = 2**20
GOAL = 1.2


def bare(run: ContainerRun, docker: str) -> float:
    started = time.monotonic()
    subprocess.run(
        [docker, "run", "--rm", "--network", "none", "--read-only", "--cap-drop", "ALL",
         "-e", "PYTHONUNBUFFERED=1", *run.flags(), run.image, *run.workload.args()],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    args = parser.parse_args()
    docker = shutil.which("docker")
    if docker is None:
        raise SystemExit("no docker CLI on PATH")
    runner = DockerRunner()
    runner.info()  # the probe runs once, before any timing
    seed = WorkloadSpec(Mode.BULK, 1000 * MiB, 500 * MiB)
    pair = [ContainerRun(seed, "500m", "500m", image=args.image),
            ContainerRun(seed, "500m", "1g", image=args.image)]  # fmt: skip
    kit_times, bare_times = [], []
    runner.run(pair[0])  # warm the page cache and the engine for both sides
    for rep in range(args.reps):
        order = ("kit", "bare") if rep % 2 == 0 else ("bare", "kit")
        for side in order:
            started = time.monotonic()
            for run in pair:
                if side == "kit":
                    runner.run(run)
                else:
                    bare(run, docker)
            (kit_times if side == "kit" else bare_times).append(time.monotonic() - started)
    kit, plain = statistics.median(kit_times), statistics.median(bare_times)
    ratio = kit / plain
    print(f"seed pair, {args.reps} reps, median wall time: kit {kit:.2f}s, bare docker run "
          f"{plain:.2f}s")  # fmt: skip
    print(
        f"kit overhead ratio: {ratio:.2f}x (goal <= {GOAL}x): {'OK' if ratio <= GOAL else 'MISS'}"
    )


if __name__ == "__main__":
    main()
