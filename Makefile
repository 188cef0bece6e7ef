# allypot: two commands do all the set-up on a fresh machine.
#   make run        - install, then fit the default model under plug-in, cut and joint inference
#                     (one shared measurement fit), printing each effect as soon as it is ready
#   make test-fast  - install, then the tests not marked slow (every commit)
#   make test       - install, then the whole suite, slow statistical tests included (what CI runs)
# Other targets: fit, priors, replicate, bench, reports, data, report, clean-runs (see below).
# Everything but `reports`, `data` and `report` writes only under runs/ (not tracked).
# the first Python >= 3.12 that actually runs (a pyenv shim can exist without working)
PYTHON ?= $(shell for c in python3.12 python3.13 "env PYENV_VERSION=3.12.1 python3" python3; do \
	$$c -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null && { echo "$$c"; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= inference/configs/joint_default.toml
PYTEST := MPLBACKEND=Agg $(BIN)/python -m pytest -q

.PHONY: install run fit priors test test-fast data raw-manifest report replicate reports audit-report sensitivity-report eta-path-report grid-report bench clean-runs chromium

$(BIN)/allypot: pyproject.toml requirements.lock
	@echo "installing the pinned dependencies into $(VENV)/ (a few minutes the first time)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(BIN)/allypot

install: $(BIN)/allypot

# plug-in, cut and joint side by side (new run folders and a compare report under runs/)
run: install
	$(BIN)/allypot compare $(CONFIG)

# one analysis: make fit CONFIG=inference/configs/cut_default.toml
fit: install
	$(BIN)/allypot fit $(CONFIG)

# prior predictive check of CONFIG into a new folder under runs/
priors: install
	$(BIN)/allypot priors check $(CONFIG)

test-fast: install
	$(PYTEST) -m "not slow"

test: install chromium
	$(PYTEST) --durations=25

# Debian's headless browser, for the test that renders the diagnose report (needs root, as in CI)
chromium:
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

# re-record the sha256 of the raw files the build reads (data/raw_manifest.sha256); only after
# a deliberate change of the raw data
raw-manifest: install
	$(BIN)/allypot data manifest

# Table 1, published vs rebuilt panel, into a new folder under runs/
replicate: install
	$(BIN)/allypot replicate

# reports/audit.md, .csv, .png: the audit of Table 1 (OLS and a short Bambi twin), MCMC steps fitted with the light sampler
# where no matching run folder exists in runs/
audit-report: install
	$(BIN)/allypot audit --out reports --fit --quick --bayes --bambi-draws 300 --bambi-chains 2

# reports/grids/<name>/: a grid's report, by default the default grid (12 cells, one choice at a
# time; GRID=sensitivity/grids/data_rules.toml for the alternative panels, 4 cells). Cells whose run
# folders are in runs/ are read back; the others are fitted (about 2 hours on 2 cores for the 12)
GRID ?= sensitivity/grids/default.toml
grid-report: install
	$(BIN)/allypot grid $(GRID) --out reports/grids

bench: install
	$(BIN)/python bench/benchmark.py

# reports/sensitivity/: power-scaling by component and leave-one-state-out influence of a joint
# run folder (no refit), e.g. the one `make run` made:
#   make sensitivity-report RUN=runs/<stamp>-joint-joint-default-<id>
sensitivity-report: install
	@test -n "$(RUN)" || { echo "give RUN=runs/<a joint run folder>"; exit 2; }
	rm -rf reports/sensitivity/power_scaling reports/sensitivity/influence
	$(BIN)/allypot sensitivity $(RUN) --out reports/sensitivity/power_scaling --quiet
	$(BIN)/allypot influence $(RUN) --out reports/sensitivity/influence --quiet

# reports/sensitivity/eta_path/: the effect from cut (eta 0) to joint (eta 1) on RUN's analysis, five
# smi fits (smi run folders already in runs/ are read back). The committed one is RUN = a joint fit of
# inference/configs/eta_path.toml (regression fits at 2 x 500 draws; about 6 min an eta on 2 idle cores):
#   .venv/bin/allypot fit inference/configs/eta_path.toml
#   make eta-path-report RUN=runs/<stamp>-joint-eta500-2aa498ef0b00
eta-path-report: install
	@test -n "$(RUN)" || { echo "give RUN=runs/<a run folder>"; exit 2; }
	rm -rf reports/sensitivity/eta_path
	$(BIN)/allypot sensitivity $(RUN) --eta 0,0.25,0.5,0.75,1 --out reports/sensitivity/eta_path

# regenerate the committed reports/ on purpose (Bambi digits differ from run to run)
reports: install
	$(BIN)/allypot replicate --out reports
	$(BIN)/allypot priors check inference/configs/joint_default.toml --out reports/priors

# rebuild the derived tables from ../shared/data/raw (needs the raw files); writes data/tables
data: install
	$(BIN)/allypot data build

# the data report; writes data/report
report: install
	$(BIN)/allypot data report

clean-runs:
	rm -rf runs/.partial-*
