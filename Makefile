# 接诉即办 platform — the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-quick test-dates bench schema install clean chromium faketime asyncapi-parser

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
	@$(BIN)/python -m services.dev.launcher

## Debian's Chromium (and a CJK font for readable screenshots) for the console's browser test;
## Playwright's own browser download is not used (it cannot be reached from the build machines).
chromium:
	@if [ -x /usr/bin/chromium ] && fc-list :lang=zh 2>/dev/null | grep -q .; then :; else \
		echo "installing Debian's chromium and fonts-wqy-microhei for the console's browser test (apt-get) …"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null \
			|| { echo "could not install chromium; the console's browser test will fail"; exit 1; }; \
	fi

## Node (Debian's nodejs, if the machine has none) and the AsyncAPI project's parser, pinned by
## shared/tests/asyncapi/package-lock.json, for shared/tests/test_asyncapi.py.
ASYNCAPI_DIR := shared/tests/asyncapi
$(ASYNCAPI_DIR)/node_modules/.installed: $(ASYNCAPI_DIR)/package-lock.json
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then :; else \
		echo "installing Debian's nodejs and npm for the AsyncAPI document's test (apt-get) …"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null \
			|| { echo "could not install node; the AsyncAPI test will fail"; exit 1; }; \
	fi
	@echo "installing @asyncapi/parser (npm ci) …"
	@cd $(ASYNCAPI_DIR) && npm ci --no-audit --no-fund --silent
	@touch $@

asyncapi-parser: $(ASYNCAPI_DIR)/node_modules/.installed

## The whole suite against real PostgreSQL and a real broker (started and stopped by the tests);
## the ten slowest tests are listed at the end, to keep the suite under ten minutes.
test: $(STAMP) chromium asyncapi-parser
	@$(BIN)/python -m pytest -q -p no:cacheprovider --durations=10

## The quick tests only (no slow end-to-end or fault tests).
test-quick: $(STAMP)
	@$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow"

## libfaketime (Debian's faketime) for test-dates.
faketime:
	@if command -v faketime >/dev/null 2>&1; then :; else \
		echo "installing Debian's faketime for the dated test runs (apt-get) …"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq faketime >/dev/null \
			|| { echo "could not install faketime; make test-dates cannot run"; exit 1; }; \
	fi

## The quick tests of sla, notify, scoring, dispatch and the working-day calendar with the
## machine's clock moved (libfaketime, offsets from the real now: tests/dates.py) to 10 Feb
## of the first year chinese-calendar does not cover and to 31 Dec 23:30 Beijing this year.
DATED_TESTS := sla notify scoring dispatch shared/tests/test_workdays.py tests/test_dates.py \
               tests/test_callback_due.py tests/test_order_deadlines.py
test-dates: $(STAMP) faketime
	@$(BIN)/python -m tests.dates -- -q -p no:cacheprovider -m "not slow" $(DATED_TESTS)

## Benchmarks: baselines and service figures, written to BENCHMARKS.md.
bench: $(STAMP)
	@$(BIN)/python -m bench

## Regenerate the committed JSON Schema and AsyncAPI document of the event contract.
schema: $(STAMP)
	@$(BIN)/python -m shared.schema
	@$(BIN)/python -m shared.asyncapi

clean:
	rm -rf $(VENV) .run test-artifacts
