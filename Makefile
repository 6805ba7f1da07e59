# Two commands on a bare machine: `make demo` and `make test`. Both create .venv from the lock file.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test test-server-store lint bench bench-query lock clean browser-deps

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . 2>/dev/null \
	  || $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# Front-end libraries (the charting library) come from npm into the folder the server serves them from.
WEB := src/edupulse/web
$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json $(WEB)/package.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix $(WEB) --no-audit --no-fund --ignore-scripts --loglevel=error; \
	else echo "npm not found: the web UI will show tables without charts (install Node.js and npm, then make install)"; fi

install: $(STAMP) $(WEB)/node_modules/.package-lock.json

demo: install
	$(BIN)/edupulse demo

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: lint browser-deps
	$(BIN)/pytest

# The analysis conformance suite through the ClickHouse server store, over HTTP, against the test server
# (tests/ch_server.py: ClickHouse's HTTP interface executed by chDB); EDUPULSE_TEST_CLICKHOUSE_URL=... names
# a real ClickHouse server instead.
test-server-store: install
	EDUPULSE_TEST_CLICKHOUSE=server $(BIN)/pytest tests/queries tests/store -q

# The official browser SDKs the collection tests run in Chromium, pinned in tests/browser/package-lock.json.
# Without npm the browser tests skip and say why. No browser is downloaded: Chromium is Debian's.
BROWSER_STAMP := tests/browser/node_modules/.installed-$(shell cat tests/browser/package-lock.json | cksum | cut -d' ' -f1)
browser-deps: $(BROWSER_STAMP)

$(BROWSER_STAMP): tests/browser/package.json tests/browser/package-lock.json
	@if command -v npm >/dev/null; then \
	  cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error \
	  && rm -f node_modules/.installed-* && touch $(notdir $(BROWSER_STAMP)) && mv $(notdir $(BROWSER_STAMP)) node_modules/; \
	else echo "npm not found: the browser tests will be skipped"; fi

bench: install
	$(BIN)/python bench/ingest_http.py
	$(BIN)/python bench/import_parquet.py
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/ingest_compat.py
	$(BIN)/python bench/auth.py

# Analysis on 10 and 100 million synthetic events (made once under bench/out/, about 15 minutes the first time).
bench-query: install
	$(BIN)/python bench/query.py
	$(BIN)/python bench/per_unit.py
	$(BIN)/python bench/paths_attribution.py
	$(BIN)/python bench/people.py
	$(BIN)/python bench/experiments.py

# Regenerate the lock file after changing dependencies in pyproject.toml.
lock:
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra postgres --extra clickhouse --extra ml --extra excel --extra dev --generate-hashes -q \
	  --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) edupulse-data $(WEB)/node_modules
