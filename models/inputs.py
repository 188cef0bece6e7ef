"""The arrays a model is built from, assembled from the derived tables (or simulated).

One :class:`ModelInputs` feeds every part: the alliance-item matrix (Part A), the padded
matrix of each state-year's alliances with the US (Part A, dyad depth), the country x year
agreement counts or ideal points (Part B), and the regression rows with outcome and
standardised controls (Part D). The regression sample is the complete cases of the chosen
specification; every excluded row is counted with its reason in ``exclusions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from allypot.models.dyad_depth import ally_matrix_from_membership

ITEMS = ("milcontact", "commondef", "intcom", "milaid", "base", "contrib", "organ1", "ecaid", "secrecy")

# Control sets of the published specifications as MODEL.md Part D defines them, in the
# panel's column names. (The replication code itself used agreement share, a democracy dummy
# and annual casualties: inference/replicate.py reproduces that exactly; the joint model
# follows the design.) "fixed_effects" is "political" with country effects required; the
# joint model has country and year effects by default in every specification.
POLITICAL = ["ideal_distance", "polity2", "casualties_cum", "us_ally", "cinc"]
SPECIFICATIONS: dict[str, dict] = {
    "baseline": {"controls": [], "requires_country_effects": False},
    "political": {"controls": POLITICAL, "requires_country_effects": False},
    "all": {"controls": POLITICAL + ["log_gdp", "log_gdp_per_capita", "log_dist_kabul"], "requires_country_effects": False},
    "fixed_effects": {"controls": POLITICAL, "requires_country_effects": True},
}
# derived controls: name -> (source column, transform)
LOG_CONTROLS = {"log_gdp": "gdp", "log_gdp_per_capita": "gdp_per_capita", "log_dist_kabul": "dist_kabul_km"}
OUTCOMES = ("share", "troops_per_gdp", "troops_per_capita")


@dataclass
class ModelInputs:
    rows: pd.DataFrame  # regression sample: ccode, year (one row per state-year)
    countries: np.ndarray
    years: np.ndarray
    country_idx: np.ndarray
    year_idx: np.ndarray
    alliances: np.ndarray
    item_names: list[str]
    items: np.ndarray  # (alliance, item), NaN = not coded
    ally_matrix: np.ndarray  # (row, k_max) alliance positions, -1 = padding
    n_votes: np.ndarray  # (country, year)
    n_agree: np.ndarray
    ideal: np.ndarray  # (country, year), NaN = none
    ideal_sd: np.ndarray
    us_ideal: np.ndarray  # (year,)
    us_ideal_sd: np.ndarray
    control_names: list[str]
    controls: np.ndarray  # (row, control), standardised
    control_centre: np.ndarray
    control_scale: np.ndarray
    outcome: np.ndarray
    outcome_name: str = "share"
    exclusions: list[tuple[str, int]] = field(default_factory=list)

    @property
    def us_ally(self) -> np.ndarray:
        return (self.ally_matrix >= 0).any(axis=1)

    def coords(self) -> dict:
        return {
            "alliance": self.alliances,
            "item": list(self.item_names),
            "country": self.countries,
            "year": self.years,
            "row": np.arange(len(self.rows)),
            "control": list(self.control_names),
        }

    def with_controls(self, names: list[str]) -> "ModelInputs":
        """The same inputs with a subset of the controls (used by the specification grid)."""
        keep = [self.control_names.index(n) for n in names]
        return replace(self, control_names=list(names), controls=self.controls[:, keep],
                        control_centre=self.control_centre[keep], control_scale=self.control_scale[keep])


def standardise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre and scale columns; a constant column keeps scale 1 so it cannot divide by zero."""
    centre = values.mean(axis=0)
    scale = values.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return (values - centre) / scale, centre, scale


