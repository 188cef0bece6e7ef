"""Load a derived table, or a user's own table of the same shape, with its schema checked.

A user studying another coalition war supplies tables with the same columns; they pass the
same checks as the bundled ones (missing columns, duplicate keys, negative troops, shares
above 1, unknown COW codes, unparseable numbers), each failing with file, column and row.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from allypot.data.catalog import SCHEMAS, UNCHECKED_CODES
from allypot.data.schema import DataValidationError, read_table

from allypot.paths import TABLES_DIR


def known_ccodes(tables_dir: Path = TABLES_DIR, table: str = "") -> set[int]:
    """COW codes of the crosswalk (every state in the system 2001-2014) in ``tables_dir``.

    A folder without a crosswalk is an error, not a reason to skip the check: otherwise any
    code, 9999 included, would pass.
    """
    path = Path(tables_dir) / "crosswalk.csv"
    if not path.is_file():
        what = f"table {table!r}" if table else "a table"
        raise DataValidationError(
            f"{path}: not found; the country codes of {what} are checked against it"
            f" (pass --tables with a folder holding crosswalk.csv, e.g. the bundled {TABLES_DIR})"
        )
    return set(read_table(path, SCHEMAS["crosswalk"])["ccode"].astype(int))


def load_table(name: str, tables_dir: Path = TABLES_DIR, filename: str | None = None, path: Path | None = None) -> pd.DataFrame:
    """Read and validate table ``name`` from ``tables_dir`` (or an explicit ``path``)."""
    if name not in SCHEMAS:
        raise KeyError(f"unknown table {name!r}; known: {sorted(SCHEMAS)}")
    target = Path(path) if path is not None else Path(tables_dir) / (filename or f"{name}.csv")
    codes = None if name in UNCHECKED_CODES else known_ccodes(tables_dir, name)
    return read_table(target, SCHEMAS[name], known_ccodes=codes)
