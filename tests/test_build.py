"""The committed tables are what the build makes: a fresh build reproduces them byte for byte."""

from pathlib import Path

import pytest
from allypot.data.pipeline import build_all

from allypot.paths import TABLES_DIR

RAW = Path(__file__).resolve().parents[1].parent / "shared/data/raw"
COMMITTED = sorted(p.name for p in TABLES_DIR.iterdir() if p.suffix == ".csv" or p.name.endswith(".meta.json"))

pytestmark = [
    pytest.mark.needs_raw,
    pytest.mark.skipif(not RAW.is_dir(), reason=f"raw data absent: {RAW}"),
]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build")
    build_all(RAW, out, progress=lambda _: None)
    return out


def test_committed_tables_listed():
    assert "panel.csv" in COMMITTED and "exclusions.csv" in COMMITTED and "panel.meta.json" in COMMITTED


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_file_is_what_the_build_writes(fresh, name):
    built = fresh / name
    assert built.exists(), f"the build no longer writes {name}"
    assert built.read_bytes() == (TABLES_DIR / name).read_bytes(), f"{name}: committed file differs from a fresh build"


def test_build_writes_nothing_uncommitted(fresh):
    assert sorted(p.name for p in fresh.iterdir()) == COMMITTED


def test_second_build_is_identical(fresh, tmp_path):
    build_all(RAW, tmp_path, progress=lambda _: None)
    for name in COMMITTED:
        assert (tmp_path / name).read_bytes() == (fresh / name).read_bytes(), name
