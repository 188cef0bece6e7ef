"""State-year covariates 2001-2014: democracy, capabilities, GDP/population, distance to Kabul.

One row per COW state-year (``system2016.csv``) with the controls of MODEL.md Part D. Every
source is COW-coded, so the merge is on (ccode, year); a source value that is missing stays
NaN and is counted in the exclusion log ("<column> missing for N state-years").

Distance to Kabul uses the capital in force on 1 July of the year (mid-year, so a capital
moved late in a year -- Myanmar, November 2005 -- counts from the following year) from
peacesciencer's ``cow_capitals.csv``. Those coordinates were geocoded automatically, so they
are checked (:func:`check_capital_coordinates`) against the other capitals file before use;
a coordinate is replaced only by the coordinate of the same capital in another provided
file, never by a typed number, and ``capital_coord_source`` says where each one came from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from allypot.data.schema import (
    Column,
    ExclusionLog,
    TableSchema,
    sha256_file,
    write_table,
)

SYSTEM_FILE = Path("cow") / "jandresgannon__DoDL" / "system2016.csv"
DEMOCRACY_FILE = Path("democracy") / "svmiller__isard" / "cw_democracy.csv"
NMC_FILE = Path("cow") / "svmiller__peacesciencer" / "cow_nmc.csv"
GDPPOP_FILE = Path("economy") / "svmiller__isard" / "cw_gdppop.csv"
GEO_DIR = Path("geography") / "svmiller__peacesciencer"
COW_CAPITALS_FILE = GEO_DIR / "cow_capitals.csv"
GW_CAPITALS_FILE = GEO_DIR / "gw_capitals.csv"

US_CCODE = 2
AFGHANISTAN_CCODE = 700
START_YEAR, END_YEAR = 2001, 2014
# IUGG mean Earth radius R1 = (2a + b) / 3, the usual radius for a spherical great circle
EARTH_RADIUS_KM = 6371.0088
# the same capital in two geocoded files should agree to within a city's extent; beyond this
# one of them is a geocoding error (Belgrade differs by 3.3 km between the files: same city)
MAX_CROSS_FILE_KM = 25.0
# a geocoder that falls back to a country-level gazetteer point returns whole arc-minutes in
# both coordinates; a city geocode almost never does, so such a point is suspect
ARC_MINUTE_TOL = 1e-5

_SYS = "COW system2016.csv"
_GDP = "Fariss et al. (2022) via isard cw_gdppop.csv"
_CAP = "peacesciencer cow_capitals.csv (see capital_coord_source)"
COVARIATES_SCHEMA = TableSchema(
    name="covariates",
    description="COW state-year controls 2001-2014 (MODEL.md Part D); missing source values stay empty.",
    columns=(
        Column("ccode", "int", "COW state code", source=_SYS, nullable=False),
        Column("year", "int", "calendar year", unit="year", source=_SYS, nullable=False, min=START_YEAR, max=END_YEAR),
        Column("stateabb", "str", "COW state abbreviation", source=_SYS, nullable=False),
        Column("us", "bool", "the row is the United States (ccode 2), excluded from the regression", nullable=False),
        Column("polity2", "float", "Polity5 polity2 score", unit="-10..10", source="isard cw_democracy.csv", min=-10, max=10),
        Column("v2x_polyarchy", "float", "V-Dem electoral democracy index", unit="0..1", source="isard cw_democracy.csv", min=0, max=1),
        Column("cinc", "float", "COW composite index of national capability", unit="share of system total, 0..1",
               source="COW NMC 7.0 via peacesciencer cow_nmc.csv", min=0, max=1),
        Column("milper", "float", "military personnel", unit="thousands of personnel",
               source="COW NMC 7.0 via peacesciencer cow_nmc.csv", min=0),
        Column("gdp", "float", "expenditure-side real GDP (PWT 10.0-anchored latent estimate, posterior mean)",
               unit="millions of 2017 international dollars, PPP", source=_GDP + " pwtrgdp", min=0),
        Column("gdp_sd", "float", "posterior SD of gdp", unit="millions of 2017 international dollars, PPP",
               source=_GDP + " sd_pwtrgdp", min=0),
        Column("population", "float", "population (PWT 10.0-anchored latent estimate, posterior mean)", unit="millions",
               source=_GDP + " pwtpop", min=0),
        Column("population_sd", "float", "posterior SD of population", unit="millions", source=_GDP + " sd_pwtpop", min=0),
        Column("gdp_per_capita", "float",
               "real GDP per capita (Maddison-anchored latent estimate, posterior mean; a separate series, not gdp/population)",
               unit="2011 international dollars, PPP", source=_GDP + " mrgdppc", min=0),
        Column("gdp_per_capita_sd", "float", "posterior SD of gdp_per_capita", unit="2011 international dollars, PPP",
               source=_GDP + " sd_mrgdppc", min=0),
        Column("capital", "str", "capital in force on 1 July of the year", source=_CAP),
        Column("capital_lat", "float", "capital latitude", unit="decimal degrees (WGS84)", source=_CAP, min=-90, max=90),
        Column("capital_lon", "float", "capital longitude", unit="decimal degrees (WGS84)", source=_CAP, min=-180, max=180),
        Column("capital_coord_source", "str",
               "file the capital coordinates come from, and the reason when not cow_capitals.csv or when a coordinate is suspect",
               source=_CAP),
        Column("dist_kabul_km", "float",
               "great-circle (haversine, R = 6371.0088 km) distance from the capital to Kabul (same capitals file)",
               unit="km", source=_CAP, min=0),
    ),
    key=("ccode", "year"),
)


def haversine_km(lat1, lon1, lat2, lon2, radius: float = EARTH_RADIUS_KM):
    """Great-circle distance in km between points given in decimal degrees (vectorised).

    The haversine form is used because it stays accurate for short distances, where the
    spherical law of cosines loses precision.
    """
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dphi = phi2 - phi1
    dlam = np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlam / 2) ** 2
    return 2 * radius * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def _whole_arc_minutes(x: pd.Series) -> pd.Series:
    minutes = x.abs() * 60
    return (minutes - minutes.round()).abs() < ARC_MINUTE_TOL * 60


def check_capital_coordinates(primary: pd.DataFrame, others: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Flag capital coordinates that are probably wrong.

    Two checks, both needing nothing but the provided files:

    * *cross-file disagreement*: the same capital (same code, name and start date) is more
      than :data:`MAX_CROSS_FILE_KM` away in another file -- one of the two geocodes is wrong;
    * *gazetteer fallback*: both coordinates are whole arc-minutes, the signature of a
      country- or region-level gazetteer point returned when a city lookup failed (this is how
      Brasilia ended up at Brazil's centroid, -10.333333, -53.2, in both peacesciencer files).

    Parameters
    ----------
    primary : DataFrame
        Capital spells ``ccode, capital, stdate, lat, lng``.
    others : dict of str -> DataFrame
        Alternative files (name -> spells with the same columns; a ``gwcode`` column is read
        as ``ccode``), used for the cross-file check and as replacement candidates.

    Returns
    -------
    DataFrame
        One row per suspect spell of ``primary``: ``ccode, capital, stdate, lat, lng, reason,
        alt_file, alt_lat, alt_lng``. The ``alt_*`` columns hold a replacement only when the
        evidence says which file is wrong: the primary point is a gazetteer fallback and
        another file has a city geocode, or at least two other files agree with each other
        against the primary. A bare two-file disagreement names no culprit, so it is flagged
        without a replacement; so is a suspect point no other file improves on.
    """
    key = ["ccode", "capital", "stdate"]
    base = primary[key + ["lat", "lng"]].copy()
    base["fallback"] = _whole_arc_minutes(base["lat"]) & _whole_arc_minutes(base["lng"])
    found = []
    candidates = []
    for name, other in others.items():
        alt = other.rename(columns={"gwcode": "ccode"})[key + ["lat", "lng"]].copy()
        alt["alt_ok"] = ~(_whole_arc_minutes(alt["lat"]) & _whole_arc_minutes(alt["lng"]))
        both = base.merge(alt, on=key, suffixes=("", "_alt"))
        both["gap_km"] = haversine_km(both["lat"], both["lng"], both["lat_alt"], both["lng_alt"])
        far = both[both["gap_km"] > MAX_CROSS_FILE_KM]
        for r in far.itertuples():
            found.append({"ccode": r.ccode, "capital": r.capital, "stdate": r.stdate,
                          "reason": f"{r.gap_km:.0f} km from the same capital in {name}"})
        ok = both[both["alt_ok"]].assign(alt_file=name)
        candidates.append(ok[key + ["alt_file", "lat_alt", "lng_alt"]])
    for r in base[base["fallback"]].itertuples():
        found.append({"ccode": r.ccode, "capital": r.capital, "stdate": r.stdate,
                      "reason": "both coordinates are whole arc-minutes (gazetteer point, not a city geocode; may be a country centroid)"})
    cols = key + ["lat", "lng", "reason", "alt_file", "alt_lat", "alt_lng"]
    if not found:
        return pd.DataFrame(columns=cols)
    flags = pd.DataFrame(found).groupby(key, sort=True)["reason"].agg("; ".join).reset_index()
    flags = flags.merge(base[key + ["lat", "lng"]], on=key, how="left")
    alts = pd.concat(candidates, ignore_index=True).rename(columns={"lat_alt": "alt_lat", "lng_alt": "alt_lng"})
    # a replacement must itself differ from the suspect value, else it repeats the same error
    alts = alts.merge(base[key + ["lat", "lng", "fallback"]].merge(flags[key], on=key), on=key)
    alts = alts[haversine_km(alts["lat"], alts["lng"], alts["alt_lat"], alts["alt_lng"]) > MAX_CROSS_FILE_KM]
    first = alts.groupby(key, sort=False)[["alt_lat", "alt_lng"]].transform("first")
    alts = alts.assign(
        n_alt=alts.groupby(key, sort=False)["alt_file"].transform("size"),
        spread=haversine_km(alts["alt_lat"], alts["alt_lng"], first["alt_lat"], first["alt_lng"]),
    )
    alts["max_spread"] = alts.groupby(key, sort=False)["spread"].transform("max")
    decisive = alts["fallback"] | ((alts["n_alt"] >= 2) & (alts["max_spread"] <= MAX_CROSS_FILE_KM))
    alts = alts[decisive].drop_duplicates(key)[key + ["alt_file", "alt_lat", "alt_lng"]]
    return flags.merge(alts, on=key, how="left")[cols]


