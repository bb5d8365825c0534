# Developer and CI entry points. `make test` is what .ci/run calls.
SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
PYTEST_ARGS ?=
BENCH_ARGS ?=
# Only pass test dirs that exist: pytest errors on a missing path.
TEST_DIRS := $(wildcard tests/unit tests/integration)

.PHONY: venv env test demo bench clean-env

venv: $(VENV)/.stamp

# Reinstall whenever pyproject.toml (and so the pinned deps) changes.
$(VENV)/.stamp: pyproject.toml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q -e '.[test]'
	touch $@

pyproject.toml:
	@echo "make: pyproject.toml is missing; cannot install the project" >&2; exit 1

# Needs root (users, sudoers, sshd). Without root, say so and carry on:
# the integration tests that need the environment skip with a clear reason.
env:
	@if [ "$$(id -u)" -eq 0 ]; then \
		bash tests/env/setup.sh; \
	else \
		echo "make env: not root, skipping the ssh test environment (tests/env/setup.sh); ssh tests will be skipped" >&2; \
	fi

test: venv env
	$(VPY) -m pytest $(TEST_DIRS) -q -rs $(PYTEST_ARGS)

demo: venv env
	$(VPY) demo/run_demo.py

bench: venv env
	$(VPY) -m pip install -q -e '.[bench]'
	$(VPY) -m bench $(BENCH_ARGS)

clean-env:
	bash tests/env/teardown.sh
