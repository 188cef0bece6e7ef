"""A broken user table fails on load with the file, the column and the row named.

The broken panels are the committed panel's first rows with one cell spoiled, so they
track the real header; the row numbers asserted are file rows (header = row 1).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from allypot.data.loaders import load_table
from allypot.data.schema import DataValidationError

from allypot.paths import TABLES_DIR

FIXTURES = Path(__file__).parent / "fixtures"
N_ROWS = 50


@pytest.fixture(scope="module")
def head() -> pd.DataFrame:
    """The committed panel's first rows, as text, exactly as a user would copy them."""
    return pd.read_csv(TABLES_DIR / "panel.csv", dtype=str, keep_default_na=False, nrows=N_ROWS)


def _write(frame: pd.DataFrame, tmp_path: Path, name: str = "user_panel.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _error(path: Path, table: str = "panel") -> str:
    with pytest.raises(DataValidationError) as info:
        load_table(table, path=path)
    return str(info.value)


def test_valid_user_table_loads(head, tmp_path):
    frame = load_table("panel", path=_write(head, tmp_path))
    assert len(frame) == N_ROWS
    assert frame["troops_afghanistan"].dtype == "float64"


def test_missing_column(head, tmp_path):
    path = _write(head.drop(columns="share"), tmp_path)
    message = _error(path)
    assert str(path) in message and "'share'" in message and "missing column" in message


def test_duplicate_key(head, tmp_path):
    broken = pd.concat([head.iloc[:5], head.iloc[[3]]], ignore_index=True)
    message = _error(_write(broken, tmp_path))
    # the original (file row 5) and its copy (file row 7) are both named
    assert "user_panel.csv" in message and "duplicate key" in message and "ccode" in message
    assert "rows 5, 7" in message


@pytest.mark.parametrize(
    ("index", "column", "value", "file_row", "expected"),
    [
        (9, "troops_afghanistan", "-12", 11, "minimum"),  # negative troops
        (20, "share", "1.5", 22, "maximum"),  # share above 1
        (0, "ccode", "9999", 2, "9999"),  # unknown country code (the crosswalk is committed)
        (30, "troops_afghanistan", "1,2x3", 32, "'1,2x3'"),  # unparseable number
    ],
    ids=["negative_troops", "share_above_one", "unknown_country_code", "unparseable_number"],
)
def test_bad_cell_is_named_by_file_column_and_row(head, tmp_path, index, column, value, file_row, expected):
    assert (TABLES_DIR / "crosswalk.csv").exists()
    broken = head.copy()
    broken.loc[index, column] = value
    message = _error(_write(broken, tmp_path))
    assert "user_panel.csv" in message and f"'{column}'" in message and f"row {file_row}" in message
    assert expected in message


def test_other_tables_named_in_errors():
    negative = FIXTURES / "troops_country_year_negative.csv"
    message = _error(negative, "troops_country_year")
    assert str(negative) in message and "'troops_afghanistan'" in message and "row 3" in message
    unparseable = FIXTURES / "armed_forces_unparseable.csv"
    message = _error(unparseable, "armed_forces")
    assert str(unparseable) in message and "'armed_forces'" in message and "row 4" in message and "1,2x3" in message


def test_missing_file_named(tmp_path):
    message = _error(tmp_path / "absent.csv")
    assert "absent.csv" in message and "not found" in message


@pytest.mark.parametrize("spelling", ["NaN", "nan", "NA", ""])
def test_missing_number_spellings_load_as_missing(head, tmp_path, spelling):
    broken = head.copy()
    broken.loc[4, "polity2"] = spelling
    frame = load_table("panel", path=_write(broken, tmp_path))
    assert pd.isna(frame.loc[4, "polity2"])
    assert frame["polity2"].drop(index=4).equals(load_table("panel", path=_write(head, tmp_path, "intact.csv"))["polity2"].drop(index=4))


def test_nan_in_a_required_column_is_named_as_empty(head, tmp_path):
    broken = head.copy()
    broken.loc[6, "ccode"] = "NaN"
    message = _error(_write(broken, tmp_path))
    assert "'ccode'" in message and "empty" in message and "row 8" in message


def test_share_rounded_to_three_significant_digits_passes_two_percent_off_fails(tmp_path):
    """Within rounding means what a 3-significant-digit share can be off by, and no more."""
    full = pd.read_csv(TABLES_DIR / "panel.csv", dtype=str, keep_default_na=False)
    share = pd.to_numeric(full["share"].replace("", None))
    rounded = full.copy()
    rounded["share"] = [f"{v:.3g}" if pd.notna(v) else "" for v in share]
    assert len(load_table("panel", path=_write(rounded, tmp_path, "rounded.csv"))) == len(full)
    positive = int((share > 0).to_numpy().argmax())
    off = full.copy()
    off.loc[positive, "share"] = repr(float(share[positive]) * 1.02)
    message = _error(_write(off, tmp_path, "off.csv"))
    assert "'share'" in message and f"row {positive + 2}" in message


def test_rows_are_counted_in_the_file_across_blank_lines(head, tmp_path):
    lines = head.to_csv(index=False, lineterminator="\n").splitlines()
    lines.insert(3, "")  # a blank line after file row 3
    lines[10] = lines[10].replace(lines[10].split(",")[0], "9999", 1)  # file row 11
    path = tmp_path / "blank.csv"
    path.write_text("\n".join(lines) + "\n")
    message = _error(path)
    assert "9999" in message and "row 11" in message


def test_inf_is_kept_only_where_the_schema_allows_it():
    from allypot.data.catalog import SCHEMAS

    published = load_table("published_panel")
    assert np.isinf(published["troops_afghan_final_ratio"]).sum() > 0
    allowing = [(t, c.name) for t, s in SCHEMAS.items() for c in s.columns if not c.finite]
    assert allowing == [("published_panel", "troops_afghan_ratio"), ("published_panel", "troops_afghan_final_ratio")]
