"""Where things live: the repository, its committed tables, runs, and the raw data."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TABLES_DIR = REPO_ROOT / "data" / "tables"
REPORT_DIR = REPO_ROOT / "data" / "report"
RUNS_DIR = REPO_ROOT / "runs"
PRIORS_DIR = REPO_ROOT / "priors"
CONFIGS_DIR = REPO_ROOT / "inference" / "configs"
# the raw public files sit beside the project checkout; only the build reads them
DEFAULT_RAW_DIR = REPO_ROOT.parent / "shared" / "data" / "raw"
