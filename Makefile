# The lab's commands. `make up` brings the lab up; `make test` runs the whole suite (unit,
# integration, and e2e on the kind cluster, which it brings up first).
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help venv host-deps toolchain kwok lint typecheck checkov format up down images test unit integration e2e bench bench-spread bench-scale bench-failover bench-nodeloss bench-inplace clean

help:
	@echo "make up          bring up the lab: kind cluster, images, CRD, operator, sample (NODES=3: 1 control plane + 2 workers)"
	@echo "make test        the whole suite: lint, unit, integration, e2e (brings the cluster up)"
	@echo "make typecheck   mypy and the import contracts between api/ operator/ worker/ common/ cli/ labs/"
	@echo "make unit        unit tests only (no cluster, no servers)"
	@echo "make integration real processes on loopback (no cluster; builds the control plane)"
	@echo "make e2e         end-to-end on the kind cluster"
	@echo "make images      build the worker and operator images"
	@echo "make bench       the side-by-side benchmarks (after make up)"
	@echo "make bench-spread the BALANCE modes vs Node's cluster on loopback (~10 min, no cluster)"
	@echo "make bench-scale the operator vs the Deployment controller at 10-1,000 workloads (kwok, no cluster)"
	@echo "make bench-failover  the standby master vs kopf peering's default (a control plane on loopback)"
	@echo "make bench-nodeloss  a stopped machine: WorkerCluster vs Deployment (after make up NODES=3)"
	@echo "make bench-inplace   processes and CPU changed in place vs a rolling update (after make up)"
	@echo "make down        remove the cluster (caches stay)"

$(BIN)/.installed: pyproject.toml
	bash hack/venv.sh $(VENV) dev
	touch $@

venv: $(BIN)/.installed

# Debian packages the integration tests and benchmarks run for real (a Redis server, wrk), and
# the browser the dashboard's e2e tests drive through Playwright (never Playwright's download).
host-deps:
	@bash hack/host-deps.sh redis-server wrk chromium

# kube-apiserver, kube-controller-manager, kubectl and etcd for the integration tests (cached;
# cold: ~8 min of Go builds). `make up` builds them too.
toolchain:
	bash hack/build-control-plane.sh

# helm v4 (hack/build-helm.sh: from the Go module proxy, cached) and `helm lint` of the chart;
# tests/integration/chart checks that it renders what manifests/ applies.
.PHONY: chart
chart: venv
	bash hack/build-helm.sh
	source hack/lib.sh && helm lint --strict charts/workerlab

# kwok's fake nodes for the scale rig (bench/scale/, tests/integration/operator/test_scale.py).
kwok:
	bash hack/build-kwok.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy (strict on api/ and operator/) and the import contracts between the rooms (pyproject).
typecheck: venv
	BIN=$(BIN) bash hack/typecheck.sh

# Static manifest and Dockerfile scan; every exception is justified in .checkov.yaml.
checkov: venv
	bash hack/checkov.sh

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

up: venv
	$(BIN)/workerlab up $(if $(NODES),--nodes $(NODES))

down:
	bash hack/down.sh

images: venv
	PYTHON=$(BIN)/python bash hack/build-images.sh

# pytest exits 5 when it collected nothing: that is a failure here, never a silent pass.
define run_pytest
	$(BIN)/pytest $(1) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests for '$(1)': failing"; exit 1; fi; exit $$rc
endef

unit: venv
	$(call run_pytest,tests/unit)

integration: venv host-deps toolchain kwok
	$(call run_pytest,tests/integration)

e2e: up
	$(call run_pytest,tests/e2e)

# Two lanes at once (hack/test.sh says which suites go where and why).
test: lint typecheck host-deps up kwok checkov chart
	BIN=$(BIN) PYTEST_ARGS="$(PYTEST_ARGS)" bash hack/test.sh

# After `make up`. BENCH_ARGS=--quick shortens the steady-state window (about 10 min in all).
bench: venv host-deps
	source hack/lib.sh && $(BIN)/python bench/run.py $(BENCH_ARGS)

# Balancing (issues 14 and 26): spread, the busy-node check (3 processes, one core busy, three
# runs), CPU isolation and throughput of BALANCE=shared/reuseport beside Node's cluster, on
# 127.0.0.1 only (no cluster; wrk and node). Run it on a quiet machine: bench/results/spread.md.
bench-spread: venv host-deps
	source hack/lib.sh && $(BIN)/python bench/run.py --only spread $(BENCH_ARGS)

# The scale rig: a control plane on loopback, kwok's nodes, the operator as a process, against
# kube-controller-manager's Deployment controller. Needs no kind cluster: the lab's, if up, is
# paused for the run and resumed after. Default N = 10,100,1000 (27 min measured on 2 cores, goal
# 30; docs/scale.md); BENCH_SCALE_ARGS="--clusters 20 --window 60" for a quick look. Results:
# bench/results/scale.{json,md,png}.
BENCH_SCALE_ARGS ?=
$(VENV)/.bench: $(BIN)/.installed
	bash hack/venv.sh $(VENV) dev,bench
	touch $@

bench-scale: $(VENV)/.bench toolchain kwok
	source hack/lib.sh && $(BIN)/python bench/scale/run.py $(BENCH_SCALE_ARGS)

# The standby master (issue 23): SIGKILL, SIGSTOP and SIGTERM of the active operator, 10 trials
# each, against two kopf peers with kopf's default peering; ~20 min. bench/results/failover.md.
BENCH_FAILOVER_ARGS ?=
bench-failover: venv toolchain
	source hack/lib.sh && $(BIN)/python bench/failover/run.py $(BENCH_FAILOVER_ARGS)

# A stopped machine (issue 23): WorkerCluster vs Deployment, 3 trials of up to 7 min, on the lab
# cluster with two workers (make up NODES=3). bench/results/nodeloss.md.
BENCH_NODELOSS_ARGS ?=
bench-nodeloss: venv
	source hack/lib.sh && $(BIN)/python bench/nodeloss/run.py $(BENCH_NODELOSS_ARGS)

# Both levels scaled without a restart (issue 26): processesPerPod 2→4→1 and a CPU resize in
# place against a rolling update, 3 trials under load, ~6 min (after make up).
# bench/results/inplace.md.
BENCH_INPLACE_ARGS ?=
bench-inplace: venv
	source hack/lib.sh && $(BIN)/python bench/inplace/run.py $(BENCH_INPLACE_ARGS)

clean:
	rm -rf $(VENV) .build .pytest_cache .ruff_cache
