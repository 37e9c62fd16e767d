# `make run`: set up and start Cairn on the embedded default. `make test`: set up and run every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export CAIRN_HOME ?= $(CURDIR)/.cairn
export CAIRN_PRINCIPAL ?= admin

.PHONY: run test install postgres redis java bench feast clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/cairn demo
	$(BIN)/cairn serve

postgres:
	bash tests/pg.sh

redis:
	bash tests/redis.sh

# Spark needs a JRE (17 or newer); install Debian's when there is none.
java:
	@command -v java >/dev/null || { SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq default-jre-headless >/dev/null; }

test: $(STAMP) postgres redis java
	CAIRN_TEST_PG_URL=$$(bash tests/pg.sh --url) CAIRN_TEST_REDIS_URL=$$(bash tests/redis.sh --url) $(BIN)/python -m pytest -n 2 -q

# Feast pins starlette>=1, which Cairn's server (starlette<1) excludes: benchmarks/feature_store.py
# runs it from its own virtualenv, .venv-feast.
feast:
	test -x .venv-feast/bin/python || $(PY) -m venv .venv-feast
	.venv-feast/bin/pip install --quiet 'feast[duckdb]==0.67.0'

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	for b in benchmarks/*.py; do $(BIN)/python $$b --quick; done

clean:
	rm -rf $(VENV) .cairn .pytest_cache
