# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed

.PHONY: install demo lab screenshots test test-fast lint clean

install: $(STAMP)

# uv installs from its cache by linking: both venvs take ~10-30 s, where pip takes minutes
# (it unpacks every wheel again). uv itself comes from PyPI through pip, pinned here.
UV_VERSION ?= 0.13.9
UV := $(BIN)/uv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(BIN)/python -m pip install --quiet 'uv==$(UV_VERSION)'
	$(UV) pip install --quiet --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

## Run the main job on the bundled demo (emulators + moto server, no credentials).
demo: $(STAMP)
	$(BIN)/python -m emulators.demo run

## The demo's reports as offline HTML and PNG screenshots (headless Chromium: Debian's
## chromium package), and Jupyter Lab with the sync's report open: screenshots/.
screenshots: $(STAMP)
	$(BIN)/python -m emulators.screenshots

## Jupyter Lab with the demo stand-ins running (notebooks run cell by cell as under papermill),
## on lab/: a git-ignored scratch copy of notebooks/, seeded from it.
lab: $(STAMP)
	$(BIN)/python -m emulators.demo lab

## The whole test suite: lint (ruff check and format; lint-imports: the dependency rule, [tool.importlinter] in
## pyproject.toml), the tests in their layers (tests/unit, tests/emulators, tests/e2e), every
## notebook via nbval, and the Airflow DAGs with real Airflow (tests_airflow, in .venv-airflow).
## Two workers; --dist loadfile keeps each file (and each notebook's cells) on one worker.
## tests_airflow runs beside them (mostly Airflow starting up, waiting more than computing:
## 6.5 min in a row, 5 together on 2 CPUs); its output is kept and shown after theirs, and
## the target fails when either fails.
## Bytecode: the venvs are installed without .pyc files (uv does not compile) and an
## environment may set PYTHONDONTWRITEBYTECODE; then every interpreter the tests start (each
## kernel, papermill, knack-nb and airflow process: hundreds) compiles everything it imports
## from source again (~4.5 s for a kernel's imports, ~5 s for airflow's). Unset here, the
## first import of a module writes its .pyc and the rest read it.
test: $(STAMP) $(AIRFLOW_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check --quiet .
	$(BIN)/lint-imports --no-cache
	@unset PYTHONDONTWRITEBYTECODE; log=$$(mktemp); \
	$(AIRFLOW_VENV)/bin/pytest -p no:cacheprovider tests_airflow > $$log 2>&1 & airflow=$$!; \
	$(BIN)/pytest -n 2 --dist loadfile tests notebooks --nbval-lax; main=$$?; \
	wait $$airflow; af=$$?; \
	echo "--- tests_airflow (ran beside the tests above) ---"; cat $$log; rm -f $$log; \
	echo "tests: exit $$main; tests_airflow: exit $$af"; \
	test $$main -eq 0 && test $$af -eq 0

## The unit layer alone: pure tests, no servers, no kernels (a few seconds).
test-fast: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff format --check .

## Airflow 3 in a virtualenv of its own (it pins pydantic, SQLAlchemy, ...), with this project
## installed so the notebooks' kernel imports lib. The '*' .gitignore keeps the venv out of
## git and of `ruff check .` (ruff respects .gitignore; it skips only `.venv` by name).
.PHONY: test-airflow

$(AIRFLOW_STAMP): pyproject.toml requirements-airflow.txt $(STAMP)
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	echo '*' > $(AIRFLOW_VENV)/.gitignore
	$(UV) pip install --quiet --python $(AIRFLOW_VENV)/bin/python \
		-r requirements-airflow.txt -e '.[demo]'
	touch $(AIRFLOW_STAMP)

## The DAGs with real Airflow: DagBag checks, then `airflow dags test` of the demo DAG.
test-airflow: $(AIRFLOW_STAMP)
	$(AIRFLOW_VENV)/bin/pytest -p no:cacheprovider tests_airflow

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) demo-reports reports .pytest_cache .ruff_cache \
		.import_linter_cache