def inputs_from_tables(
    tables_dir: Path,
    specification: str = "political",
    outcome: str = "share",
    panel_file: str = "panel.csv",
    years: tuple[int, int] | None = None,
) -> ModelInputs:
    """Assemble the model inputs for one specification from the derived tables."""
    from allypot.data.loaders import load_table

    if specification not in SPECIFICATIONS:
        raise ValueError(f"specification {specification!r} not in {sorted(SPECIFICATIONS)}")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} not in {OUTCOMES}")
    panel = load_table("panel", tables_dir, filename=panel_file)
    items = load_table("alliance_items", tables_dir)
    membership = load_table("us_alliance_membership", tables_dir)
    agreement = load_table("un_agreement", tables_dir)
    ideal = load_table("ideal_points", tables_dir)

    exclusions: list[tuple[str, int]] = []
    sample = panel
    if years is not None:
        outside = ~sample["year"].between(*years)
        exclusions.append((f"outside years {years[0]}-{years[1]}", int(outside.sum())))
        sample = sample[~outside]
    is_us = sample["us"].astype(bool)
    exclusions.append(("the United States (coalition leader, not a contributor)", int(is_us.sum())))
    sample = sample[~is_us].copy()
    for name, source in LOG_CONTROLS.items():
        with np.errstate(divide="ignore"):
            sample[name] = np.log(sample[source].astype("float64").where(sample[source] > 0))
    controls = SPECIFICATIONS[specification]["controls"]
    for column in [outcome, *controls]:
        missing = sample[column].isna()
        exclusions.append((f"{column} missing", int(missing.sum())))
        sample = sample[~missing]
    sample = sample.sort_values(["ccode", "year"]).reset_index(drop=True)
    if sample.empty:
        raise ValueError(f"no complete state-years for specification {specification!r}")

    countries = np.sort(sample["ccode"].astype(int).unique())
    year_values = np.arange(int(sample["year"].min()), int(sample["year"].max()) + 1)
    country_pos = {c: i for i, c in enumerate(countries)}
    year_pos = {y: t for t, y in enumerate(year_values)}

    items = items.sort_values("atopid").reset_index(drop=True)
    alliance_pos = {int(a): i for i, a in enumerate(items["atopid"])}
    member_sets: dict[tuple[int, int], list[int]] = {}
    for (c, y), grp in membership.groupby(["ccode", "year"]):
        member_sets[(int(c), int(y))] = [int(a) for a in grp["atopid"]]
    unknown = {a for s in member_sets.values() for a in s} - set(alliance_pos)
    if unknown:
        raise ValueError(f"us_alliance_membership names alliances missing from alliance_items: {sorted(unknown)}")
    row_keys = list(zip(sample["ccode"].astype(int), sample["year"].astype(int)))

    n_votes = np.zeros((len(countries), len(year_values)), dtype="int64")
    n_agree = np.zeros_like(n_votes)
    for r in agreement.itertuples():
        if r.ccode in country_pos and r.year in year_pos:
            n_votes[country_pos[r.ccode], year_pos[r.year]] = r.n_votes
            n_agree[country_pos[r.ccode], year_pos[r.year]] = r.n_agree

    ideal_mat = np.full(n_votes.shape, np.nan)
    ideal_sd = np.full(n_votes.shape, np.nan)
    us_ideal = np.full(len(year_values), np.nan)
    us_sd = np.full(len(year_values), np.nan)
    for r in ideal.itertuples():
        if r.year not in year_pos:
            continue
        sd = (r.ideal_q95 - r.ideal_q05) / 3.29  # 5-95% interval of a normal spans 3.29 SD
        if r.ccode == 2:
            us_ideal[year_pos[r.year]], us_sd[year_pos[r.year]] = r.ideal_point, sd
        elif r.ccode in country_pos:
            ideal_mat[country_pos[r.ccode], year_pos[r.year]] = r.ideal_point
            ideal_sd[country_pos[r.ccode], year_pos[r.year]] = sd

    raw_controls = sample[controls].astype("float64").to_numpy() if controls else np.zeros((len(sample), 0))
    z, centre, scale = standardise(raw_controls)
    return ModelInputs(
        rows=sample[["ccode", "year"]].astype(int),
        countries=countries,
        years=year_values,
        country_idx=sample["ccode"].map(country_pos).to_numpy(),
        year_idx=sample["year"].map(year_pos).to_numpy(),
        alliances=items["atopid"].astype(int).to_numpy(),
        item_names=list(ITEMS),
        items=items[list(ITEMS)].astype("float64").to_numpy(),
        ally_matrix=ally_matrix_from_membership(row_keys, member_sets, alliance_pos),
        n_votes=n_votes,
        n_agree=n_agree,
        ideal=ideal_mat,
        ideal_sd=ideal_sd,
        us_ideal=us_ideal,
        us_ideal_sd=us_sd,
        control_names=list(controls),
        controls=z,
        control_centre=centre,
        control_scale=scale,
        outcome=sample[outcome].astype("float64").to_numpy(),
        outcome_name=outcome,
        exclusions=[e for e in exclusions if e[1] > 0],
    )
