# oomlab: the targets the README names. Everything runs from a clean checkout as root.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SWAP_SIZE ?= 2G
# 1: cluster-up adds the cgroup v2 LimitedSwap node (a qemu guest); 0: the host's node alone.
OOMLAB_VM_NODE ?= 1
OOMLAB_STATE ?= /var/lib/oomlab
KUBECONFIG_LOCAL ?= $(OOMLAB_STATE)/cluster/kubeconfig
PYTEST := $(BIN)/pytest

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(BIN)/oomlab: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

.PHONY: venv
venv: $(BIN)/oomlab ## Make .venv with oomlab and the dev tools.

.PHONY: docker-up
docker-up: ## Start a Docker engine (Debian docker.io) unless one answers.
	hack/docker-up.sh

.PHONY: images
images: docker-up ## Build the offline base image, the workload and operator images.
	hack/images.sh

.PHONY: swap-on
swap-on: ## Enable a $(SWAP_SIZE) swapfile owned by oomlab (the seed needs swap).
	hack/swap.sh on $(SWAP_SIZE)

.PHONY: setup
setup: venv images swap-on ## Everything the Docker side needs.

.PHONY: demo
demo: setup ## The main job: the seed experiment on the local Docker engine, as a table.
	$(BIN)/oomlab demo

.PHONY: matrix
matrix: setup ## The runtime matrix (Docker + podman, runc + crun, swap flags) with a chart.
	$(BIN)/oomlab docker matrix --engine docker,podman --runtime runc,crun --plot matrix.png

.PHONY: report
report: setup ## The runtime comparison on every engine and runtime reachable here (the cluster's columns when make cluster-up ran), written to report/.
	KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_LOCAL)} $(BIN)/oomlab report --out report

