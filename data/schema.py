"""Table schemas, validation and the exclusion log.

Every derived table has a :class:`TableSchema`: its columns (type, unit, range, source,
meaning) and its key. The same schema validates the committed tables when they load and a
user's own tables for another coalition war, so a bad file fails with the file, column and
row named. The codebook (``data/CODEBOOK.md``) is written from these schemas, so the
documentation cannot drift from what is checked.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

# dtype names a column may declare; "str" columns are kept as text (never NaN-coerced,
# so Namibia's ISO2 "NA" survives), the others must parse as numbers.
DTYPES = ("int", "float", "str", "bool", "date")


class DataValidationError(ValueError):
    """A table broke its schema; the message names file, column and rows."""


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    description: str
    unit: str = ""
    source: str = ""
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    allowed: tuple | None = None
    # numbers must be finite unless a source really holds inf (the published panel's ratios)
    finite: bool = True

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"column {self.name!r}: dtype {self.dtype!r} not in {DTYPES}")


@dataclass(frozen=True)
class TableSchema:
    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    # extra checks across columns, each (message, function df -> boolean Series of bad rows)
    row_checks: tuple = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


def _rows(mask: pd.Series, row_numbers: np.ndarray | None = None, limit: int = 10) -> str:
    """Describe offending rows by their row number in the file (header = row 1).

    ``row_numbers`` gives each data row's line in the file when it was read from one (blank
    lines skipped); without it, data row i is file row i + 2.
    """
    idx = np.flatnonzero(mask.to_numpy())
    numbers = idx + 2 if row_numbers is None else np.asarray(row_numbers)[idx]
    shown = ", ".join(str(n) for n in numbers[:limit])
    more = f" and {len(idx) - limit} more" if len(idx) > limit else ""
    return f"row{'s' if len(idx) > 1 else ''} {shown}{more}"


def read_table(path: str | Path, schema: TableSchema, known_ccodes: set[int] | None = None) -> pd.DataFrame:
    """Read a CSV and validate it against ``schema``.

    Every cell is read as text and numbers are parsed strictly: a cell that is neither empty
    nor a number is an error, not a silent NaN. A file that cannot be read as a CSV table
    (a folder, empty, not UTF-8, a row with too many or too few fields, only a header) fails
    with one line naming the file and the row.
    """
    path = Path(path)
    text = _read_text(path, schema)
    frame, row_numbers = _parse_csv(text, path, schema)
    return validate(frame, schema, source=str(path), known_ccodes=known_ccodes, row_numbers=row_numbers)


def _read_text(path: Path, schema: TableSchema) -> str:
    """The file's text, or a :class:`DataValidationError` saying why it is not a readable table."""
    if not path.exists():
        raise DataValidationError(f"{path}: file not found (table {schema.name!r})")
    if path.is_dir():
        raise DataValidationError(f"{path}: is a folder, not a CSV file (table {schema.name!r})")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataValidationError(f"{path}: cannot be read ({err.strerror})") from None
    if not data.strip():
        raise DataValidationError(
            f"{path}: file is empty; table {schema.name!r} needs a header row naming its"
            f" {len(schema.columns)} columns ({', '.join(schema.column_names[:3])}, ...)"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        row = data[: err.start].count(b"\n") + 1
        field = data[: err.start].rsplit(b"\n", 1)[-1].count(b",")
        header = next(csv.reader([data.split(b"\n", 1)[0].decode("utf-8", errors="replace")]))
        column = f"column {header[field]!r}" if row > 1 and field < len(header) else f"field {field + 1}"
        raise DataValidationError(
            f"{path}: row {row}, {column} is not UTF-8 text (byte 0x{data[err.start]:02x});"
            " save the file as UTF-8"
        ) from None


def _parse_csv(text: str, path: Path, schema: TableSchema) -> tuple[pd.DataFrame, np.ndarray]:
    """Split CSV text into a frame of strings and each data row's line number in the file.

    Blank lines are skipped (pandas does the same); a row whose field count differs from the
    header's is an error rather than a shifted or padded row.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        separator = next((s for s in ";\t|" if len(header) == 1 and s in header[0]), None)
        if separator and len(schema.columns) > 1:
            raise DataValidationError(
                f"{path}: row 1 (header) is separated by {separator!r}, not by commas;"
                " save the file as comma-separated CSV"
            )
        rows, row_numbers = [], []
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                if len(row) > len(header):
                    detail = f"{len(row) - len(header)} more than the header's {len(header)} (after column {header[-1]!r})"
                else:
                    detail = f"fewer than the header's {len(header)} (no value for column {header[len(row)]!r})"
                raise DataValidationError(
                    f"{path}: row {reader.line_num} has {len(row)} fields, {detail};"
                    " a value containing a comma must be quoted"
                )
            rows.append(row)
            row_numbers.append(reader.line_num)
    except csv.Error as err:
        raise DataValidationError(f"{path}: row {reader.line_num} is not valid CSV ({err})") from None
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataValidationError(f"{path}: row 1 (header) names column(s) {repeated} more than once")
    if not rows:
        raise DataValidationError(f"{path}: no data rows, only a header (table {schema.name!r})")
    frame = pd.DataFrame(rows, columns=header, dtype=str)
    return frame, np.asarray(row_numbers)


def validate(
    df: pd.DataFrame,
    schema: TableSchema,
    source: str = "<dataframe>",
    known_ccodes: set[int] | None = None,
    row_numbers: np.ndarray | None = None,
) -> pd.DataFrame:
    """Check ``df`` against ``schema`` and return it with declared dtypes.

    Raises :class:`DataValidationError` naming ``source``, the column and the rows for:
    missing columns, unparseable numbers, values out of range or not allowed, nulls in
    non-nullable columns, duplicate keys, unknown country codes (when ``known_ccodes``
    is given, for every column named ``ccode``) and failed row checks. ``row_numbers`` are
    the data rows' lines in the file read, for the messages.
    """
    missing = [c for c in schema.column_names if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"{source}: missing column(s) {missing} required by table {schema.name!r}"
        )
    out = pd.DataFrame(index=df.index)
    for col in schema.columns:
        out[col.name] = _coerce(df[col.name], col, source, row_numbers)
    for col in schema.columns:
        values = out[col.name]
        null = values.isna()
        if not col.nullable and null.any():
            raise DataValidationError(f"{source}: column {col.name!r} is empty at {_rows(null, row_numbers)}")
        if col.min is not None:
            bad = ~null & (values < col.min)
            if bad.any():
                raise DataValidationError(
                    f"{source}: column {col.name!r} below its minimum {col.min} at {_rows(bad, row_numbers)}"
                    f" (first bad value {values[bad].iloc[0]})"
                )
        if col.max is not None:
            bad = ~null & (values > col.max)
            if bad.any():
                raise DataValidationError(
                    f"{source}: column {col.name!r} above its maximum {col.max} at {_rows(bad, row_numbers)}"
                    f" (first bad value {values[bad].iloc[0]})"
                )
        if col.allowed is not None:
            bad = ~null & ~values.isin(col.allowed)
            if bad.any():
                raise DataValidationError(
                    f"{source}: column {col.name!r} has value(s) {sorted(set(values[bad].astype(str)))[:5]}"
                    f" not in {list(col.allowed)} at {_rows(bad, row_numbers)}"
                )
    if known_ccodes is not None:
        for name in schema.column_names:
            if name == "ccode" or name.endswith("_ccode"):
                bad = out[name].notna() & ~out[name].isin(known_ccodes)
                if bad.any():
                    raise DataValidationError(
                        f"{source}: column {name!r} has unknown COW code(s)"
                        f" {sorted(set(out[name][bad].astype(int)))[:10]} at {_rows(bad, row_numbers)}"
                    )
    dup = out.duplicated(list(schema.key), keep=False)
    if dup.any():
        raise DataValidationError(
            f"{source}: duplicate key {list(schema.key)} at {_rows(dup, row_numbers)}"
            f" (first: {out.loc[dup, list(schema.key)].iloc[0].to_dict()})"
        )
    for message, check in schema.row_checks:
        bad = check(out).fillna(False).astype(bool)
        if bad.any():
            raise DataValidationError(f"{source}: {message} at {_rows(bad, row_numbers)}")
    return out.reset_index(drop=True)


# spellings of a missing number: empty, "NA" (R) and "NaN"/"nan" (pandas, numpy)
MISSING_NUMBER_SPELLINGS = ("", "na", "nan")


def _coerce(values: pd.Series, col: Column, source: str, row_numbers: np.ndarray | None = None) -> pd.Series:
    if col.dtype == "str":
        return values.astype("string") if values.dtype != "string" else values
    text = values.astype("string").str.strip()
    empty = text.isna() | text.str.lower().isin(MISSING_NUMBER_SPELLINGS)
    if col.dtype == "date":
        parsed = pd.to_datetime(text.where(~empty), errors="coerce", format="%Y-%m-%d")
    elif col.dtype == "bool":
        mapping = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
        parsed = text.str.lower().map(mapping).astype("boolean")
        parsed[empty] = pd.NA
    else:
        parsed = pd.to_numeric(text.where(~empty), errors="coerce")
    bad = parsed.isna() & ~empty
    if bad.any():
        first = values[bad].iloc[0]
        raise DataValidationError(
            f"{source}: column {col.name!r} has unparseable {col.dtype} value {first!r} at {_rows(bad, row_numbers)}"
        )
    if col.dtype in ("int", "float") and col.finite:
        infinite = parsed.notna() & ~np.isfinite(parsed.astype("float64"))
        if infinite.any():
            raise DataValidationError(
                f"{source}: column {col.name!r} has non-finite value {values[infinite].iloc[0]!r}"
                f" at {_rows(infinite, row_numbers)}"
            )
    if col.dtype == "int":
        not_whole = parsed.notna() & (parsed != np.round(parsed))
        if not_whole.any():
            raise DataValidationError(
                f"{source}: column {col.name!r} has non-integer value {values[not_whole].iloc[0]!r}"
                f" at {_rows(not_whole, row_numbers)}"
            )
        return parsed.astype("Int64")
    if col.dtype == "float":
        return parsed.astype("float64")
    return parsed


def write_table(df: pd.DataFrame, path: str | Path, schema: TableSchema, sources: dict[str, str]) -> str:
    """Validate, then write ``df`` as CSV plus ``<name>.meta.json`` deterministically.

    Rows are sorted by the key and floats written with 10 significant digits, so the same
    inputs give byte-identical files. ``sources`` maps input file -> sha256. Returns the
    sha256 of the CSV written.
    """
    path = Path(path)
    checked = validate(df[schema.column_names], schema, source=f"build of {path.name}")
    checked = checked.sort_values(list(schema.key), kind="mergesort").reset_index(drop=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    checked.to_csv(path, index=False, float_format="%.10g", lineterminator="\n", date_format="%Y-%m-%d")
    digest = sha256_file(path)
    meta = {
        "table": schema.name,
        "description": schema.description,
        "key": list(schema.key),
        "rows": int(len(checked)),
        "sha256": digest,
        "sources": dict(sorted(sources.items())),
        "columns": [
            {k: v for k, v in c.__dict__.items() if v not in (None, "") and k != "name" and (k, v) != ("finite", True)}
            | {"name": c.name}
            for c in schema.columns
        ],
    }
    path.with_suffix(".meta.json").write_text(json.dumps(meta, indent=2, default=list) + "\n")
    return digest


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Exclusion:
    source: str
    reason: str
    n_rows: int
    examples: str = ""


class ExclusionLog:
    """Counts every row a build step leaves out, with its reason, for the data report.

    Nothing is dropped silently: a build step that filters rows calls :meth:`exclude`
    with the rows it removed.
    """

    def __init__(self) -> None:
        self.entries: list[Exclusion] = []

    def exclude(self, source: str, reason: str, rows: pd.DataFrame | int, example_cols: list[str] | None = None) -> None:
        n = rows if isinstance(rows, int) else len(rows)
        if n == 0:
            return
        examples = ""
        if not isinstance(rows, int) and example_cols:
            shown = rows[example_cols].drop_duplicates().head(5)
            examples = "; ".join(", ".join(f"{k}={v}" for k, v in r.items()) for r in shown.to_dict("records"))
        self.entries.append(Exclusion(source, reason, n, examples))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([e.__dict__ for e in self.entries], columns=["source", "reason", "n_rows", "examples"])
