# The clean room's commands. `make up` runs it, `make test` tests it (both install what
# they need on Debian as root), `make check` lints and type-checks.
.PHONY: up down uninstall test check venv images demo bench clean-state

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

images: venv
	@scripts/setup.sh engine
	.venv/bin/cleanroom images build

bench: venv
	@scripts/setup.sh engine
	.venv/bin/python -m benchmarks

clean-state: down
	rm -rf state
