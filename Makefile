# make bench: set up .venv and run the default benchmark (quick profile) -> results/runs/<run>/
# make test:  set up .venv and run the test suite
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: setup bench test clean

setup: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

bench: $(STAMP)
	$(VENV)/bin/python bench.py run $(ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
