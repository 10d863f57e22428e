"""``oomlab explain``: the kubelet's swap rules applied to users' own manifests, offline, and the
live face's promise to only read (proved on a fake transport: no cluster is reached here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from oomlab.cli.main import app
from oomlab.rules.explain import (
    V1_UNLIMITED,
    ContainerRole,
    NodeProfile,
    docker_equivalent,
    kubelet_version_rule,
    pod_facts,
)
from oomlab.rules.results import CgroupVersion
from oomlab.rules.semantics import (
    Allowance,
    QoSClass,
    SwapBehavior,
    docker_allowance,
    kernel_limit,
    limited_swap_bytes,
)
from oomlab.rules.units import MiB, parse_docker_flags

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures" / "explain"
SAMPLES = ROOT / "manifests" / "samples"

VM_MEMORY, VM_SWAP = 1_531_936_768, 2_147_479_552
"""The project's LimitedSwap VM node (hack/vm-node.sh, qemu -m 1536, 2 GiB swapfile)."""
VM = f"name=vm,memory={VM_MEMORY},swap={VM_SWAP},kubelet=v1.34.4,thp=madvise"
HOST = "name=host,behavior=NoSwap,cgroup=v1,memory=24Gi,swap=0,kubelet=v1.34.4"

runner = CliRunner()


def vm_share(request: int) -> int:
    """memory.swap.max on the VM node, computed here from the FACTS formula (not explain's)."""
    return int(request / VM_MEMORY * VM_SWAP) // 4096 * 4096


