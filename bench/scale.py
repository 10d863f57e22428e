"""Scale: --count experiments (200) created at once, against --count bare pods of the same spec
created at once, on the cluster in KUBECONFIG (``make cluster-up`` gives a local one).

1. Bare pods: the pod the operator would build for the spec, with no oomlab labels (the operator
   never sees them), all created by one ``kubectl create``; timed until the last is Succeeded or
   Failed.
2. Experiments: the same spec as OOMExperiments, all created by one ``kubectl create``; timed
   until the last one's status is terminal. Checked: every experiment terminal (none lost), and
   exactly one pod per experiment, ever (every pod uid a watch saw, and the pods left at the
   end: none duplicated).
3. The ratio of the two sides' median wall times over --rounds rounds (the order alternates:
   whatever ran second may meet the first's cleanup), and the operator's RSS before and after.

Each side runs in a namespace of its own, deleted (and waited for) before the next side starts,
so both start on an idle node. Each pod asks for 250m CPU, so a 2-core node runs about 7 at a
time and the rest wait Pending for their turn: both sides go through the same queue.

Goals: experiments within 1.2x of bare pods; operator RSS < 150 MiB after them.
Exit status 1 if an experiment is lost, duplicated or not Completed, or a bare pod fails.

    python bench/scale.py [--count 200] [--rounds 2] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from _lab import (
    Watcher,
    bare_pod,
    experiment,
    kubectl,
    operator_rss_bytes,
    small_spec,
    start_operator_bench,
    wait_for,
)
from oomlab.experiment import (
    GROUP,
    LABEL_EXPERIMENT_UID,
    PLURAL,
    VERSION,
)

MiB = 2**20
RATIO_GOAL = 1.2
RSS_GOAL_MIB = 150
# Small enough that 200 pass through a 2-core node in minutes: 10Mi streamed under a 64Mi limit.
SPEC = small_spec(
    workload={"mode": "streaming", "size": "10Mi", "chunk": "1Mi", "window": 2,
              "imagePullPolicy": "Never"},
    resources={"limits": {"memory": "64Mi"}},
    timeoutSeconds=1800,
)  # fmt: skip


def create_all(namespace: str, documents: list[dict[str, Any]]) -> float:
    """One ``kubectl create`` of every document; returns the monotonic time it started."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        yaml.safe_dump_all(documents, file)
        file.flush()
        started = time.monotonic()
        kubectl("create", "-n", namespace, "-f", file.name, timeout=600)
    return started


