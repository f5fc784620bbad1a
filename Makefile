# The two commands of the README:
#   make demo   set up .venv, then run the whole DAG on the built-in synthetic data (CPU, minutes)
#   make test   set up .venv, then run the test suite (unit, integration, local Slurm)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat envs/requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup demo test dry-run report clean-demo

setup: $(STAMP)

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r envs/requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

demo: setup
	$(BIN)/snakemake --profile profiles/local --configfile config/demo.yaml
	$(BIN)/snakemake --profile profiles/local --configfile config/demo.yaml --report results/demo/report.html

test: setup
	$(BIN)/python -m pytest tests

dry-run: setup
	$(BIN)/snakemake -n --configfile config/config.yaml

clean-demo:
	rm -rf results/demo work/demo demo_data