def explain_json(*args: str, code: int = 0) -> dict[str, Any]:
    result = runner.invoke(app, ["explain", *args, "--json"])
    assert result.exit_code == code, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def containers(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every container by ``Kind/name:container``."""
    return {
        f"{obj['ref']}:{c['name']}": c for obj in document["objects"] for c in obj["containers"]
    }


def on(container: dict[str, Any], node: str) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in container["nodes"] if n["node"] == node)
    return found


# --------------------------------------------------------------------------------------------
# the three manifests written for these tests


def test_two_container_deployment_job_and_cronjob_per_container() -> None:
    doc = explain_json(
        "-f",
        str(FIXTURES / "deployment-two-containers.yaml"),
        "-f",
        str(FIXTURES / "job.yaml"),
        "-f",
        str(FIXTURES / "cronjob.yaml"),
        "--node",
        VM,
        "--node",
        HOST,
    )
    qos = {obj["ref"]: obj["qosClass"] for obj in doc["objects"]}
    # the Job's only regular container is Guaranteed-shaped; its init container makes it Burstable
    assert qos == {"Deployment/web": "Burstable", "Job/nightly-import": "Burstable",
                   "CronJob/report": "Burstable"}  # fmt: skip
    by_name = containers(doc)
    # (role, swap on the VM node as memory.swap.max reads it, memory.max, cause of no swap)
    expected = {
        "Deployment/web:app": ("container", vm_share(400 * MiB), str(500 * MiB), None),
        "Deployment/web:log-shipper": ("container", 0, str(64 * MiB), "request-equals-limit"),
        "Job/nightly-import:fetch": ("init", 0, "max", "no-request"),
        "Job/nightly-import:import": ("container", 0, str(1024 * MiB), "request-equals-limit"),
        "CronJob/report:proxy": ("sidecar", vm_share(32 * MiB), str(128 * MiB), None),
        "CronJob/report:report": ("container", vm_share(256 * MiB), "max", None),
    }
    assert set(by_name) == set(expected)
    for key, (role, swap_max, memory_max, cause) in expected.items():
        container = by_name[key]
        vm = on(container, "vm")
        assert container["role"] == role, key
        assert vm["cgroupFiles"]["memory.swap.max"] == str(swap_max), key
        assert vm["cgroupFiles"]["memory.max"] == memory_max, key
        assert vm["cgroupFiles"]["memory.high"] == "max", key
        assert container["noSwapCauses"] == ([cause] if cause else []), key
        assert container["swapEligible"] is (cause is None), key
        assert on(container, "vm")["noSwapCause"] == cause, key
        # on the cgroup v1 NoSwap host nobody gets swap: memory+swap is held to the memory limit
        host = on(container, "host")
        assert host["swapBytes"] == 0 and host["noSwapCause"] == "cgroup-v1", key
        v1 = host["cgroupFiles"]
        assert v1["memory.limit_in_bytes"] == v1["memory.memsw.limit_in_bytes"], key
    assert by_name["Job/nightly-import:fetch"]["memoryRequest"] is None
    assert on(by_name["Job/nightly-import:fetch"], "host")["cgroupFiles"][
        "memory.limit_in_bytes"
    ] == str(V1_UNLIMITED)


def test_docker_flags_for_each_container_say_when_docker_cannot_do_the_same() -> None:
    doc = explain_json("-f", str(FIXTURES / "deployment-two-containers.yaml"), "-f",
                       str(FIXTURES / "cronjob.yaml"), "--node", VM)  # fmt: skip
    by_name = containers(doc)
    app_docker = on(by_name["Deployment/web:app"], "vm")["docker"]
    share = int(400 * MiB / VM_MEMORY * VM_SWAP)
    assert app_docker == {
        "flags": ["--memory=500m", f"--memory-swap={500 * MiB + share}"],
        "cli": f"--memory=500m --memory-swap={500 * MiB + share}",
        "exact": True,
        "note": "",
    }
    assert on(by_name["Deployment/web:log-shipper"], "vm")["docker"]["flags"] == [
        "--memory=64m",
        "--memory-swap=64m",
    ]
    no_limit = on(by_name["CronJob/report:report"], "vm")["docker"]
    assert no_limit["exact"] is False and no_limit["flags"] == []
    assert "--memory-swap needs --memory" in no_limit["note"]


@pytest.mark.parametrize("memory", [6 * MiB, 100 * MiB, 500 * MiB, 1024**3, 123_456_789])
@pytest.mark.parametrize("swap", [0, 1, 4096, 587_960_434, 500 * MiB])
def test_docker_flags_give_back_the_same_memory_and_swap(memory: int, swap: int) -> None:
    equivalent = docker_equivalent(Allowance(memory, swap, "why"), CgroupVersion.V2)
    assert equivalent.exact
    flag_memory, flag_total = (flag.split("=", 1)[1] for flag in equivalent.flags)
    back = docker_allowance(*parse_docker_flags(flag_memory, flag_total))
    assert (back.memory_bytes, back.swap_bytes) == (memory, swap)


def test_docker_refuses_a_limit_below_its_minimum_and_explain_says_so() -> None:
    equivalent = docker_equivalent(Allowance(4 * MiB, 0, "why"), CgroupVersion.V2)
    assert not equivalent.exact
    assert "6 MiB" in equivalent.note


def test_kustomize_stream_and_a_list_read_like_the_files_one_by_one() -> None:
    files = [FIXTURES / f for f in ("deployment-two-containers.yaml", "job.yaml", "cronjob.yaml")]
    one_by_one = explain_json(*[a for f in files for a in ("-f", str(f))], "--node", VM)
    docs = [d for f in files for d in yaml.safe_load_all(f.read_text())]
    as_list = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": docs})
    result = runner.invoke(app, ["explain", "-f", "-", "--node", VM, "--json"], input=as_list)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["objects"] == one_by_one["objects"]
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl for kubectl kustomize")
    built = subprocess.run(
        [kubectl, "kustomize", str(FIXTURES)], capture_output=True, text=True, check=True
    ).stdout
    result = runner.invoke(app, ["explain", "-f", "-", "--node", VM, "--json"], input=built)
    assert result.exit_code == 0, result.output
    # kustomize orders resources by kind
    assert by_ref(json.loads(result.stdout)) == by_ref(one_by_one)


def by_ref(document: dict[str, Any]) -> dict[str, Any]:
    return {obj["ref"]: obj for obj in document["objects"]}


# --------------------------------------------------------------------------------------------
# the project's own samples


def operator_swap(sample: str) -> tuple[int | None, str]:
    """What the operator predicts for the sample on the VM node (its own code path)."""
    from oomlab.experiment import ExperimentSpec
    from oomlab.operator.kubernetes_view import (
        kubernetes_allowance,
        kubernetes_prediction,
        predicted_swap_limit,
    )
    from oomlab.rules.nodes import NodeFacts

    doc = yaml.safe_load((SAMPLES / sample).read_text())
    spec = ExperimentSpec.from_spec(doc["spec"])
    node = NodeFacts(
        "vm", VM_MEMORY, VM_SWAP, SwapBehavior.LIMITED_SWAP, CgroupVersion.V2, "madvise"
    )
    allowance = kubernetes_allowance(
        spec, swap_behavior=SwapBehavior.LIMITED_SWAP, cgroup=CgroupVersion.V2, node=node,
        qos=spec.qos,
    )  # fmt: skip
    prediction = kubernetes_prediction(spec, allowance, node)
    return predicted_swap_limit(allowance), prediction.outcome.value


SAMPLE_ANSWERS = {
    # sample: (QoS, memory.swap.max on the VM node, outcome there of the sample's own workload)
    "seed-limited-swap.yaml": ("Burstable", 587_960_320, "Completed"),
    "seed-limited-swap-cost.yaml": ("Burstable", 587_960_320, "Completed"),
    "seed-limited-swap-guaranteed.yaml": ("Guaranteed", 0, "OOMKilled"),
    "seed-oom.yaml": ("Guaranteed", 0, "OOMKilled"),
    # 250Mi's share is about 367 MiB: 500 MiB + 367 MiB is short of the ~1012 MiB seed
    "seed-swap.yaml": ("Burstable", vm_share(250 * MiB), "OOMKilled"),
    "streaming.yaml": ("Guaranteed", 0, "Completed"),
    "leak.yaml": ("Guaranteed", 0, "OOMKilled"),
}


@pytest.mark.parametrize("sample", sorted(SAMPLE_ANSWERS))
def test_samples_are_explained_as_the_operator_predicts_them(sample: str) -> None:
    doc = explain_json("-f", str(SAMPLES / sample), "--node", VM, "--node", HOST)
    (obj,) = doc["objects"]
    (container,) = obj["containers"]
    qos, swap_max, outcome = SAMPLE_ANSWERS[sample]
    vm = on(container, "vm")
    assert obj["qosClass"] == qos
    assert vm["cgroupFiles"]["memory.swap.max"] == str(swap_max)
    assert vm["prediction"]["outcome"] == outcome
    assert (int(vm["cgroupFiles"]["memory.swap.max"]), vm["prediction"]["outcome"]) == (
        operator_swap(sample)
    )
    # the whole seed (about 1012 MiB) never fits a 500Mi limit without swap
    assert on(container, "host")["swapBytes"] == 0


def test_all_samples_at_once_and_the_operator_deployment() -> None:
    paths = [*sorted(SAMPLES.glob("*.yaml")), ROOT / "manifests/operator/deployment.yaml"]
    doc = explain_json(*[a for p in paths for a in ("-f", str(p))], "--node", VM)
    refs = {obj["ref"] for obj in doc["objects"]}
    assert {f"OOMExperiment/{Path(s).stem}" for s in SAMPLE_ANSWERS} <= refs
    operator = containers(doc)["Deployment/oomlab-operator:operator"]
    assert operator["swapEligible"] is True
    assert on(operator, "vm")["cgroupFiles"]["memory.swap.max"] == str(vm_share(100 * MiB))
    assert {s["kind"] for s in doc["skipped"]} == {"Kustomization"}


@pytest.mark.parametrize("invalid", sorted(p.name for p in (SAMPLES / "invalid").glob("*.yaml")))
def test_invalid_samples_are_flagged_with_exit_1(invalid: str) -> None:
    result = runner.invoke(app, ["explain", "-f", str(SAMPLES / "invalid" / invalid)])
    assert result.exit_code == 1, result.output
    assert "fix:" in result.output and "Traceback" not in result.output


def test_500m_of_memory_is_half_a_byte_and_flagged() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "habit"},
        "spec": {
            "containers": [
                {"name": "a", "image": "x", "resources": {"limits": {"memory": "500m"}}},
                {"name": "b", "image": "x", "resources": {"requests": {"memory": "100Mi"}}},
            ]
        },
    }
    result = runner.invoke(
        app, ["explain", "-f", "-", "--node", VM, "--json"], input=json.dumps(pod)
    )
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    by_name = containers(doc)
    (problem,) = by_name["Pod/habit:a"]["problems"]
    assert "'500m'" in problem and "0.5 bytes" in problem and "500Mi" in problem
    assert on(by_name["Pod/habit:a"], "vm")["swapBytes"] is None  # nothing predicted for it
    assert on(by_name["Pod/habit:b"], "vm")["cgroupFiles"]["memory.swap.max"] == str(
        vm_share(100 * MiB)
    )
    text = runner.invoke(app, ["explain", "-f", "-", "--node", VM], input=json.dumps(pod))
    assert text.exit_code == 1
    assert "fix: Pod/habit: container a memory limit '500m'" in " ".join(text.output.split())


# --------------------------------------------------------------------------------------------
# upstream's swap e2e cases, done right (the e2e tier runs the same manifests)


UPSTREAM_ON_VM = {
    # pod: (QoS, memory.swap.max on the VM node, every rule that denies swap, first one named)
    "swap-besteffort": ("BestEffort", 0, ["best-effort", "no-request"]),
    "swap-burstable": ("Burstable", vm_share(128 * MiB), []),
    "swap-burstable-request-equals-limit": ("Burstable", 0, ["request-equals-limit"]),
    "swap-guaranteed": ("Guaranteed", 0, ["guaranteed", "request-equals-limit"]),
    "swap-critical": ("Burstable", 0, ["critical"]),
}


def test_upstream_cases_on_the_limited_swap_node_and_the_no_swap_host() -> None:
    doc = explain_json("-f", str(FIXTURES / "upstream-cases.yaml"), "--node", VM, "--node", HOST)
    assert [obj["name"] for obj in doc["objects"]] == list(UPSTREAM_ON_VM)
    for obj in doc["objects"]:
        qos, swap_max, causes = UPSTREAM_ON_VM[obj["name"]]
        (container,) = obj["containers"]
        vm = on(container, "vm")
        assert obj["qosClass"] == qos, obj["name"]
        assert vm["cgroupFiles"]["memory.swap.max"] == str(swap_max), obj["name"]
        assert container["noSwapCauses"] == vm["noSwapCauses"] == causes, obj["name"]
        assert vm["noSwapCause"] == (causes[0] if causes else None), obj["name"]
        host = on(container, "host")
        assert host["noSwapCause"] == "cgroup-v1"
        assert host["noSwapCauses"] == ["cgroup-v1", "no-swap", "node-no-swap", *causes]
    critical = next(o for o in doc["objects"] if o["name"] == "swap-critical")
    assert critical["priority"] == 2_000_001_000
    assert "system-node-critical" in critical["critical"]


def test_static_and_mirror_pods_are_critical() -> None:
    mirror = explain_json("-f", str(FIXTURES / "mirror-pod.yaml"), "--node", VM)
    (obj,) = mirror["objects"]
    assert "mirror pod" in obj["critical"]
    assert obj["containers"][0]["noSwapCauses"] == ["critical"]
    static = explain_json("-f", str(FIXTURES / "upstream-cases.yaml"), "--static", "--node", VM)
    burstable = next(o for o in static["objects"] if o["name"] == "swap-burstable")
    assert "static pod" in burstable["critical"]
    assert on(burstable["containers"][0], "vm")["swapBytes"] == 0
    # a workload's template is never a static pod, --static or not
    deployment = explain_json(
        "-f", str(FIXTURES / "deployment-two-containers.yaml"), "--static", "--node", VM
    )
    assert deployment["objects"][0]["critical"] is None


def test_a_user_priority_class_beside_the_pod_is_below_critical() -> None:
    doc = explain_json("-f", str(FIXTURES / "priority.yaml"), "--node", VM)
    (obj,) = doc["objects"]
    assert obj["priority"] == 1_000_000_000 and obj["critical"] is None
    assert on(obj["containers"][0], "vm")["swapBytes"] == int(100 * MiB / VM_MEMORY * VM_SWAP)


# --------------------------------------------------------------------------------------------
# the rules' inputs, table by table


def facts(spec: dict[str, Any], **kwargs: Any) -> Any:
    return pod_facts("Pod", "p", None, {"spec": spec}, **kwargs)


def container(name: str, **resources: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "image": "x", "resources": resources}


@pytest.mark.parametrize(
    ("spec", "qos"),
    [
        ({"containers": [container("a")]}, QoSClass.BEST_EFFORT),
        ({"containers": [container("a", requests={"ephemeral-storage": "1Gi"})]},
         QoSClass.BEST_EFFORT),
        ({"containers": [container("a", limits={"cpu": "1", "memory": "1Gi"})]},
         QoSClass.GUARANTEED),
        ({"containers": [container("a", limits={"memory": "1Gi"})]}, QoSClass.BURSTABLE),
        ({"containers": [container("a", requests={"cpu": "1000m", "memory": "1024Mi"},
                                   limits={"cpu": "1", "memory": "1Gi"})]}, QoSClass.GUARANTEED),
        ({"initContainers": [container("i")],
          "containers": [container("a", limits={"cpu": "1", "memory": "1Gi"})]},
         QoSClass.BURSTABLE),
        ({"initContainers": [container("i", limits={"cpu": "1", "memory": "1Gi"})],
          "containers": [container("a", limits={"cpu": "1", "memory": "1Gi"})]},
         QoSClass.GUARANTEED),
        ({"resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
          "containers": [container("a")]}, QoSClass.GUARANTEED),
    ],
)  # fmt: skip
def test_pod_qos_as_the_api_computes_it(spec: dict[str, Any], qos: QoSClass) -> None:
    assert facts(spec).qos == qos


def test_status_qos_class_wins_as_in_the_kubelet() -> None:
    pod = {"spec": {"containers": [container("a")]}, "status": {"qosClass": "Burstable"}}
    found = pod_facts("Pod", "p", "ns", pod)
    assert found.qos == QoSClass.BURSTABLE
    assert "status.qosClass" in found.qos_basis


def test_container_roles_and_defaulted_requests() -> None:
    found = facts(
        {
            "initContainers": [
                container("init"),
                {**container("side", limits={"memory": "64Mi"}), "restartPolicy": "Always"},
            ],
            "containers": [container("app", requests={"memory": "1Gi"})],
            "ephemeralContainers": [{"name": "debug", "image": "x"}],
        }
    )
    roles = {c.name: c.role for c in found.containers}
    assert roles == {
        "init": ContainerRole.INIT,
        "side": ContainerRole.SIDECAR,
        "app": ContainerRole.CONTAINER,
        "debug": ContainerRole.EPHEMERAL,
    }
    side = next(c for c in found.containers if c.name == "side")
    assert (side.memory_request, side.memory_limit, side.request_from_limit) == (
        64 * MiB,
        64 * MiB,
        True,
    )


@pytest.mark.parametrize(
    ("pod_spec", "critical"),
    [
        ({"priorityClassName": "system-cluster-critical"}, True),
        ({"priorityClassName": "system-node-critical"}, True),
        ({"priority": 2_000_000_000}, True),
        ({"priority": 1_999_999_999}, False),
        ({"priorityClassName": "somebody-high"}, False),
    ],
)
def test_critical_priority(pod_spec: dict[str, Any], critical: bool) -> None:
    found = facts({**pod_spec, "containers": [container("a", requests={"memory": "1Gi"})]})
    assert (found.critical is not None) is critical


@pytest.mark.parametrize(
    ("version", "supported", "note"),
    [
        ("v1.27.16", False, "predates"),
        ("v1.28.0", True, "feature-gates=NodeSwap=true"),
        ("v1.29.9", True, "feature-gates=NodeSwap=true"),
        ("v1.30.0", True, None),
        ("v1.34.4", True, None),
        ("v1.37.2", True, None),
        (None, True, None),
    ],
)
def test_kubelet_versions(version: str | None, supported: bool, note: str | None) -> None:
    ok, text = kubelet_version_rule(version)
    assert ok is supported
    assert (text is None) if note is None else (note in (text or ""))


def test_an_old_kubelet_is_not_predicted() -> None:
    doc = explain_json(
        "-f", str(FIXTURES / "upstream-cases.yaml"), "--node", f"{VM},kubelet=v1.27.3".replace(
            "kubelet=v1.34.4,", "")
    )  # fmt: skip
    burstable = containers(doc)["Pod/swap-burstable:sleeper"]
    assert on(burstable, "vm")["swapBytes"] is None
    assert any("predates" in n for n in on(burstable, "vm")["notes"])


def test_profile_flags_and_node_swap_zero() -> None:
    doc = explain_json(
        "-f", str(FIXTURES / "upstream-cases.yaml"),
        "--node-memory", "2Gi", "--node-swap", "0", "--kubelet-version", "v1.34.0",
    )  # fmt: skip
    burstable = on(containers(doc)["Pod/swap-burstable:sleeper"], "node")
    assert burstable["swapBytes"] == 0 and burstable["noSwapCause"] == "node-no-swap"
    no_swap_v2 = explain_json(
        "-f", str(FIXTURES / "upstream-cases.yaml"), "--node", "behavior=NoSwap,memory=2Gi,swap=1Gi"
    )
    files = on(containers(no_swap_v2)["Pod/swap-burstable:sleeper"], "node")["cgroupFiles"]
    assert files == {"memory.max": "max", "memory.swap.max": "0", "memory.high": "max"}


def test_working_set_for_one_container_and_thp_always() -> None:
    doc = explain_json(
        "-f", str(FIXTURES / "deployment-two-containers.yaml"),
        "--node", VM.replace("thp=madvise", "thp=always"),
        "--working-set", "app=900Mi", "--working-set", "100Mi",
    )  # fmt: skip
    by_name = containers(doc)
    app_vm = on(by_name["Deployment/web:app"], "vm")
    # 900Mi fits 500Mi + 561 MiB of swap on paper, but THP always makes that sum unsafe
    assert app_vm["workingSetBytes"] == 900 * MiB
    assert app_vm["prediction"]["outcome"] == "Borderline"
    assert "'always'" in app_vm["prediction"]["explanation"]
    shipper = on(by_name["Deployment/web:log-shipper"], "vm")
    assert shipper["workingSetBytes"] == 100 * MiB
    assert shipper["prediction"]["outcome"] == "OOMKilled"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--node", "memory=1Gi,colour=red"], "KEY=VALUE"),
        (["--node", "behavior=Unlimited,memory=1Gi,swap=1Gi"], "swap behaviour"),
        (["--node", "cgroup=v3,memory=1Gi,swap=1Gi"], "cgroup version"),
        (["--node", "memory=500m,swap=1Gi"], "0.5 bytes"),
        (["--working-set", "900m"], "ambiguous"),
        (["--working-set", "=900Mi"], "NAME=SIZE"),
    ],
)
def test_bad_flags_are_one_line_exit_2(args: list[str], needle: str) -> None:
    result = runner.invoke(app, ["explain", "-f", str(FIXTURES / "job.yaml"), *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output and "Traceback" not in result.output


def test_bad_inputs_are_one_line_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: Pod\n  spec: [\n")
    for args, needle in (
        (["-f", str(tmp_path / "missing.yaml")], "cannot read"),
        (["-f", str(broken)], "is not YAML"),
        (["-f", str(ROOT / "manifests/rbac/clusterrole.yaml")], "no workloads"),
        ([], "nothing to explain"),
        (["deployment/web"], "explain reads pods"),
        (["pod/x", "-f", str(FIXTURES / "job.yaml")], "not both"),
    ):
        result = runner.invoke(app, ["explain", *args])
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.output and "Traceback" not in result.output


def test_real_process_prints_one_line_on_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "oomlab.cli.main", "explain", "-f", "/nonexistent/x.yaml"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_text_output_names_the_why_and_the_docker_flags() -> None:
    result = runner.invoke(
        app, ["explain", "-f", str(FIXTURES / "deployment-two-containers.yaml"), "--node", VM]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Deployment/web in shop: QoS Burstable" in text
    assert f"memory.swap.max {vm_share(400 * MiB)}" in text
    assert "request equals its limit, which LimitedSwap excludes" in text
    assert "docker run --memory=64m --memory-swap=64m (the same limits)" in text


def test_without_a_node_the_pod_rules_alone_decide() -> None:
    doc = explain_json("-f", str(FIXTURES / "upstream-cases.yaml"))
    eligible = {obj["name"]: obj["containers"][0]["swapEligible"] for obj in doc["objects"]}
    assert eligible == {name: not causes for name, (_, _, causes) in UPSTREAM_ON_VM.items()}
    assert doc["nodes"] == []


# --------------------------------------------------------------------------------------------
# the kubectl plugin


def test_kubectl_plugin_is_installed_beside_oomlab() -> None:
    bin_dir = Path(sys.executable).parent
    plugin = shutil.which("kubectl-oomlab", path=str(bin_dir))
    assert plugin is not None, f"no kubectl-oomlab in {bin_dir}: pip install -e . installs it"
    proc = subprocess.run(
        [plugin, "explain", "-f", str(FIXTURES / "job.yaml"), "--node", VM, "--json"],
        capture_output=True, text=True, check=False, env=offline_env(bin_dir),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["objects"][0]["ref"] == "Job/nightly-import"


def offline_env(bin_dir: Path) -> dict[str, str]:
    """PATH with this venv first; a KUBECONFIG that does not exist (nothing is reached)."""
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["KUBECONFIG"] = "/nonexistent/kubeconfig"
    return env


def test_kubectl_runs_the_plugin() -> None:
    kubectl = shutil.which("kubectl") or ("/usr/bin/kubectl" if Path("/usr/bin/kubectl").exists()
                                          else None)  # fmt: skip
    if kubectl is None:
        pytest.skip("no kubectl")
    bin_dir = Path(sys.executable).parent
    env = offline_env(bin_dir)
    listed = subprocess.run([kubectl, "plugin", "list"], capture_output=True, text=True,
                            env=env, check=False)  # fmt: skip
    assert str(bin_dir / "kubectl-oomlab") in listed.stdout
    proc = subprocess.run(
        [kubectl, "oomlab", "explain", "-f", str(FIXTURES / "cronjob.yaml"), "--node", VM],
        capture_output=True, text=True, env=env, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "CronJob/report: QoS Burstable" in proc.stdout
    usage = subprocess.run([kubectl, "oomlab", "--help"], capture_output=True, text=True,
                           env=env, check=False)  # fmt: skip
    assert "kubectl oomlab" in usage.stdout


# --------------------------------------------------------------------------------------------
# the live face reads and only reads (a fake transport: no cluster)


def test_profile_from_node_reads_labels_and_kubelet_version() -> None:
    from oomlab.rules.explain import profile_from_node

    node = {
        "metadata": {"name": "vm", "labels": {"oomlab.dev/swap-behavior": "LimitedSwap",
                                               "oomlab.dev/cgroup-version": "v2",
                                               "oomlab.dev/thp": "madvise"}},
        "status": {"capacity": {"memory": "1496032Ki"},
                   "nodeInfo": {"kubeletVersion": "v1.34.4", "swap": {"capacity": VM_SWAP}}},
    }  # fmt: skip
    profile = profile_from_node(node)
    assert profile == NodeProfile(
        "vm", SwapBehavior.LIMITED_SWAP, CgroupVersion.V2, VM_MEMORY, VM_SWAP, "v1.34.4",
        "madvise",
    )  # fmt: skip
    unlabelled = profile_from_node({"metadata": {"name": "n"}, "status": {}})
    assert unlabelled.swap_behavior == SwapBehavior.NO_SWAP and unlabelled.notes
    from_config = profile_from_node(
        {"metadata": {"name": "n"}}, swap_behavior_from_config=SwapBehavior.LIMITED_SWAP
    )
    assert from_config.swap_behavior == SwapBehavior.LIMITED_SWAP and not from_config.notes


def test_limited_swap_share_is_the_kubelets_formula() -> None:
    # calcSwapForBurstablePods: int64(float64(request) / float64(capacity) * float64(swap))
    assert limited_swap_bytes(400 * MiB, VM_MEMORY, VM_SWAP) == 587_960_434
    assert kernel_limit(587_960_434) == 587_960_320


class FakeCluster:
    """Answers the API client's requests from canned objects; exec runs ``cat`` on a dict of
    files. Records nothing itself: the audit under test is the client's own."""

    def __init__(self, objects: dict[str, Any], files: dict[str, dict[str, str]]) -> None:
        self.objects = objects
        self.files = files
        """container -> {path: content}; a container missing here has no ``cat``."""

    def rest(self, method: str, url: str, **_: Any) -> Any:
        from urllib.parse import urlsplit

        from kubernetes.client import rest

        class Raw:
            def __init__(self, status: int, body: Any) -> None:
                self.status, self.reason = status, "OK" if status == 200 else "Not Found"
                self.data = json.dumps(body).encode()
                self.headers: dict[str, str] = {}

        path = urlsplit(url).path
        body = self.objects.get(path)
        return rest.RESTResponse(Raw(200, body) if body is not None else Raw(404, {}))

    def ws_client(self) -> type:
        cluster = self

        class FakeSession:
            def __init__(self, configuration: Any, url: str, *args: Any, **kwargs: Any) -> None:
                from urllib.parse import parse_qs, urlsplit

                query = parse_qs(urlsplit(url).query)
                container, command = query["container"][0], query["command"]
                files = cluster.files.get(container)
                self.out, self.err = "", ""
                if files is None:
                    self.status = {"status": "Failure", "message": 'failed to exec in container: '
                                   'exec: "cat": executable file not found in $PATH'}  # fmt: skip
                elif command[1] in files:
                    self.out, self.status = files[command[1]] + "\n", {"status": "Success"}
                else:
                    self.err = f"cat: {command[1]}: No such file or directory\n"
                    self.status = {"status": "Failure", "reason": "NonZeroExitCode",
                                   "details": {"causes": [{"reason": "ExitCode",
                                                           "message": "1"}]}}  # fmt: skip

            def run_forever(self, timeout: float | None = None) -> None:
                pass

            def peek_stdout(self) -> bool:
                return bool(self.out)

            def read_stdout(self) -> str:
                return self.out

            def peek_stderr(self) -> bool:
                return bool(self.err)

            def read_stderr(self) -> str:
                return self.err

            def read_channel(self, channel: int) -> str:
                return json.dumps(self.status)

            def close(self) -> None:
                pass

        return FakeSession


def live_pod(name: str, container: str, node: str, resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"nodeName": node, "priority": 0,
                 "containers": [{"name": container, "image": "x", "resources": resources}]},
        "status": {"qosClass": "Burstable",
                   "containerStatuses": [{"name": container, "state": {"running": {}}}]},
    }  # fmt: skip