SHELL_SCRIPTS := hack/*.sh hack/lib/*.sh hack/cluster/*.sh hack/kind/*.sh .ci/run

.PHONY: lint
lint: venv ## ruff, mypy and shellcheck (installed when missing, as root; never skipped).
	$(BIN)/ruff check operator tests bench workloads
	$(BIN)/ruff format --check operator tests bench workloads
	$(PYTEST) -q -p no:cacheprovider tests/unit/test_layering.py
	$(BIN)/mypy
	@command -v shellcheck >/dev/null || { [ "$$(id -u)" = 0 ] || \
	  { echo "make lint: shellcheck is missing: apt-get install shellcheck (as root), or run make lint as root" >&2; exit 1; }; \
	  bash -c 'source hack/lib.sh && oomlab_apt_install shellcheck'; }
	shellcheck -x $(SHELL_SCRIPTS)
	@echo "shellcheck: ok"

.PHONY: test-unit
test-unit: venv ## Unit tier: pure rules, memhog, manifests; seconds, no services.
	$(PYTEST) tests/unit

.PHONY: test-net
test-net: venv ## Net tier (root): the egress guard proven inside network namespaces; seconds.
	hack/egress-guard.sh deps
	OOMLAB_REQUIRE_NETNS=1 $(PYTEST) tests/net

.PHONY: test-docker
test-docker: setup ## Docker tier: real engine, real OOM kills; minutes. podman@vm is make test-vm-engine's.
	OOMLAB_REQUIRE_ENGINE=1 $(PYTEST) tests/docker --ignore=tests/docker/test_podman_vm.py

.PHONY: cluster-up
cluster-up: images ## Egress guard, the local cluster (Kubernetes built from source, cached), and its cgroup v2 LimitedSwap VM node.
	hack/k8s-build.sh
	OOMLAB_VM_NODE=$(OOMLAB_VM_NODE) hack/cluster.sh up oomlab/memhog:dev oomlab/operator:dev

.PHONY: cluster-down
cluster-down: ## Stop the cluster, remove everything it made; the egress guard last, when nothing is left.
	hack/cluster.sh down

.PHONY: cluster-status
cluster-status: ## The egress guard (and what it dropped) and the cluster's components.
	hack/cluster.sh status

.PHONY: lab
lab: setup cluster-up ## The Kubernetes main job: operator, samples, Docker parity, the oomx table.
	hack/lab.sh

.PHONY: test-e2e
test-e2e: venv ## E2E tier: the real operator (in-process, then deployed) on the cluster at $$KUBECONFIG.
	export KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_LOCAL)} OOMLAB_REQUIRE_CLUSTER=1 && \
	  hack/e2e-prepare.sh && $(PYTEST) tests/operator && $(PYTEST) tests/e2e -m "not node_pressure"

# Under make test a skipped test fails the run (tests/conftest.py), unless its reason starts
# with "allowed skip: ": every other test that cannot run here fails through its REQUIRE guard.
# The node-pressure cases fill the VM node for minutes: they run once, on the local cluster after
# its e2e tier (make test-pressure; an allowed skip with OOMLAB_VM_NODE=0), and test-e2e
# deselects them, so kind-e2e (no LimitedSwap node on this cgroup v1 host) never runs them.
.PHONY: test
test: export OOMLAB_STRICT_SKIPS := 1
test: lint test-unit test-net test-docker cluster-up ## All tiers on this machine (what .ci/run runs); a skip not marked allowed fails it.
	OOMLAB_REQUIRE_LIMITED_SWAP=$(OOMLAB_VM_NODE) $(MAKE) test-e2e
	$(MAKE) test-pressure
	hack/vm-node.sh down
	$(MAKE) kind-e2e

.PHONY: bench
bench: setup ## Benchmarks: kit overhead vs docker CLI, memhog fill rate vs stress-ng.
	$(BIN)/python bench/kit_overhead.py
	$(BIN)/python bench/fill_rate.py

.PHONY: bench-operator
bench-operator: venv ## Operator benchmarks on the cluster at $$KUBECONFIG (status latency, RSS).
	KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_LOCAL)} $(BIN)/python bench/operator_bench.py

.PHONY: down
down: ## Undo setup: cluster, swapfile, Docker engine we started; the egress guard last.
	-hack/vm-engine.sh down
	-hack/cluster.sh down
	-hack/swap.sh off
	-hack/docker-down.sh
	-hack/egress-guard.sh down --if-idle

.PHONY: clean
clean: ## Remove the venv and caches in the tree.
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: bench-scale
bench-scale: venv ## 200 experiments at once vs 200 bare pods, on the cluster at $$KUBECONFIG (ratio, RSS).
	KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_LOCAL)} $(BIN)/python bench/scale.py

.PHONY: bench-sweep
bench-sweep: venv ## An OOMSweep of 100 host + 8 VM-node cells vs the same experiments applied directly (ratio per node kind), then operator RSS after 1,000 created and deleted, on the cluster at $$KUBECONFIG.
	KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_LOCAL)} $(BIN)/python bench/sweep_bench.py

# --- kind on this machine: the offline node image, a cluster, the e2e suite on it ---
KUBECONFIG_KIND ?= $(OOMLAB_STATE)/kind/kubeconfig

.PHONY: kind-node-image
kind-node-image: ## Build oomlab/kind-node (no registry; cached, rebuilt when its inputs change).
	hack/k8s-build.sh kind
	hack/kind-node-image.sh

.PHONY: kind-up
kind-up: kind-node-image ## A kind cluster of that image with the operator deployed.
	hack/kind-up.sh --kubeconfig $(KUBECONFIG_KIND)

.PHONY: kind-down
kind-down: ## Delete the kind cluster and the Docker network kind-up made.
	hack/kind-down.sh --kubeconfig $(KUBECONFIG_KIND)

# kind on this cgroup v1 host cannot run LimitedSwap: the LimitedSwap-only tests skip there, as
# allowed skips (OOMLAB_REQUIRE_LIMITED_SWAP=0).
.PHONY: kind-e2e
kind-e2e: venv kind-up ## The e2e tiers on the kind cluster, then kind-down (also when they fail).
	KUBECONFIG=$(KUBECONFIG_KIND) OOMLAB_REQUIRE_LIMITED_SWAP=0 $(MAKE) test-e2e; rc=$$?; \
	  hack/kind-down.sh --kubeconfig $(KUBECONFIG_KIND); exit $$rc

# --- kind with LimitedSwap for real: the cluster's Docker engine in a cgroup v2 qemu guest ---
KUBECONFIG_KIND_VM ?= $(OOMLAB_STATE)/kind-vm/kubeconfig

.PHONY: kind-vm-up
kind-vm-up: ## kind with LimitedSwap in a cgroup v2 qemu guest of its own (needs make images; slow under emulation).
	hack/k8s-build.sh kind
	hack/kind-vm.sh up

.PHONY: kind-vm-down
kind-vm-down: ## Stop the kind guest (the cluster goes with it).
	hack/kind-vm.sh down

.PHONY: kind-vm-e2e
kind-vm-e2e: setup kind-vm-up ## The LimitedSwap e2e checks on the kind-in-VM cluster, then kind-vm-down (not in CI: over 20 min here). setup: the checks' Docker side runs on this host and needs its swap.
	start=$$(date +%s); KUBECONFIG=$(KUBECONFIG_KIND_VM) OOMLAB_REQUIRE_CLUSTER=1 OOMLAB_OPERATOR_ROLLOUT_SECONDS=900 \
	  OOMLAB_REQUIRE_LIMITED_SWAP=1 $(PYTEST) -s tests/e2e/test_limited_swap.py; rc=$$?; \
	  echo "+++ time: LimitedSwap e2e checks: $$(( $$(date +%s) - start )) s (exit $$rc)"; \
	  printf '%s\tLimitedSwap e2e checks (exit %s)\t%s\n' "$$(date -u +%FT%TZ)" "$$rc" \
	    "$$(( $$(date +%s) - start ))" >>$(OOMLAB_STATE)/kind-vm-times.tsv; \
	  hack/kind-vm.sh down; exit $$rc

.PHONY: vm-node-up
vm-node-up: images ## Add a cgroup v2 node with swap and LimitedSwap (a qemu guest) to the local cluster.
	hack/k8s-build.sh k8s
	hack/vm-node.sh up

.PHONY: vm-node-down
vm-node-down: ## Stop the VM node and remove everything it made (the cluster stays up).
	hack/vm-node.sh down

.PHONY: vm-node-old-up
vm-node-old-up: images ## Add a second cgroup v2 LimitedSwap node whose kubelet is $$OOMLAB_OLD_KUBELET_VERSION (v1.34.4), tainted so only experiments that ask for that kubelet land there.
	hack/k8s-build.sh k8s old-kubelet
	hack/vm-node-old.sh up

.PHONY: vm-node-old-down
vm-node-old-down: ## Stop the second (older kubelet) VM node and remove everything it made.
	hack/vm-node-old.sh down

# The LimitedSwap checks (every e2e test on a LimitedSwap node but the node-pressure fills) with
# the older kubelet's node as their LimitedSwap node. The node stays up: make vm-node-old-down.
.PHONY: test-e2e-old-kubelet
test-e2e-old-kubelet: venv vm-node-old-up ## The LimitedSwap e2e checks on the v1.34.4 kubelet's VM node (vm-node-old-up adds it and it stays up; not in make test).
	source hack/k8s-env.sh && export KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_LOCAL)} \
	  OOMLAB_REQUIRE_CLUSTER=1 OOMLAB_REQUIRE_LIMITED_SWAP=1 OOMLAB_E2E_KUBELET=$${OOMLAB_OLD_KUBELET_VERSION} && \
	  $(PYTEST) -s tests/e2e -m "limited_swap and not node_pressure"

.PHONY: bench-vm
bench-vm: venv ## The LimitedSwap VM node vs the host's node: start -> Ready, apply -> final (ratio), status latency.
	KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_LOCAL)} $(BIN)/python bench/vm_node.py

.PHONY: thp-compare
thp-compare: venv ## THP always vs madvise on the LimitedSwap VM node, measured (switches its THP for minutes, then restores it).
	KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_LOCAL)} $(BIN)/oomlab thp-compare

.PHONY: test-pressure
test-pressure: venv ## Node memory pressure on the LimitedSwap VM node (fills it for minutes, then waits for it to recover); make test runs it after test-e2e.
	export KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_LOCAL)} OOMLAB_REQUIRE_CLUSTER=1 OOMLAB_REQUIRE_LIMITED_SWAP=$(OOMLAB_VM_NODE) && \
	  hack/e2e-prepare.sh && $(PYTEST) tests/e2e/test_node_pressure.py -m node_pressure

.PHONY: test-thp
test-thp: venv ## The THP comparison as a test; not in test-e2e, since it changes the VM node's THP for minutes.
	export KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_LOCAL)} OOMLAB_REQUIRE_CLUSTER=1 && $(PYTEST) tests/thp

.PHONY: memqos-compare
memqos-compare: venv ## Memory QoS off vs on (TieredReservation, factor 0.9) on the LimitedSwap VM node: memory.min/low/high predicted vs observed (restarts its kubelet for minutes, then restores it).
	KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_LOCAL)} $(BIN)/oomlab memqos-compare

.PHONY: test-memqos
test-memqos: venv ## The Memory QoS comparison as a test; not in test-e2e, since it restarts the VM node's kubelet for minutes.
	export KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_LOCAL)} OOMLAB_REQUIRE_CLUSTER=1 && $(PYTEST) -s tests/memqos

OOMLAB_VM_ENGINE_PORT ?= 23750
export OOMLAB_VM_ENGINE_PORT
OOMLAB_VM_ENGINE_PODMAN_PORT ?= 23751
export OOMLAB_VM_ENGINE_PODMAN_PORT
OOMLAB_VM_ENGINE_PODMAN_RUNC_PORT ?= 23752
export OOMLAB_VM_ENGINE_PODMAN_RUNC_PORT

.PHONY: vm-engine-up
vm-engine-up: images ## Docker and podman (runc, crun) in a cgroup v2 qemu guest: the engines docker@vm and podman@vm, at 127.0.0.1:$$OOMLAB_VM_ENGINE_PORT and $$OOMLAB_VM_ENGINE_PODMAN_PORT (crun), $$OOMLAB_VM_ENGINE_PODMAN_RUNC_PORT (runc).
	hack/vm-engine.sh up

.PHONY: vm-engine-down
vm-engine-down: ## Stop the VM engine and remove its overlay disk.
	hack/vm-engine.sh down

.PHONY: test-vm-engine
test-vm-engine: export OOMLAB_STRICT_SKIPS := 1
test-vm-engine: venv vm-engine-up ## podman@vm (runc, crun) on the VM engine, required; then vm-engine-down. Not in make test: it boots its own qemu guest.
	start=$$(date +%s); OOMLAB_REQUIRE_VM_ENGINE=1 \
	  OOMLAB_ENGINE_PODMAN_VM=crun=tcp://127.0.0.1:$(OOMLAB_VM_ENGINE_PODMAN_PORT),runc=tcp://127.0.0.1:$(OOMLAB_VM_ENGINE_PODMAN_RUNC_PORT) \
	  $(PYTEST) tests/docker/test_podman_vm.py; rc=$$?; \
	  echo "+++ time: podman@vm tests: $$(( $$(date +%s) - start )) s (exit $$rc)"; \
	  hack/vm-engine.sh down; exit $$rc

.PHONY: report-vm
report-vm: setup vm-engine-up ## The runtime comparison across the host's Docker (cgroup v1) and the VM's Docker and podman (v2), written to report-vm/.
	OOMLAB_ENGINE_VM=tcp://127.0.0.1:$(OOMLAB_VM_ENGINE_PORT) OOMLAB_ENGINE_PODMAN_VM=crun=tcp://127.0.0.1:$(OOMLAB_VM_ENGINE_PODMAN_PORT),runc=tcp://127.0.0.1:$(OOMLAB_VM_ENGINE_PODMAN_RUNC_PORT) \
	  $(BIN)/oomlab report --engine docker,docker@vm,podman@vm --runtime runc,crun --timeout 900 --no-cluster --out report-vm

.PHONY: report-all
report-all: setup vm-engine-up ## Every column at once: host docker/podman, docker@vm/podman@vm (runc, crun), the cluster's three (after make cluster-up); re-access left out on the VM engines for time; written to report/.
	KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_LOCAL)} OOMLAB_ENGINE_VM=tcp://127.0.0.1:$(OOMLAB_VM_ENGINE_PORT) \
	  OOMLAB_ENGINE_PODMAN_VM=crun=tcp://127.0.0.1:$(OOMLAB_VM_ENGINE_PODMAN_PORT),runc=tcp://127.0.0.1:$(OOMLAB_VM_ENGINE_PODMAN_RUNC_PORT) \
	  $(BIN)/oomlab report --engine docker,podman,docker@vm,podman@vm --runtime runc,crun --timeout 900 \
	  --cluster-timeout 900 --skip '*@vm/*:reaccess' --out report --readme-table
