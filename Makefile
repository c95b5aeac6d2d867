# imgpipe: `make run` (demo on embedded defaults) and `make test` (whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test check test-faults soak lint fmt clean kafka-up kafka-down setup browser
CHROMIUM ?= /usr/bin/chromium

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v java >/dev/null || { echo "Java 17+ is required (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required once to fetch Kafka (apt-get install maven)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/imgpipe demo

# The whole suite, fault scenarios (tests/faults, ~2.5 min) included.
# The dashboard test drives Debian's Chromium (Playwright never downloads a browser here).
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the dashboard test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "The dashboard test needs Chromium: sudo apt-get install chromium"; exit 1; fi; }

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/pytest --durations=25

# The inner loop: lint, unit and contract tests (no broker, no browser).
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest tests/unit tests/contract

test-faults: $(STAMP)
	$(BIN)/pytest -m faults tests/faults

# Not in CI: ten minutes at ~80% of capacity through a SIGKILL, a SIGTERM and a broker
# restart (docs/scaling.md#soak).
soak: $(STAMP)
	$(BIN)/imgpipe bench soak --minutes 10 --json var/soak.json

lint: $(STAMP)
	$(BIN)/ruff check .

fmt: $(STAMP)
	$(BIN)/ruff check --fix .

kafka-up: $(STAMP)
	$(BIN)/imgpipe kafka up

kafka-down: $(STAMP)
	$(BIN)/imgpipe kafka down

clean:
	rm -rf var .pytest_cache .ruff_cache
