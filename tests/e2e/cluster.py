"""Talking to the cluster under test the way a user does: kubectl for manifests, the API for
reading experiments back. Shared by the e2e tests and the operator benchmarks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from lab import Lab, wait_for
from oomlab import kube
from oomlab.experiment import GROUP, LABEL_EXPERIMENT_UID, PLURAL, VERSION, ExperimentSpec
from oomlab.rules.nodes import kubelet_placement, node_facts_from_node
from oomlab.runners.kubernetes import ClusterExperiment, KubernetesRunner

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "manifests" / "samples"
LOCAL_KUBECONFIG = (
    Path(os.environ.get("OOMLAB_STATE", "/var/lib/oomlab")) / "cluster" / "kubeconfig"
)
OPERATOR_NAMESPACE = "oomlab-system"
OPERATOR_DEPLOYMENT = "oomlab-operator"


def kubeconfig() -> str | None:
    if os.environ.get("KUBECONFIG"):
        return os.environ["KUBECONFIG"]
    return str(LOCAL_KUBECONFIG) if LOCAL_KUBECONFIG.is_file() else None


def kubectl_bin() -> str:
    if os.environ.get("KUBECTL"):
        return os.environ["KUBECTL"]
    cache = Path(os.environ.get("OOMLAB_CACHE", "/var/cache/oomlab")) / "bin"
    built = sorted(cache.glob("k8s-v*/kubectl"), reverse=True)
    if built:
        return str(built[0])
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError("no kubectl: run hack/k8s-build.sh or install one")
    return found


def kubectl(
    *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    config = kubeconfig()
    if config:
        env["KUBECONFIG"] = config
    return subprocess.run(
        [kubectl_bin(), *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
        env=env,
    )


def runtime_classes() -> list[str]:
    """The RuntimeClass names the cluster offers."""
    names = kubectl("get", "runtimeclass", "-o", "name").stdout.split()
    return sorted(name.removeprefix("runtimeclass.node.k8s.io/") for name in names)


def deploy_operator() -> None:
    """CRD, RBAC and operator with ``kubectl apply -k manifests/``, then a fresh operator pod (a
    rebuilt image under the same tag needs a new pod to take effect), ready: within
    OOMLAB_OPERATOR_ROLLOUT_SECONDS (180; longer under emulation). OOMLAB_OPERATOR_IMAGE, when
    set, replaces the manifests' oomlab/operator:dev."""
    deployment = f"deployment/{OPERATOR_DEPLOYMENT}"
    rollout_s = int(os.environ.get("OOMLAB_OPERATOR_ROLLOUT_SECONDS", "180"))
    kubectl("apply", "-k", str(ROOT / "manifests"))
    kubectl("wait", "--for=condition=Established", "crd/oomexperiments.oomlab.dev", "--timeout=60s")
    image = os.environ.get("OOMLAB_OPERATOR_IMAGE")
    if image:  # a branch's operator under its own tag (hack/images.sh names it the same way)
        kubectl("-n", OPERATOR_NAMESPACE, "set", "image", deployment, f"operator={image}")
    kubectl("-n", OPERATOR_NAMESPACE, "rollout", "restart", deployment)
    kubectl(
        "-n",
        OPERATOR_NAMESPACE,
        "rollout",
        "status",
        deployment,
        f"--timeout={rollout_s}s",
        timeout=rollout_s + 60,
    )


def operator_rss_bytes() -> int:
    """VmRSS of the deployed operator's kopf process, read inside its container."""
    script = "print([l for l in open('/proc/1/status') if l.startswith('VmRSS')][0].split()[1])"
    kib = kubectl(
        "-n", OPERATOR_NAMESPACE, "exec", f"deployment/{OPERATOR_DEPLOYMENT}", "--",
        "python3", "-c", script,
    ).stdout.strip()  # fmt: skip
    return int(kib) * 1024


