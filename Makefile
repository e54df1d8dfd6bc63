# Two commands do all the set-up on a fresh machine (only python3 and make needed):
#   make demo   - start the reference server, submit a job, show progress, print the result
#   make test   - lint, type-check and run the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test venv lint bench schemathesis clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade 'pip>=25.1'
	$(PY) -m pip install --quiet -e '.[server,cli,testing]' --group dev
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) examples/demo.py

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: lint
	$(PY) -m pytest -q

bench: venv
	$(PY) -m benchmarks.detection_lag
	$(PY) -m benchmarks.overhead
	$(PY) -m benchmarks.fanout
	$(PY) -m benchmarks.sse_fanout
	$(PY) -m benchmarks.slow_clients
	$(PY) -m benchmarks.scale_out

# The long Schemathesis run against the published OpenAPI document (the suite runs a quick one):
# every operation, positive and negative, 8 server configurations; prints a summary of each.
SCHEMATHESIS_EXAMPLES ?= 150
schemathesis: venv
	ASYNCREPLY_SCHEMATHESIS_EXAMPLES=$(SCHEMATHESIS_EXAMPLES) $(PY) -m pytest -q -s --timeout 0 \
		tests/server/test_openapi.py -k schemathesis

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
