# Everything a fresh machine needs, in order. `make test` and `make demo` do all of
# their own set-up: virtual env, installs, Docker engine, sandbox image.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU wheel that lies on the reference machine's disk. Elsewhere, if this exact
# version is not available, plain `torch` is installed instead.
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: setup venv docker image test test-text test-fast release-check demo ablate-quick lint \
	bench clean

setup: venv docker image

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check "$(TORCH_SPEC)" || \
		$(BIN)/pip install -q --disable-pip-version-check torch
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev,ray]'
	touch $(STAMP)

docker:
	bash scripts/ensure_docker.sh

image: venv docker
	$(BIN)/collapse-bench sandbox build --if-missing

# The text tests (pytest -m text) run as in test-text, on every Python pyproject
# declares, in the background while setup runs (scripts/test_all.sh); the rest of the
# suite, slow tests included, then runs on the venv's Python. The full-recipe rebuild
# of builtin:tiny is not part of it: see release-check.
test:
	VENV="$(VENV)" bash scripts/test_all.sh $(TEXT_PYTHONS)

# Model-text handling on Python 3.11, 3.12, 3.13 (the classifiers in pyproject.toml),
# each in a light venv without torch (.cache/text-venvs). A missing interpreter is
# skipped locally and fails in CI (CI=true or REQUIRE_DOCKER=1).
test-text:
	bash scripts/test_text_pythons.sh $(TEXT_PYTHONS)

test-fast: venv
	$(BIN)/pytest -q -m "not slow and not docker"

# Before a release (and after any change to the recipe, torch or transformers): rebuild
# builtin:tiny from its recipe (harness.model.tiny.TinySpec) and check that the build
# still meets the held-out targets in the Docker sandbox. `make test` only checks the
# shipped copy (its sha256 sums and its score), which is what every run loads.
release-check: setup
	REQUIRE_DOCKER=1 $(BIN)/pytest -q -s -m release

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
	rm -rf $(VENV) .pytest_cache .ruff_cache .cache/text-venvs
