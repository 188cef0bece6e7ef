"""Where things live.

Package data (the derived tables, the build rules, the priors, the run configs) is found
through :mod:`importlib.resources`, so an installed wheel finds it exactly as a clone does.
Everything a command writes (run folders, reports, checks) defaults to ``runs/`` under the
current working directory, never into the installed package or a committed file.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_dir(package: str) -> Path:
    """The folder holding ``package``'s files; a wheel is installed unzipped, so it is a real one."""
    location = Path(str(files(package)))
    if not location.is_dir():
        raise FileNotFoundError(f"{location}: package data of {package} is not a folder (zipped install?)")
    return location


DATA_DIR = package_dir("allypot.data")
TABLES_DIR = DATA_DIR / "tables"
# the data build's rules (placemat snapshot, IISS edition year, alliance universe, ...), each explained there
BUILD_CONFIG = DATA_DIR / "build_config.toml"
PRIORS_DIR = package_dir("allypot.priors")
CONFIGS_DIR = package_dir("allypot.inference") / "configs"
DEFAULT_CONFIG = CONFIGS_DIR / "joint_default.toml"

# outputs: relative, so they land under whatever folder the command is run from
RUNS_DIR = Path("runs")

# the source checkout, when running from one (editable install); None for a wheel
_checkout = Path(__file__).resolve().parent.parent
REPO_ROOT: Path | None = _checkout if (_checkout / "pyproject.toml").is_file() else None
# the data report is committed in a checkout (`make report` regenerates it); an installed
# package writes it under the working directory instead of into site-packages
REPORT_DIR = DATA_DIR / "report" if REPO_ROOT else RUNS_DIR / "data-report"
# the raw public files sit beside the project checkout; only the build reads them
DEFAULT_RAW_DIR = (REPO_ROOT.parent if REPO_ROOT else Path("..")) / "shared" / "data" / "raw"
