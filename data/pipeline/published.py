"""The replication package's own country-year panel, kept as published.

Gannon & Kent (2020) estimate Table 1 on ``data/iiss_afghan_complete.rds`` of
CenterForPeaceAndSecurityStudies/ISAF (HEAD d904b8d). We keep every original column
under its original name so that Table 1 can be reproduced exactly, defects included,
and add the project's names for the columns whose meaning coincides with ours, so the
same regression code runs on this panel and on the rebuilt one.

What the original columns mean was read off the package's code (``docs/04_EV.Rmd`` at
commit 917e4a3, which writes the file, and ``docs/05_Model.Rmd`` at 5343e8f, which
estimates Table 1):

- ``troops_afghan_final`` is the yearly maximum of the CPASS placemat transcription
  where one survived the merge (``troops``), else the IISS total; ``..._final_ratio``
  divides it by ``troops_total`` (IISS active forces). It carries the false zeros of
  SOURCES §1.3 (for example Germany 2008-2010).
- ``pot_gain = (1 - ideal_dist) - depth``: ``ideal_dist`` is the absolute distance of
  the min-max rescaled Bailey-Strezhnev-Voeten ideal point from the US one that year;
  ``depth`` is log(Benson-Clinton depth + 2.141), set to 0 where there is no alliance
  with the US. ``us_ally`` is 1 where a depth score exists.
- ``pctagreeus`` (share of UN votes agreeing with the US) is the "UN Voting" control.
- ``dem`` is 1 if Polity IV ``democ >= 6``; the special codes -66/-77/-88 become 0.
- ``casualties`` are *annual* coalition deaths from ``data/afghan_casualties.csv``
  (they equal that file year by year, e.g. UK 2009 = 105), merged by COW state name
  with unmatched names set to 0; not cumulative and not lagged, whatever the paper says.
- ``gdp``/``gdppc`` are World Bank current US$ (NY.GDP.MKTP.CD, NY.GDP.PCAP.CD), merged
  on COW ``stateabb`` against World Bank ISO3 codes, so states whose codes differ (UKG,
  GMY, ...) have none: hence only about 1,000 non-missing rows.
- ``distance`` is capital-to-Kabul distance from the package's ``inst/extdata/distance.csv``
  in **miles** (London 3,550, Ottawa 6,500, Berlin 2,973: the great-circle distances
  in km divided by 1.609).
- ``milex``, ``milper``, ``irst``, ``pec``, ``tpop``, ``upop``, ``cinc`` are COW National
  Material Capabilities 5.0, where -9 means missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from allypot.data.schema import (
    Column,
    DataValidationError,
    ExclusionLog,
    TableSchema,
    sha256_file,
    write_table,
)

from allypot.paths import DEFAULT_RAW_DIR, TABLES_DIR

RAW_FILE = Path("afghanistan") / "CenterForPeaceAndSecurityStudies__ISAF" / "converted" / "iiss_afghan_complete.rds.csv"
SOURCE = "CenterForPeaceAndSecurityStudies/ISAF data/iiss_afghan_complete.rds (d904b8d)"
MILES_TO_KM = 1.609344
# COW National Material Capabilities code for a missing value
COW_MISSING = -9



def _orig(name: str, dtype: str, description: str, unit: str = "", **kw) -> Column:
    return Column(name, dtype, description, unit=unit, source=f"{SOURCE}: {name}", **kw)


# the published columns, in the file's order, with what the replication code says they are
ORIGINAL_COLUMNS: tuple[Column, ...] = (
    _orig("year", "int", "data year (IISS edition year minus 1)", "year", nullable=False, min=2001, max=2014),
    _orig("country", "str", "country name as typed in the IISS tables"),
    _orig("stateabb", "str", "COW state abbreviation (empty for 4 entities, which dplyr::filter then dropped)"),
    _orig("ccode", "int", "COW country code as published (0 = Republika Srpska; Vietnam is 817, not 816)", nullable=False),
    _orig("troops_total", "float", "IISS active armed forces", "persons"),
    _orig("troops_afghan_total", "float", "IISS troops in Afghanistan (ISAF+OEF+UNAMA); comma-formatted entries became 0", "persons"),
    _orig("troops_afghan_oef", "float", "IISS troops in Afghanistan under OEF", "persons"),
    _orig("troops_afghan_isaf", "float", "IISS troops in Afghanistan under ISAF", "persons"),
    _orig("troops_afghan_unama", "float", "IISS personnel with UNAMA", "persons"),
    _orig("troops_afghan_ratio", "float", "troops_afghan_total / troops_total (inf where troops_total = 0)", "ratio", finite=False),
    _orig("milex", "float", "COW military expenditure (-9 = missing)", "thousands of current US$"),
    _orig("milper", "float", "COW military personnel (-9 = missing)", "thousands"),
    _orig("irst", "float", "COW iron and steel production (-9 = missing)", "thousands of tons"),
    _orig("pec", "float", "COW primary energy consumption (-9 = missing)", "thousands of coal-ton equivalents"),
    _orig("tpop", "float", "COW total population", "thousands"),
    _orig("upop", "float", "COW urban population", "thousands"),
    _orig("cinc", "float", "COW composite index of national capability", "share of world"),
    _orig("idealpoint", "float", "UN ideal point (Bailey, Strezhnev & Voeten), min-max rescaled to [0, 1]"),
    _orig("pctagreeus", "float", "share of UN votes agreeing with the US (Table 1 'UN Voting')", "proportion"),
    _orig("ideal_dist", "float", "|idealpoint - US idealpoint| in the same year"),
    _orig("democ", "float", "Polity IV democracy score (-66/-77/-88 special codes kept)"),
    _orig("autoc", "float", "Polity IV autocracy score (-66/-77/-88 special codes kept)"),
    _orig("polity2", "float", "Polity IV polity2", min=-10, max=10),
    _orig("dem", "float", "1 if democ >= 6 else 0 (special codes give 0); Table 1 'Democracy'"),
    _orig("atopid", "float", "ATOP id of the alliance with the US whose depth is used"),
    _orig("depth", "float", "log(Benson-Clinton depth + 2.141); 0 if no US alliance"),
    _orig("us_ally", "float", "1 if the state has a depth-scored alliance with the US", allowed=(0, 1)),
    _orig("pot_gain", "float", "alliance potential: (1 - ideal_dist) - depth; NA for the US"),
    _orig("distance", "float", "capital-to-Kabul distance", "miles"),
    _orig("gdp", "float", "World Bank GDP (NY.GDP.MKTP.CD), merged on COW stateabb", "current US$"),
    _orig("gdppc", "float", "World Bank GDP per capita (NY.GDP.PCAP.CD), merged on COW stateabb", "current US$"),
    _orig("casualties", "float", "annual coalition deaths in Afghanistan (afghan_casualties.csv), 0 if unmatched", "deaths per year"),
    _orig("troops", "float", "yearly maximum of the CPASS placemat transcription where it survived the merge", "persons"),
    _orig("troops_afghan_final", "float", "troops (placemat) if present else troops_afghan_total; the published DV numerator", "persons"),
    _orig("troops_afghan_final_ratio", "float", "troops_afghan_final / troops_total: the published DV (inf where troops_total = 0)", "ratio", finite=False),
)

# our name -> (original column, description, unit); values are copied unless noted in
# _derive_named_columns, which is where every recoding happens
NAMED_COLUMNS: dict[str, tuple[str, str, str]] = {
    "share": ("troops_afghan_final_ratio", "published DV; inf (zero armed forces, Iceland) set to NaN", "ratio"),
    "troops_afghanistan": ("troops_afghan_final", "published DV numerator", "persons"),
    "armed_forces": ("troops_total", "IISS active armed forces (published DV denominator)", "persons"),
    "potential": ("pot_gain", "published alliance potential", ""),
    "ideal_distance": ("ideal_dist", "ideal-point distance from the US", ""),
    "un_agreement_us": ("pctagreeus", "share of UN votes agreeing with the US (Table 1 'UN Voting')", "proportion"),
    "democracy": ("dem", "published democracy dummy (democ >= 6)", ""),
    "alliance_depth": ("depth", "published depth of the US alliance", ""),
    "casualties_annual": ("casualties", "annual coalition deaths (published 'Casualties')", "deaths per year"),
    "gdp_per_capita": ("gdppc", "World Bank GDP per capita", "current US$"),
    "dist_kabul_km": ("distance", "capital-to-Kabul distance, published miles times 1.609344", "km"),
    "military_personnel_k": ("milper", "COW military personnel; -9 set to NaN", "thousands"),
    "military_expenditure_k": ("milex", "COW military expenditure; -9 set to NaN", "thousands of current US$"),
}

PUBLISHED_SCHEMA = TableSchema(
    name="published_panel",
    description=(
        "Gannon & Kent (2020) replication panel iiss_afghan_complete.rds as published (all original "
        "columns, defects included) plus the project's names for the columns that mean the same."
    ),
    columns=ORIGINAL_COLUMNS
    + tuple(
        Column(ours, "float", desc, unit=unit, source=f"{SOURCE}: {orig}")
        for ours, (orig, desc, unit) in NAMED_COLUMNS.items()
    ),
    key=("ccode", "year"),
)


def _derive_named_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Add our names; recode documented missing codes in them, never in the originals.

    The originals stay untouched so Table 1 can be re-run on exactly what was published.
    """
    out = df.copy()
    for ours, (orig, _, _) in NAMED_COLUMNS.items():
        out[ours] = out[orig].astype("float64")
    # a ratio with a zero denominator is undefined, not infinitely large
    out["share"] = out["share"].where(np.isfinite(out["share"]))
    out["dist_kabul_km"] = out["dist_kabul_km"] * MILES_TO_KM
    for ours in ("military_personnel_k", "military_expenditure_k"):
        out[ours] = out[ours].mask(out[ours] == COW_MISSING)
    return out


