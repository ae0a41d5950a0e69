# Two set-up commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: run test bench lint install browser audio clean

# constraints.txt pins every package (torch 2.13.0 is the CPU build on disk here; no torchaudio).
# torchfcpe only for the FCPE pitch weights its wheel ships: its declared deps (torchaudio ...) are never imported.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt -e '.[dev,mic]'
	$(PIP) install -q --no-deps torchfcpe==0.0.4
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the browser test of the page (no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium: the browser tests will be skipped"; }

run: $(STAMP)
	$(VENV)/bin/rtvc serve

# PortAudio on ALSA, plus a JACK dummy server as the clock for the mic-mode test's file-backed devices.
audio:
	@{ command -v jackd >/dev/null 2>&1 && ldconfig -p | grep -q libportaudio.so.2; } || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    libportaudio2 libasound2-plugins jackd2 >/dev/null) \
	  || echo "warning: could not install PortAudio/JACK: the mic mode tests will be skipped"; }

test: $(STAMP) browser audio
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/pipeline.py
	$(PY) benchmarks/quality.py
	$(PY) benchmarks/load.py
	$(PY) benchmarks/watermark.py
	$(PY) benchmarks/rvc.py

lint: $(STAMP)
	$(VENV)/bin/ruff check rtvc tests benchmarks clients

clean:
	rm -rf $(VENV) build *.egg-info
