"""Alternative panels: the rebuilt panel under another build rule, for sensitivity analysis.

Whether the alliance-potential effect depends on how the outcome was built is a grid axis
(``data.panel``), and a fresh clone has no raw files to rebuild from, so the build writes one
panel per alternative beside ``panel.csv``. Each is made from the staged tables alone (no raw
file is read again) and has the panel's schema, so every model, mode and check reads it as it
reads ``panel.csv``; only the columns its rule is about differ:

- ``panel_placemat_<rule>.csv``: the troop figures under each NATO placemat rule other than the
  build's own (``[troops] placemat_rule`` of ``data/build_config.toml``: nearest, mean, max), the
  other troop rules unchanged. Gannon & Kent took the year's maximum.
- ``panel_published_share.csv``: the published contribution (Gannon & Kent's share of armed
  forces, troops and armed forces, false zeros and lost placemat figures included) in place of
  the rebuilt one; troops per GDP and per capita are the published troops over the rebuilt GDP
  and population, and every control and measurement input stays rebuilt. A state-year the
  published panel lacks, or gives no share, has no outcome and leaves the regression as "share
  missing"; the counts are in the table's meta.

Each variant's ``.meta.json`` records the rule, the state-years whose outcome differs from
``panel.csv`` and its own exclusion log, so nothing it leaves out goes uncounted; the rows the
main build excludes stay in ``exclusions.csv``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
from allypot.data.pipeline import troops
from allypot.data.pipeline.alliances import AllianceRules, load_alliance_rules
from allypot.data.pipeline.panel import INPUT_TABLES, PANEL_SCHEMA, build_panel, read_input_tables, scaled_outcomes
from allypot.data.pipeline.published import PUBLISHED_SCHEMA
from allypot.data.schema import ExclusionLog, read_table, sha256_file, write_table

KEY = ["ccode", "year"]
PUBLISHED_SHARE_FILE = "panel_published_share.csv"
# the panel columns that describe the contribution; the published variant replaces all of them
CONTRIBUTION_COLUMNS = ("troops_afghanistan", "troops_isaf", "troops_oef", "troops_listed", "troops_source",
                        "armed_forces", "armed_forces_source", "armed_forces_fallback", "share",
                        "troops_per_gdp", "troops_per_capita")
PUBLISHED_SOURCE = "published panel"


def placemat_file(rule: str) -> str:
    return f"panel_placemat_{rule}.csv"


def variant_files(rules: troops.TroopRules | None = None) -> dict[str, str]:
    """Every alternative panel the build writes: file name -> what differs from ``panel.csv``."""
    rules = rules or troops.load_rules()
    files = {placemat_file(rule): f"troop figures under placemat_rule = {rule!r} (build default {rules.placemat_rule!r})"
             for rule in troops.PLACEMAT_RULES if rule != rules.placemat_rule}
    files[PUBLISHED_SHARE_FILE] = "the published contribution (Gannon & Kent's share, troops, armed forces)"
    return files


def placemat_panel(tables_dir: Path, rule: str, troop_rules: troops.TroopRules, universe: str,
                   log: ExclusionLog) -> pd.DataFrame:
    """The rebuilt panel with troops recombined from the observations under placemat ``rule``."""
    variant_rules = dataclasses.replace(troop_rules, placemat_rule=rule)
    inputs = read_input_tables(tables_dir)
    inputs["troops_country_year"] = troops.build_troops_country_year(
        read_table(Path(tables_dir) / "troop_observations.csv", troops.TROOP_OBSERVATIONS_SCHEMA), variant_rules, log)
    return build_panel(inputs, log, universe, table=placemat_file(rule))


def published_share_panel(panel: pd.DataFrame, published: pd.DataFrame, log: ExclusionLog) -> pd.DataFrame:
    """``panel`` with the published panel's contribution in place of its own (module docstring)."""
    pub = published[KEY + ["troops_afghanistan", "armed_forces", "share"]].astype({"ccode": "int64", "year": "int64"})
    keys = panel[KEY].astype("int64")
    outside = ~pd.MultiIndex.from_frame(pub[KEY]).isin(pd.MultiIndex.from_frame(keys))
    log.exclude("published_panel.csv", "state-year not in the rebuilt panel (not a COW state-year 2001-2014, or the "
                "package's own code)", pub[outside], KEY)
    merged = keys.merge(pub[~outside], on=KEY, how="left", validate="one_to_one")
    out = panel.copy()
    troops_f = merged["troops_afghanistan"].astype("float64").to_numpy()
    forces = merged["armed_forces"].astype("float64").to_numpy()
    out["troops_afghanistan"] = troops_f
    out["troops_isaf"] = np.nan  # the published numerator mixes placemat ISAF and IISS totals: no ISAF part
    out["troops_oef"] = np.nan
    out["troops_listed"] = ~np.isnan(troops_f)
    out["troops_source"] = pd.Series(np.where(np.isnan(troops_f), None, f"{PUBLISHED_SOURCE} troops_afghan_final"),
                                     index=out.index, dtype="string")
    out["armed_forces"] = pd.array(np.where(np.isnan(forces), None, forces), dtype="Int64")
    out["armed_forces_source"] = pd.Series(np.where(np.isnan(forces), None, f"{PUBLISHED_SOURCE} troops_total"),
                                           index=out.index, dtype="string")
    out["armed_forces_fallback"] = False
    out["share"] = merged["share"].astype("float64").to_numpy()
    out["troops_per_gdp"], out["troops_per_capita"] = scaled_outcomes(out["troops_afghanistan"], out["gdp"],
                                                                      out["population"])
    lost = out["share"].isna() & panel["share"].notna()
    log.exclude(PUBLISHED_SHARE_FILE, "rebuilt share present, no published share (the state-year has no outcome "
                "in this panel)", out[lost], KEY + ["stateabb"])
    return out


