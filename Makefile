# 接诉即办 platform — the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-quick bench schema install clean

# Install (again) whenever the dependency list changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) …"
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Start everything: embedded PostgreSQL and broker, every service, demo data. Ctrl-C stops it.
run: $(STAMP)
	@$(BIN)/python -m services.launcher

## The whole suite against real PostgreSQL and a real broker (started and stopped by the tests).
test: $(STAMP)
	@$(BIN)/python -m pytest -q -p no:cacheprovider

## The quick tests only (no slow end-to-end or fault tests).
test-quick: $(STAMP)
	@$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow"

## Benchmarks: baselines and service figures, written to BENCHMARKS.md.
bench: $(STAMP)
	@$(BIN)/python -m bench

## Regenerate the committed JSON Schema of the event contract.
schema: $(STAMP)
	@$(BIN)/python -m shared.schema

clean:
	rm -rf $(VENV) .run test-artifacts
