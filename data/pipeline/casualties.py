"""Coalition military deaths in Afghanistan by nation and year, 2001-2014.

Source: ``afghan_casualties.csv`` of the Gannon & Kent replication package (wide: Year x
nation, icasualties-style counts; see ``afghanistan/SOURCES.md`` §1.1). Its "NATO" column
(deaths announced by ISAF without a nationality) and "Total" column are not states: they
are excluded and logged, and "Total" is used only to check that the nation columns plus
"NATO" add up.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from allypot.data.pipeline.crosswalk import END_YEAR, START_YEAR, CountryResolver
from allypot.data.schema import (
    Column,
    ExclusionLog,
    TableSchema,
    sha256_file,
    write_table,
)

CASUALTIES = Path("afghanistan/CenterForPeaceAndSecurityStudies__ISAF/afghan_casualties.csv")
NOT_STATES = frozenset({"NATO", "Total"})

# States with coalition deaths in Afghanistan (one each per Wikipedia's ISAF tally, raw
# afghanistan/SOURCES.md) but no column in afghan_casualties.csv: Belgium, Bulgaria, Croatia,
# Montenegro (COW codes). Their casualty counts are unknown, not zero.
DEATHS_WITHOUT_COLUMN = {211: "Belgium", 355: "Bulgaria", 344: "Croatia", 341: "Montenegro"}

CASUALTIES_SCHEMA = TableSchema(
    name="casualties",
    description=(
        "Coalition military deaths in Afghanistan per nation-year 2001-2014, for the 28 nations "
        "with a column in afghan_casualties.csv (source not stated there; counts match "
        "icasualties.org-style tallies). 0 = the source lists the nation and records no death that "
        "year. A nation not in this table is unknown, not 0: Belgium, Bulgaria, Croatia and "
        "Montenegro (one death each according to Wikipedia) have no column, and deaths ISAF announced "
        "without a nationality (the 'NATO' column) cannot be assigned to any nation."
    ),
    columns=(
        Column("ccode", "int", "COW state code", nullable=False),
        Column("year", "int", "calendar year of death", nullable=False, min=START_YEAR, max=END_YEAR),
        Column("casualties", "int", "military deaths that year", unit="persons", source=str(CASUALTIES), nullable=False, min=0),
        Column("casualties_cum", "int", f"military deaths {START_YEAR} to this year inclusive", unit="persons", source=str(CASUALTIES), nullable=False, min=0),
    ),
    key=("ccode", "year"),
)


def build_casualties(raw_dir: Path, resolver: CountryResolver, log: ExclusionLog) -> pd.DataFrame:
    """Long nation-year casualties table (:data:`CASUALTIES_SCHEMA`).

    Raises ValueError if a cell is not a whole non-negative number or if a year's nation
    columns plus "NATO" do not add up to its "Total".
    """
    src = str(CASUALTIES)
    wide = pd.read_csv(Path(raw_dir) / CASUALTIES)
    numeric = wide.drop(columns="Year").apply(pd.to_numeric, errors="coerce")
    if numeric.isna().any().any() or (numeric < 0).any().any():
        raise ValueError(f"{src}: non-numeric or negative death counts")
    nations = [c for c in numeric.columns if c not in NOT_STATES]
    gap = numeric[nations + ["NATO"]].sum(axis=1) != numeric["Total"]
    if gap.any():
        raise ValueError(f"{src}: nations + NATO differ from Total in years {wide.loc[gap, 'Year'].tolist()}")

    long = wide.melt(id_vars="Year", var_name="column", value_name="casualties")
    long["ccode"] = resolver.to_ccode(long["column"], "name", src, "column header", ignore=NOT_STATES)
    not_state = long["ccode"].isna()
    log.exclude(src, "column is not a state ('NATO' = nationality not announced; 'Total')", long[not_state], ["column"])
    long = long[~not_state]
    outside = ~long["Year"].between(START_YEAR, END_YEAR)
    log.exclude(src, "year outside the study years", long[outside], ["Year"])
    long = long[~outside].rename(columns={"Year": "year"}).sort_values(["ccode", "year"])
    long["casualties_cum"] = long.groupby("ccode")["casualties"].cumsum()
    return long[CASUALTIES_SCHEMA.column_names].reset_index(drop=True)


def write_casualties(raw_dir: Path, out_dir: Path, resolver: CountryResolver, log: ExclusionLog) -> Path:
    """Build and write ``casualties.csv`` (+ ``.meta.json``) into ``out_dir``; return its path."""
    path = Path(out_dir) / "casualties.csv"
    write_table(build_casualties(raw_dir, resolver, log), path, CASUALTIES_SCHEMA, sources={str(CASUALTIES): sha256_file(Path(raw_dir) / CASUALTIES)})
    return path


if __name__ == "__main__":
    from allypot.data.pipeline.crosswalk import load_resolver

    from allypot.paths import DEFAULT_RAW_DIR, TABLES_DIR

    print(write_casualties(DEFAULT_RAW_DIR, TABLES_DIR, load_resolver(), ExclusionLog()))
