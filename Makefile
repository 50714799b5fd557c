# mlc: `make demo` runs the examples, `make test` runs the test suite.
# Both create .venv (python3 -m venv) and install mlc into it when needed. The install is
# recorded in a stamp file named after a hash of pyproject.toml, so it reruns only when the
# dependencies change (or .venv is deleted).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYPROJECT_HASH := $(shell (sha256sum pyproject.toml 2>/dev/null || shasum -a 256 pyproject.toml) | cut -c1-16)
STAMP := $(VENV)/.installed-$(PYPROJECT_HASH)

# Tools from the venv first (mlc-opt, filecheck, lit), for lit's RUN lines too.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv demo test pytest filecheck clean-venv

venv: $(STAMP)

$(STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[test,demo]'
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: venv
	$(BIN)/python examples/demo.py

# Runs both suites and fails if either failed.
test: venv
	@status=0; \
	$(BIN)/pytest || status=1; \
	$(BIN)/lit -v tests/filecheck || status=1; \
	exit $$status

pytest: venv
	$(BIN)/pytest

filecheck: venv
	$(BIN)/lit -v tests/filecheck

clean-venv:
	rm -rf $(VENV)
