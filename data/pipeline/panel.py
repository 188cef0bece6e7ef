"""The rebuilt country-year panel, 2001-2014: one row per COW state-year.

Steps
1. Start from every COW state-year (covariates.csv: the state system, democracy,
   capabilities, GDP/population, distance to Kabul).
2. Troops in Afghanistan (troops_country_year.csv). A state-year that no source lists gets
   ``troops_afghanistan = 0`` with ``troops_listed = false``: both sources enumerate every
   contributing nation, so absence from them means no troops, not an unknown figure.
3. Active armed forces (armed_forces.csv) and the outcomes: ``share`` = troops / armed
   forces (undefined where armed forces are missing or 0), troops per GDP and per capita.
4. Casualties (casualties.csv): the source lists 28 nations; an unlisted state had none,
   except the states with known deaths but no column there
   (``casualties.DEATHS_WITHOUT_COLUMN``),
   which stay missing.
5. US alliance ties (us_alliance_membership.csv) in the configured universe (``us_ally``) and
   in the "all" universe (``us_ally_all``), UN agreement counts, ideal points.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from allypot.data.pipeline.alliances import AllianceRules, in_universe, load_alliance_rules
from allypot.data.pipeline.casualties import DEATHS_WITHOUT_COLUMN
from allypot.data.pipeline.crosswalk import END_YEAR, START_YEAR
from allypot.data.schema import (
    Column,
    ExclusionLog,
    TableSchema,
    read_table,
    sha256_file,
    write_table,
)

# share = troops / armed forces, written to 10 significant digits; a user's table may round
# it to 3 (relative error up to 0.5%), more is a different number
SHARE_RTOL = 5e-3


def _share_disagrees(panel: pd.DataFrame) -> pd.Series:
    """Rows whose share is not troops_afghanistan / armed_forces within rounding."""
    ratio = panel["troops_afghanistan"].astype("float64") / panel["armed_forces"].astype("float64")
    present = panel["share"].notna() & panel["troops_afghanistan"].notna() & panel["armed_forces"].notna()
    return present & ~np.isclose(panel["share"], ratio, rtol=SHARE_RTOL, atol=0)


PANEL_SCHEMA = TableSchema(
    name="panel",
    description=(
        "Rebuilt country-year panel 2001-2014, one row per COW state-year (the US flagged). "
        "Outcome: share of active armed forces in Afghanistan (ISAF + OEF)."
    ),
    key=("ccode", "year"),
    columns=(
        Column("ccode", "int", "COW state code", nullable=False),
        Column("year", "int", "calendar year", unit="year", nullable=False, min=START_YEAR, max=END_YEAR),
        Column("stateabb", "str", "COW state abbreviation", source="COW"),
        Column("us", "bool", "the row is the United States (coalition leader)", nullable=False),
        Column("troops_afghanistan", "float", "troops in Afghanistan (ISAF + OEF); 0 when no source lists the state",
               unit="persons", source="NATO placemats, IISS Military Balance", min=0),
        Column("troops_isaf", "float", "ISAF troops, from the source chosen by the build rules", unit="persons", min=0),
        Column("troops_oef", "float", "OEF troops in Afghanistan (IISS)", unit="persons", min=0),
        Column("troops_listed", "bool", "a source lists the state in Afghanistan that year", nullable=False),
        Column("troops_source", "str", "placemat date or IISS edition behind the troop figure"),
        Column("armed_forces", "int", "active armed forces", unit="persons", source="IISS; COW milper fallback", min=0),
        Column("armed_forces_source", "str", "IISS edition or cow_milper"),
        Column("armed_forces_fallback", "bool", "armed forces from the COW milper fallback"),
        Column("share", "float", "troops in Afghanistan / active armed forces", unit="proportion", min=0, max=1),
        Column("troops_per_gdp", "float", "troops per billion of GDP", unit="persons per bn 2017 int. $ PPP", min=0),
        Column("troops_per_capita", "float", "troops per million population", unit="persons per million", min=0),
        Column("casualties", "float", "coalition military deaths in Afghanistan that year", unit="persons",
               source="afghan_casualties.csv (CPASS)", min=0),
        Column("casualties_cum", "float", "deaths since 2001, this year included", unit="persons", min=0),
        Column("polity2", "float", "Polity5 polity2", unit="-10..10", source="isard cw_democracy", min=-10, max=10),
        Column("v2x_polyarchy", "float", "V-Dem electoral democracy", unit="0..1", source="isard cw_democracy", min=0, max=1),
        Column("cinc", "float", "COW composite index of national capability", unit="share of system", min=0, max=1),
        Column("gdp", "float", "real GDP (latent estimate, posterior mean)", unit="millions of 2017 int. $ PPP",
               source="isard cw_gdppop (Fariss et al.)", min=0),
        Column("gdp_per_capita", "float", "real GDP per capita (separate series)", unit="2011 int. $ PPP", min=0),
        Column("population", "float", "population (latent estimate, posterior mean)", unit="millions", min=0),
        Column("dist_kabul_km", "float", "great-circle distance capital-Kabul", unit="km", min=0),
        Column("us_ally", "bool",
               "shares with the US, that year, at least one alliance of the build's universe (meta 'rules'; default "
               "defence_offence: the phase in force carries a defence or offence obligation)", nullable=False),
        Column("n_us_alliances", "int", "number of alliances of the build's universe shared with the US that year", min=0),
        Column("us_ally_all", "bool",
               "shares at least one ATOP alliance of any kind with the US that year (universe 'all', incl. "
               "non-aggression and consultation pacts); for sensitivity analysis", nullable=False),
        Column("n_us_alliances_all", "int", "number of ATOP alliances of any kind shared with the US that year", min=0),
        Column("un_votes", "int", "UNGA roll calls both the state and the US voted on", unit="votes", min=0),
        Column("un_agree", "int", "of those, votes identical to the US vote", unit="votes", min=0),
        Column("un_agreement_share", "float", "un_agree / un_votes", unit="proportion", min=0, max=1),
        Column("ideal_point", "float", "Bailey-Strezhnev-Voeten ideal point", source="IdealpointestimatesAll_Jun2024"),
        Column("us_ideal_point", "float", "US ideal point, same year"),
        Column("ideal_distance", "float", "|ideal_point - us_ideal_point|", min=0),
    ),
    row_checks=(
        ("un_agree exceeds un_votes", lambda d: d["un_agree"] > d["un_votes"]),
        (f"column 'share' is not troops_afghanistan / armed_forces (within {SHARE_RTOL:.1%})", _share_disagrees),
    ),
)

INPUT_TABLES = ("covariates", "troops_country_year", "armed_forces", "casualties", "us_alliance_membership",
                "un_agreement", "ideal_points")


def scaled_outcomes(troops: pd.Series, gdp: pd.Series, population: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The robustness outcomes: troops per billion of GDP and per million population."""
    gdp, population = gdp.astype("float64"), population.astype("float64")
    return (troops / (gdp / 1000.0)).where(gdp > 0), (troops / population).where(population > 0)


