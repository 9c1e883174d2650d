# Two commands on a fresh clone: `make run` and `make test`.
# `make run` installs nppac and what the quickstart needs, nothing more; `make test` (and `lint`) add the
# test extra. pip runs without -q: its lines (and bars, on a terminal) show what is being installed.
# PyTorch: where no torch is importable we install the CPU build pinned below
# (on the reference CPU machines it is a local wheel). GPU users install their own
# CUDA build first; pyproject only asks for a range, so it is kept.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.nppac-installed
TEST_STAMP := $(VENV)/.nppac-test-installed

.PHONY: run test lint install clean mutate wheel wheel-check

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

# Sizes and counts measured in the reference virtual environment (installed files of each distribution).
$(STAMP): $(PY) pyproject.toml
	@echo "make: installing nppac and the 55 distributions it runs on into $(VENV) (about 1.4 GB, most of it"
	@echo "      torch's CPU build; a few minutes on a fresh clone, less where pip has them cached)"
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH_SPEC)"
	$(PY) -m pip install -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP) pyproject.toml
	@echo "make: installing the test extra into $(VENV): pytest, ruff, mypy, Ray, gpytorch, rliable, h5py, minari"
	@echo "      (45 more distributions, about 0.6 GB, a minute or two)"
	$(PY) -m pip install -e ".[test]"
	touch $(TEST_STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/nppac quickstart

lint: $(TEST_STAMP)
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m mypy

# The tests run in PYTEST_WORKERS processes (one per core of the 2-core reference machine), each test
# file in one of them, so tests that share a file's fixtures or a local Ray stay together.
PYTEST_WORKERS ?= 2
test: lint
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

# Mutation testing of the losses (docs/mutation.md); long, and not part of `make test` or CI.
mutate: $(TEST_STAMP)
	$(PY) -c "import mutmut" 2>/dev/null || $(PY) -m pip install -e ".[test,mutation]"
	rm -rf mutants
	nice $(VENV)/bin/mutmut run
	$(VENV)/bin/mutmut results

# The wheel, with the bundled experts and demonstration sets (dist/nppac-VERSION-py3-none-any.whl).
wheel: $(STAMP)
	rm -rf dist build
	$(PY) -m pip wheel -q --no-deps --no-build-isolation -w dist .

# The wheel installed into a fresh virtual environment outside the checkout: `nppac tasks`, a bundled
# demonstration set and a 200-step run must work from it alone, and the quickstart's initialized actor be in it.
WHEEL_CHECK_DIR ?= /tmp/nppac-wheel-check
wheel-check: wheel
	rm -rf $(WHEEL_CHECK_DIR) && $(PYTHON) -m venv $(WHEEL_CHECK_DIR)/venv
	$(WHEEL_CHECK_DIR)/venv/bin/python -m pip install --upgrade pip
	$(WHEEL_CHECK_DIR)/venv/bin/python -m pip install "$(TORCH_SPEC)"
	$(WHEEL_CHECK_DIR)/venv/bin/python -m pip install dist/nppac-*.whl
	cd $(WHEEL_CHECK_DIR) && venv/bin/nppac tasks > /dev/null
	cd $(WHEEL_CHECK_DIR) && venv/bin/nppac data inspect "$$(venv/bin/python -c 'from nppac.tasks import get_task; print(get_task("hopper").bundled_demos)')" --task hopper > /dev/null
	cd $(WHEEL_CHECK_DIR) && venv/bin/nppac train --task hopper --algo sac --steps 200 --quiet --out run \
		--set steps_per_epoch=100 --set warmup_steps=100 --set updates_per_epoch=10 --set eval_episodes=1 \
		--set horizon=50 --set batch_size=32
	test -f $(WHEEL_CHECK_DIR)/run/actor.safetensors
	cd $(WHEEL_CHECK_DIR) && test -f "$$(venv/bin/python -c 'from nppac.training.quickstart import asset_dir; print(asset_dir() / "halfcheetah.safetensors")')"
	@echo "wheel-check: dist/$$(ls dist) installs and trains from $(WHEEL_CHECK_DIR)"

clean:
	rm -rf $(VENV) runs build dist src/*.egg-info mutants