VM_NODE = {
    "metadata": {"name": "vm", "labels": {"oomlab.dev/swap-behavior": "LimitedSwap",
                                           "oomlab.dev/cgroup-version": "v2"}},
    "status": {"capacity": {"memory": str(VM_MEMORY)},
               "nodeInfo": {"kubeletVersion": "v1.34.4", "swap": {"capacity": VM_SWAP}}},
}  # fmt: skip
HOST_NODE = {
    "metadata": {"name": "host", "labels": {}},
    "status": {"capacity": {"memory": "24Gi"}, "nodeInfo": {"kubeletVersion": "v1.34.4"}},
}


@pytest.fixture
def fake_cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    from kubernetes import client
    from kubernetes.stream import ws_client

    from oomlab.cli import explain_live

    burstable = {"requests": {"memory": "400Mi"}, "limits": {"memory": "500Mi"}}
    cluster = FakeCluster(
        {
            "/api/v1/namespaces/ns/pods/web": live_pod("web", "app", "vm", burstable),
            "/api/v1/namespaces/ns/pods/distroless": live_pod("distroless", "app", "vm", burstable),
            "/api/v1/namespaces/ns/pods/old": live_pod("old", "app", "host", burstable),
            "/api/v1/nodes/vm": VM_NODE,
            "/api/v1/nodes/host": HOST_NODE,
            "/api/v1/nodes/host/proxy/configz": {"kubeletconfig": {"memorySwap": {}}},
        },
        {},
    )
    api = explain_live.AuditedApiClient(client.Configuration(host="https://cluster.invalid"))
    monkeypatch.setattr(api.rest_client, "request", cluster.rest)
    monkeypatch.setattr(ws_client, "WSClient", cluster.ws_client())
    monkeypatch.setattr(explain_live, "audited_client", lambda: api)
    return cluster


