# The two commands of the README:
#   make demo   set up .venv, then run the whole DAG on the built-in synthetic data (CPU, minutes)
#   make test   set up .venv, then run the test suite (unit, integration, local Slurm)
# Cluster set-up: make slurm-profile   lets `snakemake --profile slurm` find profiles/slurm (a per-user link)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat envs/requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup demo test dry-run report clean-demo slurm-profile

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

# Snakemake looks a bare profile name up in the working directory, then its per-user and site config directories
# (snakemake.cli.get_profile_dir). Link profiles/slurm there, under the directory Snakemake itself computes
# ($$XDG_CONFIG_HOME/snakemake on Linux); never replace a different profile of that name.
slurm-profile: setup
	@dir="$$($(BIN)/python -c 'from snakemake.common import get_appdirs; print(get_appdirs().user_config_dir)')"; \
	src="$(CURDIR)/profiles/slurm"; dest="$$dir/slurm"; \
	if [ -e "$$dest" -o -L "$$dest" ] && [ "$$(readlink -f "$$dest")" != "$$(readlink -f "$$src")" ]; then \
		echo "$$dest exists and is not a link to $$src: move it away, then run make slurm-profile again" >&2; \
		exit 1; \
	fi; \
	mkdir -p "$$dir" && ln -sfn "$$src" "$$dest" && echo "$$dest -> $$src: snakemake --profile slurm uses it"

clean-demo:
	rm -rf results/demo work/demo demo_data

# Paper-scale smoke (config/smoke.yaml): the whole paper DAG at paper shapes, random-weight stand-ins, synthetic
# raw data at the real raw resolutions, a few steps per job. CPU, hours on 2 cores; see docs/smoke.md.
.PHONY: smoke clean-smoke
smoke: setup
	$(BIN)/snakemake --profile profiles/local --configfile config/smoke.yaml
	$(BIN)/snakemake --profile profiles/local --configfile config/smoke.yaml --report results/smoke/report.html

clean-smoke:
	rm -rf results/smoke work/smoke smoke_data

# The first GPU hour (docs/gpu_check.md): one Markdown table + JSON of what this GPU measures beside the budget's
# projections, within GPU_CHECK_BUDGET_S seconds. On a CPU: make gpu-check GPU_CHECK_ARGS=--tiny (seconds, tiny shapes).
GPU_CHECK_OUT ?= results/gpu_check
GPU_CHECK_BUDGET_S ?= 480
GPU_CHECK_ARGS ?=
.PHONY: gpu-check
gpu-check: setup
	$(BIN)/python -m lead_hsr.gpu_check --out $(GPU_CHECK_OUT) --budget-s $(GPU_CHECK_BUDGET_S) $(GPU_CHECK_ARGS)