def _resolve_duplicate_keys(df: pd.DataFrame, log: ExclusionLog) -> pd.DataFrame:
    """Keep one row per (ccode, year): drop exact copies with a log entry, refuse conflicts.

    The published file at d904b8d has unique keys; this guards a different copy of it
    against silently picking one of two disagreeing rows.
    """
    dup = df.duplicated(["ccode", "year"], keep=False)
    if not dup.any():
        return df
    copies = df.duplicated(keep="first")
    log.exclude(str(RAW_FILE), "exact duplicate row of the published panel", df[copies], ["country", "ccode", "year"])
    df = df[~copies]
    conflict = df.duplicated(["ccode", "year"], keep=False)
    if conflict.any():
        raise DataValidationError(
            f"{RAW_FILE}: (ccode, year) rows that disagree: "
            f"{df.loc[conflict, ['country', 'ccode', 'year']].head(10).to_dict('records')}"
        )
    return df


def build_published_panel(raw_dir: str | Path = DEFAULT_RAW_DIR, log: ExclusionLog | None = None) -> pd.DataFrame:
    """Read the published panel and add the project's column names.

    Parameters
    ----------
    raw_dir : path
        The raw data root (``shared/data/raw``).
    log : ExclusionLog, optional
        Receives any row left out (rows without a key, exact duplicates).

    Returns
    -------
    DataFrame
        One row per (ccode, year), columns of :data:`PUBLISHED_SCHEMA`.
    """
    log = log if log is not None else ExclusionLog()
    path = Path(raw_dir) / RAW_FILE
    # empty cells are the converted CSV's NA; text is kept verbatim otherwise
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    numeric = [c.name for c in ORIGINAL_COLUMNS if c.dtype != "str"]
    df = raw.copy()
    df[numeric] = df[numeric].apply(pd.to_numeric, errors="raise")
    no_key = df["ccode"].isna() | df["year"].isna()
    log.exclude(str(RAW_FILE), "no ccode or year, so no key", df[no_key], ["country", "year"])
    df = df[~no_key]
    df = _resolve_duplicate_keys(df, log)
    df["ccode"] = df["ccode"].astype("int64")
    df["year"] = df["year"].astype("int64")
    return _derive_named_columns(df).reset_index(drop=True)


def write_published_panel(
    raw_dir: str | Path = DEFAULT_RAW_DIR, out_dir: str | Path = TABLES_DIR, log: ExclusionLog | None = None
) -> Path:
    """Build and write ``published_panel.csv`` (plus its ``.meta.json``); return the CSV path."""
    path = Path(raw_dir) / RAW_FILE
    panel = build_published_panel(raw_dir, log)
    out = Path(out_dir) / "published_panel.csv"
    write_table(panel, out, PUBLISHED_SCHEMA, {str(RAW_FILE): sha256_file(path)})
    return out