def test_live_pod_predicted_vs_observed_and_only_reads(fake_cluster: FakeCluster) -> None:
    share = vm_share(400 * MiB)
    fake_cluster.files["app"] = {
        "/sys/fs/cgroup/memory.max": str(500 * MiB),
        "/sys/fs/cgroup/memory.swap.max": str(share),
        "/sys/fs/cgroup/memory.high": "max",
    }
    doc = explain_json("pod/web", "-n", "ns", "--cgroup")
    vm = on(doc["objects"][0]["containers"][0], "vm")
    assert vm["observed"]["memory.swap.max"] == str(share) == vm["cgroupFiles"]["memory.swap.max"]
    assert vm["agrees"] is True
    assert [c["agrees"] for c in vm["checks"]] == [True, True, True]
    requests = doc["apiRequests"]
    assert {r["method"] for r in requests} == {"GET"}
    assert [r["path"].split("?")[0] for r in requests] == [
        "/api/v1/namespaces/ns/pods/web",
        "/api/v1/nodes/vm",
        *["/api/v1/namespaces/ns/pods/web/exec"] * 3,
    ]
    assert "command=cat&command=/sys/fs/cgroup/memory.swap.max&container=app" in requests[3]["path"]


def test_live_disagreement_is_exit_1_and_said(fake_cluster: FakeCluster) -> None:
    fake_cluster.files["app"] = {
        "/sys/fs/cgroup/memory.max": str(500 * MiB),
        "/sys/fs/cgroup/memory.swap.max": "0",
        "/sys/fs/cgroup/memory.high": "max",
    }
    doc = explain_json("pod/web", "-n", "ns", "--cgroup", code=1)
    vm = on(doc["objects"][0]["containers"][0], "vm")
    assert vm["agrees"] is False
    assert "memory.swap.max differ" in vm["disagreement"]


