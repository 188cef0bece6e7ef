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