class Side:
    """One namespace, watched from before anything is created in it until it is deleted."""

    def __init__(self, api: client.ApiClient, prefix: str) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = f"oomlab-scale-{prefix}-{uuid.uuid4().hex[:6]}"
        labels = {"oomlab.dev/test": "bench"}
        self.core.create_namespace({"metadata": {"name": self.namespace, "labels": labels}})
        self.watcher = Watcher(api, self.namespace)

    def close(self) -> None:
        self.watcher.stop()
        self.core.delete_namespace(self.namespace, propagation_policy="Background")
        wait_for(self._gone, 600, f"namespace {self.namespace} to be deleted")

    def _gone(self) -> bool:
        try:
            self.core.read_namespace(self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False


@dataclass
class Timed:
    wall: float  # create began -> the last one finished
    last_pod: float  # create began -> the last pod appeared
    problems: list[str]


def run_bare(api: client.ApiClient, count: int, timeout: float) -> Timed:
    side = Side(api, "bare")
    try:
        documents = [bare_pod(f"bare-{i:03d}", side.namespace, SPEC) for i in range(count)]
        started = create_all(side.namespace, documents)
        done = side.watcher.pod_done
        wait_for(lambda: len(done) >= count, timeout, f"{count} bare pods to finish",
                 lambda: f"{len(done)} finished")  # fmt: skip
        pods = side.core.list_namespaced_pod(side.namespace).items
        failed = [p.metadata.name for p in pods if p.status.phase != "Succeeded"]
        problems = [f"bare pod {name} did not succeed" for name in failed]
        if len(pods) != count:
            problems.append(f"{len(pods)} bare pods, not {count}")
        last_pod = max(side.watcher.pod_seen.values()) - started
        return Timed(max(done.values()) - started, last_pod, problems)
    finally:
        side.close()


def run_experiments(api: client.ApiClient, count: int, timeout: float) -> Timed:
    side = Side(api, "exp")
    names = [f"scale-{i:03d}" for i in range(count)]
    try:
        started = create_all(side.namespace, [experiment(name, SPEC) for name in names])
        final = side.watcher.final
        try:
            wait_for(lambda: len(final) >= count, timeout, f"{count} experiments to be terminal",
                     lambda: f"{len(final)} terminal")  # fmt: skip
        except AssertionError as exc:
            print(exc)
        wall = max(final.values(), default=float("nan")) - started
        last_pod = max(side.watcher.pod_seen.values(), default=float("nan")) - started
        return Timed(wall, last_pod, experiment_problems(side, names))
    finally:
        side.close()


def experiment_problems(side: Side, names: list[str]) -> list[str]:
    """Lost, duplicated or not Completed, from the watch and from what is left at the end."""
    watcher, problems = side.watcher, []
    lost = [n for n in names if n not in watcher.final]
    if lost:
        problems.append(f"{len(lost)} experiments never terminal (lost): {lost[:10]}")
    phases = Counter(watcher.phase.values())
    if set(phases) - {"Completed"}:
        problems.append(f"phases other than Completed: {dict(phases)}")
    seen = {n: len(watcher.pods_of.get(n, ())) for n in names}
    duplicated = {n: k for n, k in seen.items() if k > 1}
    if duplicated:
        problems.append(f"experiments with more than one pod ever: {duplicated}")
    stored = client.CustomObjectsApi(side.core.api_client).list_namespaced_custom_object(
        GROUP, VERSION, side.namespace, PLURAL
    )["items"]
    uids = {body["metadata"]["uid"] for body in stored}
    if len(stored) != len(names):
        problems.append(f"{len(stored)} experiments stored, not {len(names)}")
    pods = side.core.list_namespaced_pod(side.namespace).items
    per_experiment = Counter((p.metadata.labels or {}).get(LABEL_EXPERIMENT_UID) for p in pods)
    if set(per_experiment) != uids or set(per_experiment.values()) != {1}:
        problems.append(f"{len(pods)} pods left for {len(uids)} experiments, "
                        f"{len(per_experiment)} distinct owners")  # fmt: skip
    print(f"experiments by the number of pods they ever had: {dict(Counter(seen.values()))}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="each a bare side and an operator "
                        "side, the order alternating (bare first in odd rounds)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per side")
    args, api = start_operator_bench(parser)
    rss_before = operator_rss_bytes() / MiB
    sides = {"bare pods": lambda: run_bare(api, args.count, args.timeout),
             "experiments": lambda: run_experiments(api, args.count, args.timeout)}  # fmt: skip
    results: dict[str, list[Timed]] = {name: [] for name in sides}
    for round_ in range(args.rounds):
        for name in sorted(sides, reverse=round_ % 2 == 1):
            timed = sides[name]()
            results[name].append(timed)
            print(f"round {round_ + 1}: {args.count} {name} at once: all finished in "
                  f"{timed.wall:.1f}s, the last pod appeared at {timed.last_pod:.1f}s")  # fmt: skip
    bare = statistics.median(t.wall for t in results["bare pods"])
    operated = statistics.median(t.wall for t in results["experiments"])
    ratio = operated / bare
    rss_after = operator_rss_bytes() / MiB
    verdict = "ok" if ratio <= RATIO_GOAL else "MISSED"
    print(f"wall time, experiments vs bare pods (medians, {operated:.1f}s vs {bare:.1f}s): "
          f"{ratio:.2f}x (goal <= {RATIO_GOAL}x: {verdict})")  # fmt: skip
    verdict = "ok" if rss_after < RSS_GOAL_MIB else "MISSED"
    total = args.count * args.rounds
    print(f"operator RSS: {rss_before:.1f} MiB before, {rss_after:.1f} MiB after {total} "
          f"experiments (goal < {RSS_GOAL_MIB} MiB: {verdict})")  # fmt: skip
    problems = [p for side in results.values() for timed in side for p in timed.problems]
    for problem in problems:
        print(f"PROBLEM: {problem}")
    if problems:
        raise SystemExit(1)
    print(
        f"none lost, none duplicated: {args.count} experiments a round, one pod each, all Completed"
    )


if __name__ == "__main__":
    main()
