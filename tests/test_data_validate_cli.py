"""``allypot data validate`` on a user's broken table: exit 2 and exactly one line on stderr
naming the file (and the row and column where there is one), never a traceback.

The broken tables are the committed panel's first rows with one thing spoiled, so they track
the real header; rows are file rows (header = row 1).
"""

from pathlib import Path

import pandas as pd
import pytest

from allypot.cli import main
from allypot.paths import TABLES_DIR

N_ROWS = 30


@pytest.fixture(scope="module")
def head() -> pd.DataFrame:
    return pd.read_csv(TABLES_DIR / "panel.csv", dtype=str, keep_default_na=False, nrows=N_ROWS)


def _contributor_index(head: pd.DataFrame) -> int:
    """First row with troops, armed forces and share all given and troops above zero."""
    troops = pd.to_numeric(head["troops_afghanistan"], errors="coerce")
    given = (head["share"] != "") & (head["armed_forces"] != "") & (troops > 0)
    return int(given.to_numpy().argmax())


def _spoil(head: pd.DataFrame, index: int, column: str, value: str) -> pd.DataFrame:
    broken = head.copy()
    broken.loc[index, column] = value
    return broken


def _text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")


def _case(name: str, head: pd.DataFrame, tmp_path: Path) -> tuple[Path, list[str]]:
    """Write the broken input ``name``; return its path and what the one error line must say."""
    path = tmp_path / f"{name}.csv"
    i = _contributor_index(head)
    if name == "header_only":
        path.write_text(_text(head.iloc[:0]))
        return path, ["no data rows"]
    if name == "inf_troops":
        path.write_text(_text(_spoil(head, 5, "troops_afghanistan", "inf")))
        return path, ["'troops_afghanistan'", "row 7", "non-finite", "'inf'"]
    if name == "year_1995":
        path.write_text(_text(_spoil(head, 5, "year", "1995")))
        return path, ["'year'", "row 7", "minimum 2001", "1995"]
    if name == "troops_inconsistent_with_share":
        doubled = str(2 * float(head.loc[i, "troops_afghanistan"]))
        path.write_text(_text(_spoil(head, i, "troops_afghanistan", doubled)))
        return path, ["'share'", "troops_afghanistan / armed_forces", f"row {i + 2}"]
    if name == "empty":
        path.write_text("")
        return path, ["empty"]
    if name == "latin1":
        text = _text(_spoil(head, 3, "troops_source", "Ã©tude")).replace("Ã©", "\u00e9")
        path.write_bytes(text.encode("latin-1"))
        return path, ["row 5", "'troops_source'", "UTF-8"]
    if name == "directory":
        path = tmp_path / "a_folder"
        path.mkdir()
        return path, ["folder"]
    if name == "extra_field":
        lines = _text(head).splitlines()
        lines[4] += ",7"
        path.write_text("\n".join(lines) + "\n")
        return path, ["row 5", "fields", "'ideal_distance'"]
    if name == "missing_field":
        lines = _text(head).splitlines()
        lines[4] = lines[4].rsplit(",", 1)[0]
        path.write_text("\n".join(lines) + "\n")
        return path, ["row 5", "fields", "'ideal_distance'"]
    if name == "semicolons":
        path.write_text(_text(head).replace(",", ";"))
        return path, ["row 1 (header)", "';'", "comma-separated"]
    raise AssertionError(name)


CASES = [
    "header_only",
    "inf_troops",
    "year_1995",
    "troops_inconsistent_with_share",
    "empty",
    "latin1",
    "directory",
    "extra_field",
    "missing_field",
    "semicolons",
]


@pytest.mark.parametrize("name", CASES)
def test_bad_input_gives_one_line_naming_file_row_column(name, head, tmp_path, capsys):
    path, expected = _case(name, head, tmp_path)
    assert main(["data", "validate", "panel", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert str(path) in lines[0] and "Traceback" not in captured.err
    for part in expected:
        assert part in lines[0], (part, lines[0])
    assert "valid" not in captured.out


def test_folder_without_crosswalk_is_an_error_naming_it(head, tmp_path, capsys):
    folder = tmp_path / "my_tables"
    folder.mkdir()
    path = folder / "panel.csv"
    path.write_text(_text(_spoil(head, 0, "ccode", "9999")))
    assert main(["data", "validate", "panel", str(path), "--tables", str(folder)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(folder / "crosswalk.csv") in lines[0] and "not found" in lines[0]


def test_folder_with_crosswalk_catches_unknown_code(head, tmp_path, capsys):
    folder = tmp_path / "my_tables"
    folder.mkdir()
    (folder / "crosswalk.csv").write_bytes((TABLES_DIR / "crosswalk.csv").read_bytes())
    path = folder / "panel.csv"
    path.write_text(_text(_spoil(head, 0, "ccode", "9999")))
    assert main(["data", "validate", "panel", str(path), "--tables", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "9999" in err and "'ccode'" in err and "row 2" in err


def test_valid_table_with_nan_in_optional_column_passes(head, tmp_path, capsys):
    path = tmp_path / "nan.csv"
    path.write_text(_text(_spoil(head, 2, "polity2", "NaN")))
    assert main(["data", "validate", "panel", str(path)]) == 0
    assert f"{N_ROWS} rows" in capsys.readouterr().out
