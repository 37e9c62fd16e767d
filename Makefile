# `make run`: set up and start Cairn on the embedded default. `make test`: set up and run every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export CAIRN_HOME ?= $(CURDIR)/.cairn
export CAIRN_PRINCIPAL ?= admin

.PHONY: run test install postgres bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/cairn demo

postgres:
	bash tests/pg.sh

test: $(STAMP) postgres
	CAIRN_TEST_PG_URL=$$(bash tests/pg.sh --url) $(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b --quick; done

clean:
	rm -rf $(VENV) .cairn .pytest_cache
