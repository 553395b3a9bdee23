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
# uplink tests) and SIPp (GB/T 28181 peer) for tests; a CJK font for the Chinese captions burned into
# alarm snapshots (gateway/i18n/caption.py; fonts-noto-cjk is found too).
SYSTEM_PKGS := python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
	gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools postgresql \
	mosquitto sip-tester fonts-wqy-zenhei
# Only the tests need these: Chromium for the console's end-to-end tests (driven by Playwright).
TEST_PKGS := chromium

# The web console (Vue + Vite) in gateway/web, built to gateway/web/dist which the gateway serves.
WEB := gateway/web
WEB_SRC := $(shell find $(WEB)/src $(WEB)/public -type f 2>/dev/null) \
	$(wildcard $(WEB)/index.html $(WEB)/vite.config.* $(WEB)/tsconfig*.json $(WEB)/env.d.ts)

.PHONY: demo test lint system-deps test-system-deps venv console bench clean

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

# $(call install_debs,PACKAGES): apt-get install those not installed yet.
define install_debs
	@missing=""; for p in $(1); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

system-deps:
	$(call install_debs,$(SYSTEM_PKGS))

test-system-deps: system-deps
	$(call install_debs,$(TEST_PKGS))

# npm ci only when package*.json changed (the stamp lives inside node_modules, which npm ci replaces);
# the build only when a source changed. Node.js 20.19+ (Vite's minimum) must be on PATH.
$(WEB)/node_modules/.vigil-installed: $(wildcard $(WEB)/package.json $(WEB)/package-lock.json)
	@command -v npm >/dev/null || { echo "the web console needs Node.js 20.19 or newer with npm on PATH" \
		"(https://nodejs.org or the NodeSource Debian packages); Debian 12's nodejs 18 is too old" >&2; exit 1; }
	cd $(WEB) && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; \
		else npm install --no-audit --no-fund; fi
	touch $@

$(WEB)/dist/index.html: $(WEB)/node_modules/.vigil-installed $(WEB_SRC)
	cd $(WEB) && npm run build
	touch $@

console: $(WEB)/dist/index.html

demo: system-deps venv console
	$(VENV)/bin/vigil --config config/demo.yaml demo

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy adapters analyzers uplink gateway
	$(VENV)/bin/lint-imports

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
# VIGIL_REQUIRE_CONSOLE: the console's end-to-end tests fail (never skip) when the build is missing.
test: test-system-deps venv $(VENV)/.train-installed console lint
	@VIGIL_REQUIRE_CONSOLE=1 $(VENV)/bin/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

bench: test-system-deps venv console
	$(VENV)/bin/python tests/benchmarks/bench_slice.py
	$(VENV)/bin/python tests/benchmarks/bench_analyzers.py
	$(VENV)/bin/python tests/benchmarks/bench_decode.py
	$(VENV)/bin/python tests/benchmarks/bench_uplink.py
	$(VENV)/bin/python tests/benchmarks/bench_console.py
	$(VENV)/bin/python tests/benchmarks/bench_console_pages.py

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache .mypy_cache .ruff_cache *.egg-info \
		$(WEB)/node_modules $(WEB)/dist
