# Two commands on a fresh clone: `make run` and `make test`.
# PyTorch: where no torch is importable we install the CPU build pinned below
# (on the reference CPU machines it is a local wheel). GPU users install their own
# CUDA build first; pyproject only asks for a range, so it is kept.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.nppac-installed

.PHONY: run test lint install clean mutate

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/nppac quickstart

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m mypy

test: lint
	$(PY) -m pytest -q

# Mutation testing of the losses (docs/mutation.md); long, and not part of `make test` or CI.
mutate: $(STAMP)
	$(PY) -c "import mutmut" 2>/dev/null || $(PY) -m pip install -q -e ".[test,mutation]"
	rm -rf mutants
	nice $(VENV)/bin/mutmut run
	$(VENV)/bin/mutmut results

clean:
	rm -rf $(VENV) runs build src/*.egg-info mutants
