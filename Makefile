# Two set-up commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: run test bench lint install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/rtvc voices
	$(VENV)/bin/rtvc convert ../shared/speech/vctk/p226_003.wav /tmp/rtvc-demo.wav --voice feminine

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/pipeline.py

lint: $(STAMP)
	$(VENV)/bin/ruff check rtvc tests benchmarks clients

clean:
	rm -rf $(VENV) build *.egg-info
