# Two commands do all the set-up: `make run` (the default DVC pipeline) and `make test`.
VENV ?= .venv
PYTHON ?= python3
# The staged datasets beside the checkout, when there are some: the fetch stages copy from
# them instead of downloading. A LATENTE_MIRROR you set yourself is kept as it is.
STAGED_DATASETS := $(abspath ../shared/datasets)
ifeq ($(origin LATENTE_MIRROR),undefined)
ifneq ($(wildcard $(STAGED_DATASETS)/.),)
export LATENTE_MIRROR := $(STAGED_DATASETS)
endif
endif
export DVC_NO_ANALYTICS = 1
STAMP := $(VENV)/.installed

.PHONY: run test test-fast chromium bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --no-cache-dir -e '.[test]'
	touch $@

run: $(STAMP)
	. $(VENV)/bin/activate && dvc repro

# Debian's Chromium for the browser tests, installed only as root with apt-get and none there yet;
# otherwise those tests skip and say how to get one (or set LATENTE_CHROMIUM).
chromium:
	@if ! command -v chromium >/dev/null && [ -z "$$LATENTE_CHROMIUM" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi

test: $(STAMP) chromium
	. $(VENV)/bin/activate && python -m pytest -n 2 tests

# The quick loop: everything but the end-to-end runs marked slow.
test-fast: $(STAMP) chromium
	. $(VENV)/bin/activate && python -m pytest -n 2 -m "not slow" tests

# The speed benches (issue 15's figures), not the design studies bench.ecg_ablation and
# bench.mri_adapt, which train models to choose a design and are run by name. Every bench runs,
# even after one fails (bench.ecg needs a trained codec); the failures are named at the end.
BENCHES := machine startup ecg mri speech anomaly protein gpu
bench: $(STAMP)
	. $(VENV)/bin/activate && failed=""; for name in $(BENCHES); do \
	  python -m bench.$$name || failed="$$failed $$name"; done; \
	  if [ -n "$$failed" ]; then echo "benches that failed:$$failed" >&2; exit 1; fi
