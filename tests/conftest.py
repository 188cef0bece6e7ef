"""Shared fixtures. Tests that read the raw public files skip when ../shared is absent, so
a clone without it still runs everything that the committed tables allow."""

import io
import subprocess
import tomllib
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import NamedTuple

import matplotlib
import pytest
import tomli_w

from allypot.paths import DEFAULT_RAW_DIR

matplotlib.use("Agg")

REPOSITORY = Path(__file__).resolve().parent.parent
SMOKE_CONFIG = Path(__file__).parent / "fixtures" / "configs" / "smoke_joint.toml"
# the shared small joint run: two years and enough draws for the tests that read it (the
# power-scaling checks look at draw 57, diagnose at 50 posterior predictive draws)
SMALL_RUN_YEARS = (2013, 2014)
SMALL_RUN_DRAWS = 100


def repository_status() -> str:
    """``git status`` of the checkout (tracked changes and untracked files), or "" outside git."""
    done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPOSITORY,
                          capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


@pytest.fixture(scope="session")
def raw_dir():
    if not DEFAULT_RAW_DIR.is_dir():
        pytest.skip(f"raw data not found at {DEFAULT_RAW_DIR}")
    return DEFAULT_RAW_DIR


class CliFit(NamedTuple):
    """What one ``allypot fit`` call left behind: its exit code, output, run folder, and the
    repository's git status before and after."""

    code: int
    stdout: str
    stderr: str
    workdir: Path
    run: Path
    status_before: str
    status_after: str


@pytest.fixture(scope="session")
def small_joint_cli_fit(tmp_path_factory) -> CliFit:
    """``allypot fit`` of the smoke config (joint, hurdle, baseline) on 2013-2014, 2 chains x 100
    draws, run in an empty working directory without --runs (so the run lands in its default
    ./runs). One fit for the whole session: tests/test_cli.py checks the command, the slow tests
    that only read a run (power-scaling, influence, diagnose) use its folder."""
    from allypot.cli import main

    user = tomllib.loads(SMOKE_CONFIG.read_text())
    user["data"] = {"first_year": SMALL_RUN_YEARS[0], "last_year": SMALL_RUN_YEARS[1]}
    user["sampler"] |= {"draws": SMALL_RUN_DRAWS, "tune": SMALL_RUN_DRAWS}
    workdir = tmp_path_factory.mktemp("cli-fit")
    config = workdir / "smoke_2013_2014.toml"
    config.write_text(tomli_w.dumps(user))
    before = repository_status()
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(stdout), redirect_stderr(stderr):
        patch.chdir(workdir)
        code = main(["fit", config.name, "--quiet"])
    runs = list((workdir / "runs").iterdir()) if (workdir / "runs").is_dir() else []
    assert code == 0 and len(runs) == 1, (code, runs, stderr.getvalue())
    return CliFit(code, stdout.getvalue(), stderr.getvalue(), workdir, runs[0], before, repository_status())


@pytest.fixture(scope="session")
def small_joint_run(small_joint_cli_fit) -> Path:
    """The shared real joint run folder (:func:`small_joint_cli_fit`). Read it, never change it:
    a test that writes into a run folder works on a copy."""
    return small_joint_cli_fit.run
