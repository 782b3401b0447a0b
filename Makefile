# Two entry points: `make demo` and `make test`. Both create .venv and install
# everything (Debian packages too, when run as root) first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.ffcvx-installed
DATA := data
# The shared data (photos, golden files): FFCVX_SHARED, which the tests read too
# (ffcvx.testing.shared_dir), else ../shared beside the checkout.
# A CI clone made in a temporary folder from a developer's checkout has no
# ../shared of its own: it uses the one beside that checkout (git's origin,
# when origin is a local path).
ORIGIN := $(shell git remote get-url origin 2>/dev/null)
SHARED ?= $(or $(FFCVX_SHARED),$(firstword $(wildcard $(abspath ../shared) \
          $(if $(ORIGIN),$(abspath $(ORIGIN)/../shared)))),$(abspath ../shared))
export FFCVX_SHARED := $(SHARED)
BACKENDS := $(wildcard backends/*)
EXT := ffcvx/_ext
# what cythonize writes next to each .pyx (untracked; `make clean` removes it)
EXT_GENERATED := $(patsubst %.pyx,%.c,$(wildcard $(EXT)/*.pyx)) $(wildcard $(EXT)/*_api.h)
# hand-written C compiled into the extensions (setup.py: EXTRA_SOURCES)
EXT_C := $(filter-out $(EXT_GENERATED),$(wildcard $(EXT)/*.c $(EXT)/*.h))
SOURCES := requirements.txt setup.py setup.cfg pyproject.toml $(wildcard $(EXT)/*.pyx $(EXT)/*.pxd) $(EXT_C) \
           $(foreach b,$(BACKENDS),$(wildcard $(b)/pyproject.toml $(b)/setup.py $(b)/*/*.pyx $(b)/*/*.pxd $(b)/*/*.c $(b)/*/*.h))

.PHONY: setup build demo test fuzz soak writer-faults bench clean

setup: $(STAMP)

$(STAMP): $(SOURCES)
	bash scripts/install-system-packages.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -r requirements.txt
	$(MAKE) build
	touch $(STAMP)

# Compile the Cython core and every backend in place (editable installs).
build:
	$(PIP) install -q --disable-pip-version-check --no-build-isolation --no-deps -e . $(foreach b,$(BACKENDS),-e $(b))

$(DATA)/fashion-mnist/test.beton: $(STAMP)
	$(VENV)/bin/ffcvx convert fashion-mnist $(DATA)/fashion-mnist

$(DATA)/photos.beton: $(STAMP)
	$(VENV)/bin/ffcvx convert imagefolder $(SHARED)/data/photos $@ --write-mode jpg --jpeg-quality 90

demo: $(DATA)/fashion-mnist/test.beton $(DATA)/photos.beton
	$(VENV)/bin/ffcvx info $(DATA)/photos.beton
	$(VENV)/bin/ffcvx doctor $(DATA)/photos.beton --flip --brief
	$(PY) examples/photos_throughput.py $(DATA)/photos.beton
	$(PY) examples/train_fashion_mnist.py $(DATA)/fashion-mnist

# One worker per core, whole modules per worker (their fixtures build .beton files once);
# the 30 slowest tests are listed at the end, to keep CI time in view.
test: $(STAMP)
	$(PY) -m pytest -n auto --dist loadfile --durations=30

# The reader fuzzer at length (tests/faults/test_fuzz_reader.py): 10,000 Hypothesis examples,
# a seeded sweep of 10,000 mutants that prints its figures, a Loader decode every 50 opened.
fuzz: $(STAMP)
	FFCVX_FUZZ_EXAMPLES=10000 FFCVX_FUZZ_DECODE_EXAMPLES=40 FFCVX_FUZZ_MUTANTS=10000 \
	FFCVX_FUZZ_DECODE_EVERY=50 $(PY) -m pytest -s -p no:cacheprovider tests/faults/test_fuzz_reader.py

# The soak suite at length (tests/strategies/test_soak.py): per strategy (os, process, shared, redis)
# 1,000 abandoned iterators, 1,000 abandoned Loaders and 1,000 epochs; and
# (tests/strategies/test_soak_layers.py) per Numba threading layer (tbb, omp, workqueue), 100 epochs
# of 204 batches with a busy-loop process per core competing; prints its figures.
soak: $(STAMP)
	FFCVX_SOAK=long $(PY) -m pytest -s -p no:cacheprovider tests/strategies/test_soak.py tests/strategies/test_soak_layers.py

# The writer's faults (tests/faults/test_writer_faults.py) with 100 random-time SIGKILLs of a
# writing process; prints how often the target was the old file, the new one, or partial (0).
writer-faults: $(STAMP)
	FFCVX_WRITER_KILLS=100 $(PY) -m pytest -s -p no:cacheprovider tests/faults/test_writer_faults.py

bench: $(STAMP)
	$(PY) -m pytest benchmarks --benchmark-only

clean:
	rm -rf $(VENV) $(DATA) build *.egg-info $(EXT)/*.so $(EXT_GENERATED)
