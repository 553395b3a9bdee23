# The two commands: `make demo` and `make test`. Both set up everything they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
# Where the licence-clean model pack and the sample video live (never copied into the repo).
VIGIL_MODELS_DIR ?= $(abspath ../shared/models)
VIGIL_MEDIA_DIR ?= $(abspath ../shared/media)
VIGIL_DATA_DIR ?= $(abspath ../shared/data)
export VIGIL_MODELS_DIR VIGIL_MEDIA_DIR VIGIL_DATA_DIR

# Debian packages: the GStreamer RTSP server behind the sample camera; PostgreSQL, Mosquitto (MQTT
# uplink tests) and SIPp (GB/T 28181 peer) for tests.
SYSTEM_PKGS := python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
	gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools postgresql \
	mosquitto sip-tester

.PHONY: demo test lint system-deps venv bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "vigil needs Python 3.11 or newer as $(PYTHON); run: make PYTHON=python3.11 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

# The tests also train a tiny model end to end, so they need the `train` extra (PyTorch CPU).
$(VENV)/.train-installed: $(VENV)/.installed
	$(VENV)/bin/pip install -q -e ".[dev,train]"
	touch $@

system-deps:
	@missing=""; for p in $(SYSTEM_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

demo: system-deps venv
	$(VENV)/bin/vigil --config config/demo.yaml demo

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy adapters analyzers uplink gateway

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
test: system-deps venv $(VENV)/.train-installed lint
	@$(VENV)/bin/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

bench: system-deps venv
	$(VENV)/bin/python tests/benchmarks/bench_slice.py
	$(VENV)/bin/python tests/benchmarks/bench_analyzers.py
	$(VENV)/bin/python tests/benchmarks/bench_decode.py
	$(VENV)/bin/python tests/benchmarks/bench_uplink.py

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache .mypy_cache .ruff_cache *.egg-info