def test_live_image_without_cat_is_said_plainly(fake_cluster: FakeCluster) -> None:
    result = runner.invoke(app, ["explain", "pod/distroless", "-n", "ns", "--cgroup"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "the image has no cat to read its cgroup files with" in text
    assert "executable file not found" in text


def test_live_unlabelled_v1_node_asks_the_kubelets_configz(fake_cluster: FakeCluster) -> None:
    fake_cluster.files["app"] = {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes": str(500 * MiB),
        "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes": str(500 * MiB),
    }
    doc = explain_json("pod/old", "-n", "ns", "--cgroup")
    host = on(doc["objects"][0]["containers"][0], "host")
    assert doc["nodes"][0]["swapBehavior"] == "NoSwap" and doc["nodes"][0]["cgroupVersion"] == "v1"
    assert host["noSwapCause"] == "cgroup-v1" and host["agrees"] is True
    paths = [r["path"].split("?")[0] for r in doc["apiRequests"]]
    assert "/api/v1/nodes/host/proxy/configz" in paths
    # v2's memory.max is missing: one failed cat, then the v1 files
    assert paths.count("/api/v1/namespaces/ns/pods/old/exec") == 3
    assert {r["method"] for r in doc["apiRequests"]} == {"GET"}


def test_live_missing_pod_is_one_line(fake_cluster: FakeCluster) -> None:
    result = runner.invoke(app, ["explain", "pod/nope", "-n", "ns"])
    assert result.exit_code == 2
    assert "pod ns/nope not found" in result.output


def test_the_audit_would_see_a_write(fake_cluster: FakeCluster) -> None:
    """The recorder is not blind to writes: a create through the same client is recorded."""
    from kubernetes import client

    from oomlab.cli import explain_live

    api = explain_live.audited_client()
    with pytest.raises(client.ApiException):
        client.CoreV1Api(api).create_namespaced_pod("ns", {"metadata": {"name": "x"}})
    assert api.requests[-1] == explain_live.ApiRequest("POST", "/api/v1/namespaces/ns/pods")


def test_node_profile_reads_every_key_and_names_an_unnamed_node() -> None:
    from oomlab.cli.explain_output import node_profile

    host = node_profile(HOST)
    assert (host.name, host.swap_behavior, host.cgroup_version) == (
        "host",
        SwapBehavior.NO_SWAP,
        CgroupVersion.V1,
    )
    assert (host.memory_capacity_bytes, host.swap_capacity_bytes) == (24 * 2**30, 0)
    assert (host.kubelet_version, host.thp) == ("v1.34.4", None)
    unnamed = node_profile("memory=1Gi,thp=madvise")
    assert (unnamed.name, unnamed.swap_behavior, unnamed.thp) == (
        "node",
        SwapBehavior.LIMITED_SWAP,
        "madvise",
    )
