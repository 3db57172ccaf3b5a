# Smart Tuner — every target makes/refreshes .venv first, then runs.
#   make demo   build the built-in corpus (cached), its features (cached), run the quickstart sweep
#   make test   the whole test suite (CI runs this through .ci/run)
#   make bench  the fault-injected sweep benchmark (surrogate trials, scenario family) -> benchmarks/results/, BENCHMARKS.md

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip -q --disable-pip-version-check
# torch goes in first, pinned, so nothing later pulls a different (multi-GB CUDA) build.
# On a GPU machine keep your own torch: make TORCH_SPEC= demo
TORCH_SPEC ?= torch==2.13.0
CORPUS ?= data/corpus

.PHONY: venv demo test bench corpus clean
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if [ -n "$(TORCH_SPEC)" ]; then $(PIP) install "$(TORCH_SPEC)"; fi
	$(PIP) install -e ".[dev]"
	touch $@

corpus: venv
	$(VENV)/bin/smart-tuner corpus $(CORPUS)

demo: corpus
	$(VENV)/bin/smart-tuner tune --search-space search_spaces/quickstart.yaml

test: venv
	$(VENV)/bin/pytest -q --timeout=600

BENCH_SCENARIOS ?= benchmarks/scenarios/default.yaml benchmarks/scenarios/midtrain.yaml \
	benchmarks/scenarios/rate10.yaml benchmarks/scenarios/rate50.yaml
bench: venv
	$(PY) -m benchmarks.sweep --scenario $(BENCH_SCENARIOS)

clean:
	rm -rf $(VENV) runs
