# allypot: two commands do all the set-up on a fresh machine.
#   make run   - install, then fit the default joint model on the bundled data and print the
#                alliance-potential effect under joint, cut and plug-in inference
#   make test  - install, then run the test suite
# the first Python >= 3.12 that actually runs (a pyenv shim can exist without working)
PYTHON ?= $(shell for c in python3.12 python3.13 "env PYENV_VERSION=3.12.1 python3" python3; do \
	$$c -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null && { echo "$$c"; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= inference/configs/joint_default.toml

.PHONY: install run test data raw-manifest report replicate audit-report bench clean-runs

$(BIN)/allypot: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(BIN)/allypot

install: $(BIN)/allypot

run: install
	$(BIN)/allypot compare $(CONFIG)

test: install
	$(BIN)/python -m pytest -q

# rebuild the derived tables from ../shared/data/raw (needs the raw files)
data: install
	$(BIN)/allypot data build

# re-record the sha256 of the raw files the build reads (data/raw_manifest.sha256); only after
# a deliberate change of the raw data
raw-manifest: install
	$(BIN)/allypot data manifest

report: install
	$(BIN)/allypot data report

replicate: install
	$(BIN)/allypot replicate

# reports/audit.md, .csv, .png: the audit of Table 1 (OLS and a short Bambi twin), MCMC steps fitted with the light sampler
# where no matching run folder exists in runs/
audit-report: install
	$(BIN)/allypot audit --out reports --fit --quick --bayes --draws 300 --chains 2

bench: install
	$(BIN)/python bench/benchmark.py

clean-runs:
	rm -rf runs/.partial-*
