# imgpipe: `make run` (demo on embedded defaults) and `make test` (whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-faults lint fmt clean kafka-up kafka-down setup

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

# The fault scenarios (tests/faults) are not part of `make test` yet: one of them
# (SIGTERM hand-over) still fails now and then; see docs/scaling.md.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -m "not faults"

test-faults: $(STAMP)
	$(BIN)/pytest -m faults tests/faults

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
