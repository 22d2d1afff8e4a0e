# Everything a fresh machine needs, in order. `make test` and `make demo` do all of
# their own set-up: virtual env, installs, Docker engine, sandbox image.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU wheel that lies on the reference machine's disk. Elsewhere, if this exact
# version is not available, plain `torch` is installed instead.
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: setup venv docker image test test-fast demo ablate-quick lint bench clean

setup: venv docker image

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check "$(TORCH_SPEC)" || \
		$(BIN)/pip install -q --disable-pip-version-check torch
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

docker:
	bash scripts/ensure_docker.sh

image: venv docker
	$(BIN)/collapse-bench sandbox build --if-missing

test: setup
	$(BIN)/pytest -q

test-fast: venv
	$(BIN)/pytest -q -m "not slow and not docker"

demo: setup
	$(BIN)/collapse-bench run

ablate-quick: setup
	$(BIN)/collapse-bench ablate --quick

lint: venv
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python bench/sandbox_throughput.py
	$(BIN)/python bench/sampling_throughput.py
	$(BIN)/python bench/train_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
