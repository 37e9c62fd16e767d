# `make run`: set up and start Cairn on the embedded default. `make test`: set up and run every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WEB := api/web
GRAPHIQL := api/static/graphiql/graphiql.js
HOST ?= 127.0.0.1
PORT ?= 8080
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
export CAIRN_HOME ?= $(CURDIR)/.cairn

.PHONY: run test install web postgres redis java chromium bench feast mlflow-bench clean

# The first install downloads a few hundred MB (pyspark, deltalake, duckdb): pip shows its progress bars.
$(STAMP): pyproject.toml
	@echo "installing Cairn and its dependencies into $(VENV) (the first time takes a few minutes)"
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar on -e '.[test]'
	touch $(STAMP)

# The GraphiQL page: pinned npm packages (package-lock.json) bundled into the package's static folder.
$(GRAPHIQL): $(WEB)/package.json $(WEB)/package-lock.json $(WEB)/main.js $(WEB)/build.mjs
	@command -v npm >/dev/null || { echo "installing Node.js and npm from Debian's packages"; $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; }
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

web: $(GRAPHIQL)

install: $(STAMP) web

run: $(STAMP) web
	$(BIN)/cairn --as admin demo
	$(BIN)/cairn --as admin churn demo --host $(HOST) --port $(PORT)
	$(BIN)/cairn --as admin serve --host $(HOST) --port $(PORT)

postgres:
	bash tests/pg.sh

redis:
	bash tests/redis.sh

# Spark needs a JRE (17 or newer); install Debian's when there is none.
java:
	@command -v java >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq default-jre-headless >/dev/null; }

# The GraphiQL page test drives Debian's headless Chromium; install it when there is none.
chromium:
	@test -x /usr/bin/chromium || { echo "installing Chromium from Debian's packages"; $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# Starts PostgreSQL when it does not run, and stops it afterwards only then (one already running is left alone).
test: $(STAMP) web java chromium
	$(BIN)/ruff check .
	$(BIN)/mypy catalog lineage api pipelines
	@if bash tests/redis.sh --running 2>/dev/null; then redis_started=0; else bash tests/redis.sh && redis_started=1; fi; \
	if bash tests/pg.sh --running; then started=0; else bash tests/pg.sh && started=1; fi; \
	CAIRN_TEST_PG_URL=$$(bash tests/pg.sh --url) CAIRN_TEST_REDIS_URL=$$(bash tests/redis.sh --url) $(BIN)/python -m pytest -n 2 -q; rc=$$?; \
	if [ $$redis_started = 1 ]; then bash tests/redis.sh --stop; fi; \
	if [ $$started = 1 ]; then bash tests/pg.sh --stop; \
	else echo "PostgreSQL was already running on 127.0.0.1:$${CAIRN_PG_PORT:-54329}; left running (stop it with: bash tests/pg.sh --stop)"; fi; \
	exit $$rc

# Feast pins starlette>=1, which Cairn's server (starlette<1) excludes: benchmarks/feature_store.py
# runs it from its own virtualenv, .venv-feast.
feast:
	test -x .venv-feast/bin/python || $(PY) -m venv .venv-feast
	.venv-feast/bin/pip install --quiet 'feast[duckdb]==0.67.0'

# `mlflow models serve` needs full MLflow (its scoring server); the main venv keeps mlflow-skinny, so
# benchmarks/serving.py runs it from its own virtualenv, .venv-mlflow (same MLflow major as the main venv).
mlflow-bench:
	test -x .venv-mlflow/bin/python || $(PY) -m venv .venv-mlflow
	.venv-mlflow/bin/pip install --quiet 'mlflow==3.17.2' 'xgboost==3.2.0'

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/run_all.py --quick

clean:
	rm -rf $(VENV) .cairn .pytest_cache $(WEB)/node_modules api/static/graphiql tests/artifacts
