# make bench: set up .venv (the frameworks and the dlbench command) and run the default benchmark
#             (quick profile) -> results/runs/<run>/
# make test:  also the test, Ray and MLflow extras and the isolated framework environments; lint, run the tests
# make envs:  create or repair the isolated environments (MXNet, Theano) alone
# make setup-gpu: on a machine with an NVIDIA GPU, the CUDA builds (requirements-gpu.txt) into .venv
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
ARGS ?=
TEST_WORKERS ?= 2

.PHONY: setup setup-gpu envs bench test clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt
	$(VENV)/bin/python -m pip install --quiet --no-deps --editable .
	touch $(STAMP)

# The extras in one resolve with the main pins, so none of them moves a framework's dependency.
$(TEST_STAMP): $(STAMP) requirements-dev.txt requirements-ray.txt requirements-mlflow.txt
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt \
		-r requirements-ray.txt -r requirements-mlflow.txt
	touch $(TEST_STAMP)

setup-gpu: $(STAMP)
	$(VENV)/bin/python -m pip uninstall --quiet --yes tensorflow-cpu
	$(VENV)/bin/python -m pip install --quiet -r requirements-gpu.txt

envs: $(STAMP)
	$(VENV)/bin/python bench.py env setup

bench: $(STAMP)
	$(VENV)/bin/python bench.py run $(ARGS)

# Two pytest workers (a file each at a time), then the tests marked `alone` (they compare times or
# wait against a clock) one at a time. Exit code 5 is "nothing of this part selected" (ARGS).
test: envs $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not alone" $(ARGS) || [ $$? -eq 5 ]
	$(VENV)/bin/python -m pytest -p no:xdist -m alone $(ARGS) || [ $$? -eq 5 ]

clean:
	rm -rf $(VENV) .pytest_cache
