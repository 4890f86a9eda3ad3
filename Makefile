# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch and torchvision must be a matching pair; these two install from local disk on the project's machines.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.omniclip-installed
# torchcodec (transformers' default video decoder; our second backend) loads FFmpeg's shared libraries at run time.
# Debian 12 ships FFmpeg 5.1 as these packages; installed with apt-get only when one is missing.
FFMPEG_LIBS ?= libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 libavdevice59 libavfilter8

.PHONY: test demo install clean ffmpeg-libs transformers-tests

install: $(STAMP)

# Runs as root here and in CI. Elsewhere it says what to install; torchcodec tests then skip and PyAV still works.
ffmpeg-libs:
	@missing=$$(for package in $(FFMPEG_LIBS); do \
		dpkg-query -W -f='$${Status}\n' $$package 2>/dev/null | grep -q '^install ok installed' || echo $$package; \
	done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
		echo "note: the torchcodec backend needs FFmpeg's shared libraries: apt-get install -y" $$missing; \
	fi

# Re-runs only when the project's dependencies change, so a second `make test` installs nothing.
$(STAMP): pyproject.toml
	$(MAKE) --no-print-directory ffmpeg-libs
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Transformers' own common model tests (run on OmniCLIP by tests/test_transformers_common.py) ship in the installed
# transformers version's sdist: pip fetches it once into .transformers-tests/ (git-ignored). Offline, it says so
# and those tests skip.
transformers-tests: $(STAMP)
	$(PY) -m tests.transformers_suite

# On every core (pytest-xdist): most tests wait on one single-threaded subprocess, so two workers on two cores ran
# the suite in 0.53x the time of one (563 s against 1060 s, one run each, `pytest -n 2` and `pytest`, 2026-12-06).
# TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= auto
test: $(STAMP) transformers-tests
	$(PY) -m pytest -n $(TEST_WORKERS)

demo: $(STAMP)
	$(PY) examples/demo.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache .transformers-tests
