# make bench: set up .venv and run the default benchmark (quick profile) -> results/runs/<run>/
# make test:  set up .venv and the isolated framework environments, and run the test suite
# make envs:  create or repair the isolated environments (MXNet, Theano) alone
# make setup-gpu: on a machine with an NVIDIA GPU, the CUDA builds (requirements-gpu.txt) into .venv
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: setup setup-gpu envs bench test clean

setup: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

setup-gpu: $(STAMP)
	$(VENV)/bin/python -m pip uninstall --quiet --yes tensorflow-cpu
	$(VENV)/bin/python -m pip install --quiet -r requirements-gpu.txt

envs: $(STAMP)
	$(VENV)/bin/python bench.py env setup

bench: $(STAMP)
	$(VENV)/bin/python bench.py run $(ARGS)

test: envs
	$(VENV)/bin/python -m pytest $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