def experiment(
    name: str, spec: dict[str, Any], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """The OOMExperiment for ``spec`` as every oomlab face writes it (checked first)."""
    return ExperimentSpec.from_spec(spec).to_document(name, labels=labels)


def small_spec(**overrides: Any) -> dict[str, Any]:
    """A quick experiment: 16Mi held under a 64Mi limit, completes in about a second."""
    spec: dict[str, Any] = {
        "workload": {"mode": "bulk", "size": "16Mi", "chunk": "8Mi", "imagePullPolicy": "Never"},
        "resources": {"limits": {"memory": "64Mi"}},
        "timeoutSeconds": 120,
    }
    spec.update(overrides)
    return spec


def with_kubelet_of(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``spec`` (an experiment's or a pod's) that also asks for ``node``'s kubelet when
    the node is tainted for it (hack/vm-node-old.sh): the kubelet version's nodeSelector and
    toleration added. For any other node, the same terms as before."""
    facts = node_facts_from_node(node)
    if not (facts.kubelet_tainted and facts.kubelet_version):
        return dict(spec)
    terms = kubelet_placement(facts.kubelet_version).pod_fields(
        spec.get("nodeSelector") or {}, spec.get("tolerations") or []
    )
    return {**spec, **terms}


def sample(name: str, **spec: Any) -> dict[str, Any]:
    """A sample manifest, namespace-free (a test applies it in its own), with ``spec`` updated."""
    body: dict[str, Any] = yaml.safe_load((SAMPLES / f"{name}.yaml").read_text())
    body["metadata"].pop("namespace", None)
    body["spec"].update(spec)
    return body


class Namespace(Lab):
    """The e2e tests' view of one namespace: the shared :class:`Lab` plus whole documents, run
    and waited for by the Kubernetes runner as the CLI and the report run them."""

    def __init__(self, api: client.ApiClient, name: str) -> None:
        super().__init__(api, name)
        self.name = name
        # The runner talks through oomlab.kube, which reads KUBECONFIG; name the cluster under
        # test there when it was found by its default path.
        path = kubeconfig()
        if path and os.environ.get("KUBECONFIG") != path:
            os.environ["KUBECONFIG"] = path
            kube.reset_client()

    def runner(self) -> KubernetesRunner:
        """Experiments are kept: the tests read their pods and events afterwards, and the
        namespace goes at the end."""
        return KubernetesRunner(self.name, keep=True)

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.name, PLURAL, body
        )
        return created

    def pods_of(self, name: str) -> list[Any]:
        body = self.get(name)
        if body is None:
            return []
        uid = body["metadata"]["uid"]
        selector = f"{LABEL_EXPERIMENT_UID}={uid}"
        items: list[Any] = self.core.list_namespaced_pod(self.name, label_selector=selector).items
        return items

    def events_of(self, name: str) -> list[Any]:
        selector = f"involvedObject.kind=OOMExperiment,involvedObject.name={name}"
        items: list[Any] = self.core.list_namespaced_event(self.name, field_selector=selector).items
        return items

    def wait_for(
        self, name: str, done: Callable[[dict[str, Any]], bool], timeout: float = 180
    ) -> dict[str, Any]:
        status: dict[str, Any] = wait_for(
            lambda: (s := self.status(name)) and done(s) and s,
            timeout,
            f"{self.name}/{name} to get there",
            lambda: str(self.status(name)),
        )
        return status

    def wait_terminal(self, name: str, timeout: float = 180) -> dict[str, Any]:
        """The experiment's final status (swap cost included when asked), seen on a watch."""
        (seen,) = self.runner().wait([name], timeout)
        assert seen.finished, f"{self.name}/{name}: {seen.problem}; last: {seen.status}"
        return seen.status

    def run_all(self, bodies: list[dict[str, Any]], timeout: float = 180) -> list[dict[str, Any]]:
        """Create the experiments through the Kubernetes runner and return each one's final
        status, in order."""
        experiments = [
            ClusterExperiment(
                body["metadata"]["name"],
                ExperimentSpec.from_spec(body["spec"]),
                body["metadata"].get("labels") or {},
            )
            for body in bodies
        ]
        observed = self.runner().run_all(experiments, timeout_s=timeout)
        unfinished = [f"{seen.name}: {seen.problem}" for seen in observed if not seen.finished]
        assert not unfinished, f"{self.name}: {unfinished}"
        return [seen.status for seen in observed]

    def run(self, body: dict[str, Any], timeout: float = 180) -> dict[str, Any]:
        """Create the experiment through the Kubernetes runner and return its final status."""
        (status,) = self.run_all([body], timeout)
        return status

    def oomlab_parity(self, name: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """``oomlab parity``: the experiment's Docker side run on this host's engine and handed
        to the operator, as a user runs it."""
        return subprocess.run(
            [sys.executable, "-m", "oomlab.cli.main", "parity", name, "-n", self.name],
            capture_output=True, text=True, timeout=timeout, check=False,
            env={"KUBECONFIG": kubeconfig() or "", "PATH": "/usr/local/bin:/usr/bin:/bin"},
        )  # fmt: skip