def resolve_capitals(primary: pd.DataFrame, others: dict[str, pd.DataFrame], primary_name: str,
                     log: ExclusionLog) -> pd.DataFrame:
    """Apply :func:`check_capital_coordinates` and return corrected capital spells.

    A suspect coordinate with a replacement in another file is replaced and the row's
    ``capital_coord_source`` names that file and the reason; a suspect coordinate with no
    replacement is kept (it is still the only coordinate the sources give) and marked
    ``UNCORRECTED`` with the reason, so users can drop or down-weight it. Both cases are logged.
    """
    out = primary.copy()
    out["capital_coord_source"] = primary_name
    flags = check_capital_coordinates(primary, others)
    key = ["ccode", "capital", "stdate"]
    out = out.merge(flags[key + ["reason", "alt_file", "alt_lat", "alt_lng"]], on=key, how="left")
    fix = out["alt_file"].notna()
    suspect = out["reason"].notna() & ~fix
    log.exclude(primary_name, "capital coordinate replaced from another provided file", out[fix], ["ccode", "capital", "reason", "alt_file"])
    log.exclude(primary_name, "capital coordinate suspect, no replacement in any provided file: kept, marked UNCORRECTED",
                out[suspect], ["ccode", "capital", "lat", "lng", "reason"])
    out.loc[fix, "lat"] = out.loc[fix, "alt_lat"]
    out.loc[fix, "lng"] = out.loc[fix, "alt_lng"]
    out.loc[fix, "capital_coord_source"] = out.loc[fix, "alt_file"] + " (replaces " + primary_name + ": " + out.loc[fix, "reason"] + ")"
    out.loc[suspect, "capital_coord_source"] = primary_name + " UNCORRECTED (" + out.loc[suspect, "reason"] + ")"
    return out.drop(columns=["reason", "alt_file", "alt_lat", "alt_lng"])