def read_input_tables(tables_dir: Path) -> dict[str, pd.DataFrame]:
    """The component tables the panel is joined from, read and checked."""
    from allypot.data.catalog import SCHEMAS

    return {name: read_table(Path(tables_dir) / f"{name}.csv", SCHEMAS[name]) for name in INPUT_TABLES}


def build_panel(tables: dict[str, pd.DataFrame], log: ExclusionLog, universe: str = "defence_offence",
                table: str = "panel.csv") -> pd.DataFrame:
    """Join the component tables onto the COW state-year skeleton.

    ``table`` names the file the panel becomes, in the exclusion log (an alternative panel is
    built by this function too).

    ``us_ally``/``n_us_alliances`` count the alliances of ``universe`` (see
    ``alliances.UNIVERSES``); ``us_ally_all``/``n_us_alliances_all`` count every alliance.
    """
    key = ["ccode", "year"]
    panel = tables["covariates"][key + ["stateabb", "us", "polity2", "v2x_polyarchy", "cinc", "gdp",
                                        "gdp_per_capita", "population", "dist_kabul_km"]].copy()
    skeleton = set(zip(panel["ccode"], panel["year"]))

    troops = tables["troops_country_year"]
    outside = ~pd.Series([k in skeleton for k in zip(troops["ccode"], troops["year"])], index=troops.index)
    log.exclude("troops_country_year.csv", "nation-year not a COW state-year 2001-2014", troops[outside], ["ccode", "year"])
    panel = panel.merge(troops[~outside], on=key, how="left")
    panel["troops_listed"] = panel["troops_afghanistan"].notna()
    panel["troops_afghanistan"] = panel["troops_afghanistan"].fillna(0.0)

    panel = panel.merge(tables["armed_forces"], on=key, how="left")
    forces = panel["armed_forces"].astype("float64")
    troops_f = panel["troops_afghanistan"].astype("float64")
    panel["share"] = (troops_f / forces).where(forces > 0)
    over = panel["share"] > 1
    if over.any():
        raise ValueError(
            "troops exceed armed forces for " + ", ".join(f"{c}/{y}" for c, y in panel.loc[over, key].itertuples(index=False))
        )
    panel["troops_per_gdp"], panel["troops_per_capita"] = scaled_outcomes(troops_f, panel["gdp"], panel["population"])

    cas = tables["casualties"]
    panel = panel.merge(cas, on=key, how="left")
    listed = set(cas["ccode"])
    unlisted = ~panel["ccode"].isin(listed) & ~panel["ccode"].isin(DEATHS_WITHOUT_COLUMN)
    panel.loc[unlisted, ["casualties", "casualties_cum"]] = 0.0

    membership = tables["us_alliance_membership"]
    for suffix, rows in (("", membership[in_universe(membership, universe)]), ("_all", membership)):
        counts = rows.groupby(key).size().rename(f"n_us_alliances{suffix}").reset_index()
        panel = panel.merge(counts, on=key, how="left")
        panel[f"n_us_alliances{suffix}"] = panel[f"n_us_alliances{suffix}"].fillna(0).astype("Int64")
        panel[f"us_ally{suffix}"] = panel[f"n_us_alliances{suffix}"] > 0

    agreement = tables["un_agreement"].rename(columns={"n_votes": "un_votes", "n_agree": "un_agree"})
    panel = panel.merge(agreement, on=key, how="left")
    panel["un_agreement_share"] = panel["un_agree"] / panel["un_votes"]
    ideal = tables["ideal_points"][key + ["ideal_point", "us_ideal_point", "ideal_distance"]]
    panel = panel.merge(ideal, on=key, how="left")
    for column in ("share", "polity2", "un_votes", "ideal_point", "gdp", "dist_kabul_km"):
        missing = panel[panel[column].isna()]
        log.exclude(table, f"{column} missing (kept as an empty cell)", missing, ["ccode", "year"])
    return panel[PANEL_SCHEMA.column_names]


