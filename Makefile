# Two commands do all the set-up: `make run` (the default DVC pipeline) and `make test`.
VENV ?= .venv
PYTHON ?= python3
export LATENTE_MIRROR ?= $(abspath ../shared/datasets)
export DVC_NO_ANALYTICS = 1
STAMP := $(VENV)/.installed

.PHONY: run test bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

run: $(STAMP)
	. $(VENV)/bin/activate && dvc repro

test: $(STAMP)
	command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)
	. $(VENV)/bin/activate && python -m pytest -n 2 tests

bench: $(STAMP)
	. $(VENV)/bin/activate && for b in bench/[a-z]*.py; do python -m bench.$$(basename $$b .py) || exit 1; done
