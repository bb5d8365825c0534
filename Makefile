# Developer and CI entry points. `make test` is what .ci/run calls.
SHELL := /bin/bash
.DEFAULT_GOAL := test

# --- the ansible-core matrix --------------------------------------------------
# One venv per supported core, each on a controller Python that core supports.
# .venv holds the newest core: it is the default for `make venv`, `make demo`,
# `make bench` and the whole-suite run of `make test`.
NEWEST_CORE := 2.21
CORES := 2.19 2.20 2.21
CORE_PY_2.19 := 3.11
CORE_PY_2.20 := 3.12
CORE_PY_2.21 := 3.13
venv_of = $(if $(filter $(NEWEST_CORE),$(1)),.venv,.venv-$(1))

# A controller Python X.Y: $(PYTHON_X.Y) if set, else pyenv's, else pythonX.Y on PATH.
PYENV_VERSIONS ?= $(HOME)/.pyenv/versions
find_python = $(or $(PYTHON_$(1)),$(lastword $(sort $(wildcard $(PYENV_VERSIONS)/$(1).*/bin/python3))),$(shell command -v python$(1) 2>/dev/null))

VENV := .venv
VPY := $(VENV)/bin/python
PYTEST_ARGS ?=
BENCH_ARGS ?=
# `make bench BENCH_CORE=2.19`: benchmark another core of the matrix.
BENCH_CORE ?= $(NEWEST_CORE)
# Only pass test dirs that exist: pytest errors on a missing path.
TEST_DIRS := $(wildcard tests/unit tests/integration)

.PHONY: venv venvs env test test-core sanity lint demo bench clean-env

venv: $(VENV)/.stamp
venvs: $(foreach core,$(CORES),$(call venv_of,$(core))/.stamp)

# $(1) core, $(2) controller Python version. Installs the core first, then the
# project beside it: pip must keep that core (checked), as it must for users.
define core_venv
$(call venv_of,$(1))/.stamp: pyproject.toml
	@py='$(call find_python,$(2))'; if [ -z "$$$$py" ] || ! [ -x "$$$$py" ]; then \
		echo "make: Python $(2) (the controller Python for ansible-core $(1)) not found: looked for $(PYENV_VERSIONS)/$(2).*/bin/python3 and python$(2) on PATH; set PYTHON_$(2)=/path/to/python$(2)" >&2; exit 1; fi; \
	venv=$(call venv_of,$(1)); \
	if [ -x $$$$venv/bin/python ] && ! $$$$venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(2)".split("."))))'; then \
		echo "make: $$$$venv is not a Python $(2) venv: recreating it"; rm -rf $$$$venv; fi; \
	test -x $$$$venv/bin/python || $$$$py -m venv $$$$venv; \
	$$$$venv/bin/python -m pip install -q 'ansible-core==$(1).*' && \
	$$$$venv/bin/python -m pip install -q -e '.[test]' && \
	$$$$venv/bin/python -c 'import sys, ansible.release as r; sys.exit(None if r.__version__.startswith("$(1).") else "make: installing ansible-svc replaced ansible-core $(1) with %s" % r.__version__)'
	touch $$@
endef
$(foreach core,$(CORES),$(eval $(call core_venv,$(core),$(CORE_PY_$(core)))))

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

# The test matrix, within CI's budget (45 minutes on 2 cores):
# - the newest core runs the whole suite, then `ansible-test sanity` on the
#   built collection (make sanity);
# - the oldest core runs all but the tests marked newest_core_only (our own
#   machinery, where ansible-core is a bystander: faults, bastions, hostile
#   targets, containers, signals, task isolation, process clean-up, installs,
#   ansible-runner, the bench harness);
# - the cores between run the unit tests (the contract tests with them: they
#   read the installed core's internals) and MIDDLE_CORE_TESTS, one play per
#   module kind and the collection's build, install and docs.
# Every core runs even when one fails; the summary names the failing ones.
OLDEST_CORE := $(firstword $(CORES))
MIDDLE_CORE_TESTS := tests/integration/test_env_smoke.py tests/integration/test_module_kinds.py tests/integration/test_docs_collection.py
test: venvs env
	@failed=(); start=$$SECONDS; \
	for core in $(NEWEST_CORE) $(filter-out $(NEWEST_CORE),$(CORES)); do \
		venv=$$([ $$core = $(NEWEST_CORE) ] && echo .venv || echo .venv-$$core); \
		case $$core in \
			$(NEWEST_CORE)) tests="$(TEST_DIRS)"; only=""; what="whole suite" ;; \
			$(OLDEST_CORE)) tests="$(TEST_DIRS)"; only="not newest_core_only"; what="all but newest_core_only" ;; \
			*) tests="$(filter tests/unit,$(TEST_DIRS)) $(MIDDLE_CORE_TESTS)"; only="not newest_core_only"; what="unit, contract and MIDDLE_CORE_TESTS" ;; \
		esac; \
		echo "=== ansible-core $$core ($$($$venv/bin/python -c 'import ansible.release as r, platform; print(r.__version__, "on Python", platform.python_version())')): $$what"; \
		$$venv/bin/python -m pytest $$tests -q -rs -m "$$only" $(PYTEST_ARGS) || failed+=($$core); \
		if [ $$core = $(NEWEST_CORE) ]; then \
			echo "=== ansible-test sanity (ansible-core $$core)"; \
			bash tests/sanity/run.sh .venv || failed+=(sanity); \
			echo "=== ansible-lint --profile production"; \
			$(MAKE) --no-print-directory lint || failed+=(lint); \
		fi; \
	done; \
	echo "=== matrix done in $$((SECONDS - start)) s; failed: $${failed[*]:-none}"; \
	[ $${#failed[@]} -eq 0 ]

# ansible-test sanity on the built collection, with the newest core.
sanity: venv
	bash tests/sanity/run.sh $(VENV)

# ansible-lint's production profile on the repository, from a venv of its
# own (it brings its own ansible-core and would move the test venvs' cores).
LINT_VENV := .venv-lint
lint:
	@test -x $(LINT_VENV)/bin/python || $(call find_python,$(CORE_PY_$(NEWEST_CORE))) -m venv $(LINT_VENV)
	@$(LINT_VENV)/bin/python -m pip install -q ansible-lint 'ansible-core==$(NEWEST_CORE).*'
	$(LINT_VENV)/bin/ansible-lint --profile production --offline

# One core only: `make test-core CORE=2.19`.
CORE ?= $(NEWEST_CORE)
test-core: $(call venv_of,$(CORE))/.stamp env
	$(call venv_of,$(CORE))/bin/python -m pytest $(TEST_DIRS) -q -rs $(PYTEST_ARGS)

demo: venv env
	$(VPY) demo/run_demo.py

bench: $(call venv_of,$(BENCH_CORE))/.stamp env
	$(call venv_of,$(BENCH_CORE))/bin/python -m pip install -q -e '.[bench]'
	$(call venv_of,$(BENCH_CORE))/bin/python -m bench $(BENCH_ARGS)

clean-env:
	bash tests/env/teardown.sh