def write_panel(tables_dir: Path, out_dir: Path, log: ExclusionLog, rules: AllianceRules | None = None) -> Path:
    """Build and write panel.csv; the alliance rules (default: build_config.toml) go to its meta 'rules'."""
    rules = rules or load_alliance_rules()
    tables = read_input_tables(tables_dir)
    panel = build_panel(tables, log, rules.universe)
    sources = {f"data/tables/{n}.csv": sha256_file(Path(tables_dir) / f"{n}.csv") for n in INPUT_TABLES}
    path = Path(out_dir) / "panel.csv"
    write_table(panel, path, PANEL_SCHEMA, sources)
    meta_path = path.with_suffix(".meta.json")
    meta = json.loads(meta_path.read_text())
    meta["rules"] = {"alliance_universe": rules.universe}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return path


def coverage_by_year(panel: pd.DataFrame) -> pd.DataFrame:
    """Per year: states, states with troops > 0 (US excluded and included), defined shares."""
    us = panel["us"].astype(bool)
    others = panel[~us].groupby("year")
    us_troops = panel[us].set_index("year")["troops_afghanistan"]
    table = pd.DataFrame({
        "states": others.size(),
        "contributors": others["troops_afghanistan"].apply(lambda s: int((s > 0).sum())),
        "share_defined": others["share"].apply(lambda s: int(s.notna().sum())),
        "troops_excl_us": others["troops_afghanistan"].sum().round().astype(int),
        "troops_us": us_troops.round().astype(int),
        "armed_forces_fallback": others["armed_forces_fallback"].apply(lambda s: int(s.fillna(False).astype(bool).sum())),
    })
    table.index.name = "year"
    return table
