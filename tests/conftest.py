"""Shared fixtures. Tests that read the raw public files skip when ../shared is absent, so
a clone without it still runs everything that the committed tables allow."""

import matplotlib
import pytest

from allypot.paths import DEFAULT_RAW_DIR

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def raw_dir():
    if not DEFAULT_RAW_DIR.is_dir():
        pytest.skip(f"raw data not found at {DEFAULT_RAW_DIR}")
    return DEFAULT_RAW_DIR


@pytest.fixture(scope="session")
def small_joint_run(tmp_path_factory):
    """A real joint run shared by the slow tests that only read one (power-scaling, influence):
    the smoke config (hurdle, baseline) on 2013-2014, 2 chains x 100 draws. Read it, never change it."""
    from allypot.inference.config import load_config
    from allypot.inference.fit import fit_config
    from allypot.paths import TABLES_DIR

    config = load_config("tests/fixtures/configs/smoke_joint.toml")
    config["data"] |= {"first_year": 2013, "last_year": 2014}
    config["sampler"] |= {"chains": 2, "draws": 100, "tune": 100}
    return fit_config(config, TABLES_DIR, tmp_path_factory.mktemp("shared-runs"), progress=False).path