def outcome_differences(variant: pd.DataFrame, panel: pd.DataFrame) -> dict[str, int]:
    """How many state-years' share a variant changes, gains or loses against ``panel.csv``."""
    both_shares = panel[KEY + ["share"]].merge(variant[KEY + ["share"]], on=KEY, how="outer", suffixes=("", "_variant"))
    b, a = (both_shares[c].astype("float64").to_numpy() for c in ("share", "share_variant"))
    both = ~np.isnan(a) & ~np.isnan(b)
    return {"share_differs": int((both & ~np.isclose(a, b, rtol=1e-9, atol=0)).sum()),
            "share_only_here": int((~np.isnan(a) & np.isnan(b)).sum()),
            "share_only_in_panel": int((np.isnan(a) & ~np.isnan(b)).sum())}


def write_panel_variants(tables_dir: Path, out_dir: Path, troop_rules: troops.TroopRules | None = None,
                         alliance_rules: AllianceRules | None = None) -> dict[str, Path]:
    """Write every :func:`variant_files` panel from the tables in ``tables_dir`` (``panel.csv``
    included) into ``out_dir``; return their paths."""
    tables_dir, out_dir = Path(tables_dir), Path(out_dir)
    troop_rules = troop_rules or troops.load_rules()
    universe = (alliance_rules or load_alliance_rules()).universe
    panel = read_table(tables_dir / "panel.csv", PANEL_SCHEMA)
    input_sources = {f"data/tables/{n}.csv": sha256_file(tables_dir / f"{n}.csv")
                     for n in (*INPUT_TABLES, "troop_observations") if n != "troops_country_year"}
    paths = {}
    for name, description in variant_files(troop_rules).items():
        log = ExclusionLog()
        if name == PUBLISHED_SHARE_FILE:
            published = read_table(tables_dir / "published_panel.csv", PUBLISHED_SCHEMA)
            frame = published_share_panel(panel, published, log)
            sources = {"data/tables/panel.csv": sha256_file(tables_dir / "panel.csv"),
                       "data/tables/published_panel.csv": sha256_file(tables_dir / "published_panel.csv")}
            rule = {"contribution": "published"}
        else:
            placemat_rule = name.removeprefix("panel_placemat_").removesuffix(".csv")
            frame = placemat_panel(tables_dir, placemat_rule, troop_rules, universe, log)
            sources = input_sources
            rule = {"placemat_rule": placemat_rule}
        path = out_dir / name
        write_table(frame[PANEL_SCHEMA.column_names], path, PANEL_SCHEMA, sources)
        meta_path = path.with_suffix(".meta.json")
        meta = json.loads(meta_path.read_text())
        meta |= {"description": f"Alternative panel: {description}; otherwise panel.csv.",
                 "variant_of": "panel.csv", "rules": {"alliance_universe": universe} | rule,
                 "differs_from_panel": outcome_differences(frame, panel),
                 "exclusions": log.to_frame().to_dict("records")}
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
        paths[name] = path
    return paths
