"""The arrays a model is built from, assembled from the derived tables (or simulated).

One :class:`ModelInputs` feeds every part: the alliance-item matrix (Part A), the padded
matrix of each state-year's alliances with the US (Part A, dyad depth), the country x year
agreement counts or ideal points (Part B), and the regression rows with outcome and
standardised controls (Part D). The regression rows come from the one sample rule of
:func:`~allypot.models.sample.select_sample`; every excluded row is counted with its reason
in ``exclusions``.

Two measurement choices are made here (MODEL.md Part A):

- the **alliance universe**, which alliances shared with the US count: ``defence_offence``
  (default) keeps those whose phase in force that year carries a defence or offence
  obligation, the military alliances Benson & Clinton scored; ``all`` keeps every ATOP
  alliance (OSCE/Helsinki 3740 then makes Russia and Belarus US allies, the Treaty of Amity
  and Cooperation 3755 China and North Korea) for sensitivity analysis. It decides the ally
  matrix (depth), ``us_ally`` (the control and the projection's weights) and so potential;
- the **item set** of the IRT: ``with_institutions`` (default) adds Leeds & Anac's military
  institutionalisation (``milinst``, 0..2: NATO 2, OAS Charter 3150 1, Rio Treaty 3075 0) to
  the nine Benson & Clinton items, the only item that separates NATO from the OAS Charter;
  ``benson_clinton`` keeps the nine. ``milinst`` is a rule-based recode of ATOP provisions
  that weights basing and integrated command, so it partly repeats them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from allypot.models.dyad_depth import ally_matrix_from_membership
from allypot.models.sample import US_CCODE, get_specification, select_sample

BENSON_CLINTON_ITEMS = ("milcontact", "commondef", "intcom", "milaid", "base", "contrib", "organ1", "ecaid", "secrecy")
ITEM_SETS = {
    "with_institutions": BENSON_CLINTON_ITEMS + ("milinst",),
    "benson_clinton": BENSON_CLINTON_ITEMS,
}
DEFAULT_ITEM_SET = "with_institutions"
ALLIANCE_UNIVERSES = ("defence_offence", "all")
DEFAULT_UNIVERSE = "defence_offence"
OBLIGATIONS = ("defense", "offense")  # ATOP flags of the phase in force, in us_alliance_membership
OUTCOMES = ("share", "troops_per_gdp", "troops_per_capita")


def us_alliances_in_universe(membership: pd.DataFrame, universe: str = DEFAULT_UNIVERSE) -> pd.DataFrame:
    """The (ccode, year, atopid) rows of ``us_alliance_membership`` that count in ``universe``."""
    if universe not in ALLIANCE_UNIVERSES:
        raise ValueError(f"alliance universe {universe!r} not in {ALLIANCE_UNIVERSES}")
    if universe == "all":
        return membership
    lacking = [c for c in OBLIGATIONS if c not in membership.columns]
    if lacking:
        raise ValueError(f"us_alliance_membership.csv lacks column(s) {lacking} needed by alliance universe "
                         f"{universe!r}; rebuild the tables (allypot data build)")
    return membership[(membership["defense"] == 1) | (membership["offense"] == 1)]


def with_universe_allies(panel: pd.DataFrame, us_alliances: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``panel`` whose ``us_ally`` and ``n_us_alliances`` count only ``us_alliances``.

    The panel's own columns count every ATOP alliance; the universe is a model choice, so
    the control follows it.
    """
    counts = us_alliances.groupby(["ccode", "year"])["atopid"].nunique()
    key = pd.MultiIndex.from_arrays([panel["ccode"].astype("int64"), panel["year"].astype("int64")])
    out = panel.copy()
    out["n_us_alliances"] = counts.reindex(key, fill_value=0).to_numpy().astype("int64")
    out["us_ally"] = out["n_us_alliances"] > 0
    return out


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
    alliance_universe: str = DEFAULT_UNIVERSE,
    item_set: str = DEFAULT_ITEM_SET,
    exclude_countries: tuple[int, ...] = (),
) -> ModelInputs:
    """Assemble the model inputs for one specification from the derived tables.

    ``alliance_universe`` (:data:`ALLIANCE_UNIVERSES`) and ``item_set`` (:data:`ITEM_SETS`)
    are the measurement choices of the module docstring. ``exclude_countries`` leaves states
    out of the sample altogether (their regression rows and, as they are no longer sample
    countries, their vote paths).
    """
    from allypot.data.loaders import load_table

    controls = list(get_specification(specification).design_controls)
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} not in {OUTCOMES}")
    if item_set not in ITEM_SETS:
        raise ValueError(f"item set {item_set!r} not in {sorted(ITEM_SETS)}")
    item_names = list(ITEM_SETS[item_set])
    panel = load_table("panel", tables_dir, filename=panel_file)
    items = load_table("alliance_items", tables_dir)
    lacking = [c for c in item_names if c not in items.columns]
    if lacking:
        raise ValueError(f"alliance_items.csv lacks item column(s) {lacking} needed by item set {item_set!r}; "
                         "rebuild the tables (allypot data build)")
    membership = us_alliances_in_universe(load_table("us_alliance_membership", tables_dir), alliance_universe)
    agreement = load_table("un_agreement", tables_dir)
    ideal = load_table("ideal_points", tables_dir)

    chosen = select_sample(with_universe_allies(panel, membership), [outcome, *controls], years, exclude_countries)
    sample = chosen.rows
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
        if r.ccode == US_CCODE:
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
        item_names=item_names,
        items=items[item_names].astype("float64").to_numpy(),
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
        exclusions=chosen.exclusions,
    )