def capitals_in_force(capitals: pd.DataFrame, state_years: pd.DataFrame) -> pd.DataFrame:
    """The capital spell in force on 1 July of each state-year.

    Returns ``ccode, year, capital, capital_lat, capital_lon, capital_coord_source``; a
    state-year with no spell in force is absent (the caller counts it as missing).
    """
    cap = capitals.assign(stdate=pd.to_datetime(capitals["stdate"]), enddate=pd.to_datetime(capitals["enddate"]))
    sy = state_years[["ccode", "year"]].assign(mid=pd.to_datetime(state_years["year"].astype(str) + "-07-01"))
    both = sy.merge(cap, on="ccode")
    both = both[(both["stdate"] <= both["mid"]) & (both["mid"] <= both["enddate"])]
    dup = both.duplicated(["ccode", "year"], keep=False)
    if dup.any():
        raise ValueError(f"overlapping capital spells for {both.loc[dup, ['ccode', 'year', 'capital']].head().to_dict('records')}")
    return both.rename(columns={"lat": "capital_lat", "lng": "capital_lon"})[
        ["ccode", "year", "capital", "capital_lat", "capital_lon", "capital_coord_source"]
    ]


def build_covariates(raw_dir: Path, log: ExclusionLog, start: int = START_YEAR, end: int = END_YEAR) -> pd.DataFrame:
    """Build the ``covariates`` table (see module docstring and :data:`COVARIATES_SCHEMA`).

    Source rows of other years are counted in the log as outside the window; a source row
    inside the window whose state is not a COW system member that year is logged with its
    codes.
    """
    raw_dir = Path(raw_dir)
    system = pd.read_csv(raw_dir / SYSTEM_FILE)
    out = system.loc[system["year"].between(start, end), ["ccode", "year", "stateabb"]].reset_index(drop=True)
    out["us"] = out["ccode"] == US_CCODE
    sources = {
        DEMOCRACY_FILE: {"polity2": "polity2", "v2x_polyarchy": "v2x_polyarchy"},
        NMC_FILE: {"cinc": "cinc", "milper": "milper"},
        GDPPOP_FILE: {"pwtrgdp": "gdp", "sd_pwtrgdp": "gdp_sd", "pwtpop": "population", "sd_pwtpop": "population_sd",
                      "mrgdppc": "gdp_per_capita", "sd_mrgdppc": "gdp_per_capita_sd"},
    }
    for path, columns in sources.items():
        src = pd.read_csv(raw_dir / path)
        outside = ~src["year"].between(start, end)
        log.exclude(str(path), f"year outside {start}-{end}", int(outside.sum()))
        src = src.loc[~outside, ["ccode", "year", *columns]].rename(columns=columns)
        unmatched = src.merge(out[["ccode", "year"]], on=["ccode", "year"], how="left", indicator=True)
        log.exclude(str(path), "state-year not in the COW state system", unmatched[unmatched["_merge"] == "left_only"], ["ccode", "year"])
        out = out.merge(src, on=["ccode", "year"], how="left", validate="one_to_one")

    cow_caps = pd.read_csv(raw_dir / COW_CAPITALS_FILE)
    gw_caps = pd.read_csv(raw_dir / GW_CAPITALS_FILE)
    capitals = resolve_capitals(cow_caps, {GW_CAPITALS_FILE.name: gw_caps}, COW_CAPITALS_FILE.name, log)
    in_force = capitals_in_force(capitals, out)
    out = out.merge(in_force, on=["ccode", "year"], how="left", validate="one_to_one")
    kabul = in_force[in_force["ccode"] == AFGHANISTAN_CCODE].set_index("year")
    missing_kabul = sorted(set(out["year"]) - set(kabul.index))
    if missing_kabul:
        raise ValueError(f"no Kabul (ccode {AFGHANISTAN_CCODE}) capital in force in {missing_kabul}")
    out["dist_kabul_km"] = haversine_km(
        out["capital_lat"], out["capital_lon"],
        kabul.loc[out["year"], "capital_lat"].to_numpy(), kabul.loc[out["year"], "capital_lon"].to_numpy(),
    )
    for col in COVARIATES_SCHEMA.column_names:
        if out[col].isna().any():
            log.exclude("covariates", f"{col} missing (kept as NaN)", out[out[col].isna()], ["ccode", "year"])
    return out[COVARIATES_SCHEMA.column_names]


def write_covariate_tables(raw_dir: Path, out_dir: Path, log: ExclusionLog) -> dict[str, str]:
    """Build and write ``covariates.csv``; returns table name -> sha256 of the CSV."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    table = build_covariates(raw_dir, log)
    files = (SYSTEM_FILE, DEMOCRACY_FILE, NMC_FILE, GDPPOP_FILE, COW_CAPITALS_FILE, GW_CAPITALS_FILE)
    sources = {str(f): sha256_file(raw_dir / f) for f in files}
    return {"covariates": write_table(table, out_dir / "covariates.csv", COVARIATES_SCHEMA, sources)}
