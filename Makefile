# The clean room's commands. `make up` runs it, `make test` tests it (both install what
# they need on Debian as root), `make check` lints and type-checks.
.PHONY: up down uninstall test check venv images demo bench clean-state k8s-up k8s-down test-k8s

PY_SOURCES := hub tests benchmarks extensions/cleanroom_workspace

up:
	@scripts/setup.sh up

down:
	@scripts/setup.sh down

# Remove what the deployment made on this host (containers, volumes, networks, firewall
# chain, loop devices; IMAGES=1 also its images) and say what is left (docs/lifecycle.md).
uninstall: down
	.venv/bin/cleanroom teardown $(if $(IMAGES),--images,)

test:
	@scripts/setup.sh test $(PYTEST_ARGS)

venv:
	@scripts/setup.sh venv

check: venv
	.venv/bin/ruff check $(PY_SOURCES)
	.venv/bin/ruff format --check $(PY_SOURCES)
	.venv/bin/mypy $(PY_SOURCES)
	.venv/bin/python -m cleanroom.airlock.diagram --check
	.venv/bin/python -m cleanroom.registry.application_diagram --check

images: venv
	@scripts/setup.sh engine
	.venv/bin/cleanroom images build

bench: venv
	@scripts/setup.sh engine
	.venv/bin/python -m benchmarks

clean-state: down
	rm -rf state

# The one-node Kubernetes test cluster (docs/kubernetes.md): built once per machine
# (build/k8s, reused while its inputs are unchanged), state under state/k8s.
k8s-up:
	@scripts/k8s.sh up

k8s-down:
	@scripts/k8s.sh down

# The Kubernetes backend's tests: the cluster is started when down (and stopped after).
test-k8s: venv
	@scripts/setup.sh test -m k8s tests/k8s $(PYTEST_ARGS)
