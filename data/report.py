"""The data report: coverage of the rebuilt panel and where it parts from the published one.

The replication rests on one claim about the data: the published Gannon & Kent panel has
false zeros and other defects in its dependent variable (raw ``afghanistan/SOURCES.md``
§1.3), and the rebuilt panel repairs them. This module makes that claim checkable cell by
cell. :func:`compare_contributions` lists every state-year where the rebuilt and published
contribution variables (troops in Afghanistan, share of armed forces) disagree and says
why, from the columns of the two panels alone; :func:`write_data_report` writes it, with
coverage, exclusions and missingness, to ``report.md`` plus figures.

Computing and drawing are separate: ``*_table``/``compare_*`` functions return frames,
``plot_*`` functions take those frames and return a matplotlib Figure.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from allypot.data.pipeline.alliances import in_universe  # noqa: E402
from allypot.data.pipeline.panel import coverage_by_year  # noqa: E402
from allypot.data.catalog import SCHEMAS  # noqa: E402
from allypot.data.loaders import load_table  # noqa: E402
from allypot.data.schema import read_table  # noqa: E402

from allypot.markdown import markdown_table

# Two figures for the same cell that differ by less than this fraction of the larger one
# agree: rounding in the sources (IISS prints "c.1,550") is not a disagreement.
RTOL = 0.01

# Reasons for a disagreement, in the order they are tested: the first that fits is kept.
ONLY_REBUILT = "state-year only in the rebuilt panel"
ONLY_PUBLISHED = "state-year only in the published panel"
NO_IISS_YEAR = "published 0 in a year without IISS deployment data (no edition), rebuilt from placemats"
FALSE_ZERO = "published zero, sources show troops (false zero)"
UNAMA = "published counts UNAMA personnel, rebuild does not"
PUB_IISS_ONLY = "published IISS figure the rebuild does not count (mission/location rules)"
MERGE_LOST = "placemat lost in published merge: published IISS vs rebuilt placemat snapshot"
MAX_VS_NEAREST = "published yearly max vs rebuilt nearest-to-1-Dec snapshot"
OEF_ADDED = "rebuilt adds IISS OEF troops to placemat ISAF"
PUB_PLACEMAT_REB_IISS = "published placemat max vs rebuilt IISS (nation absent from chosen snapshot)"
IISS_CODING = "both from IISS: rows/missions coded differently"
INFINITE_SHARE = "published share infinite/undefined (zero armed forces)"
DENOMINATOR = "denominator differs (armed forces)"
OTHER = "other"

# panel columns whose missingness the report tabulates
KEY_COLUMNS = ("troops_afghanistan", "armed_forces", "share", "casualties", "polity2", "v2x_polyarchy", "cinc",
               "gdp", "population", "dist_kabul_km", "un_agreement_share", "ideal_point", "ideal_distance")

FIGURES = {
    "coverage": "coverage_by_year.png",
    "contributors": "contributors_by_year.png",
    "disagreements": "disagreements_by_reason_year.png",
    "missingness": "missingness_by_year.png",
}


def _differs(a: pd.Series, b: pd.Series, rtol: float = RTOL) -> pd.Series:
    """True where two numeric columns disagree: one missing, or apart by more than ``rtol``."""
    a, b = a.astype("float64"), b.astype("float64")
    one_missing = a.isna() != b.isna()
    scale = np.maximum(a.abs(), b.abs())
    apart = (a - b).abs() > rtol * scale
    return one_missing | (apart.fillna(False) & a.notna() & b.notna())


def coverage_table(panel: pd.DataFrame) -> pd.DataFrame:
    """Per year: :func:`coverage_by_year` plus contributors with the US and the troop sources.

    ``troops_source`` starts with ``placemat`` or ``iiss``; counting contributors by it shows
    which years rest on which source (2001-2006 IISS only, 2014 placemats only).
    """
    table = coverage_by_year(panel)
    us = panel["us"].astype(bool)
    us_in = panel[us].set_index("year")["troops_afghanistan"].gt(0).astype(int)
    table.insert(2, "contributors_incl_us", table["contributors"] + us_in.reindex(table.index, fill_value=0))
    contrib = panel[panel["troops_afghanistan"] > 0]
    source = contrib["troops_source"].astype("string").str.split().str[0].fillna("none")
    by_source = pd.crosstab(contrib["year"], source).reindex(table.index, fill_value=0)
    for name in ("placemat", "iiss"):
        table[f"source_{name}"] = by_source[name] if name in by_source else 0
    return table


def published_contributors(published: pd.DataFrame) -> pd.DataFrame:
    """Per year, the published panel's contributor count and non-US troop total (US = ccode 2 there)."""
    others = published[published["ccode"] != 2].groupby("year")["troops_afghanistan"]
    return pd.DataFrame({
        "contributors": others.apply(lambda s: int((s > 0).sum())),
        "troops_excl_us": others.sum().round().astype(int),
    })


def _published_source(published: pd.DataFrame) -> pd.Series:
    """Where each published troop figure came from: the placemat max if one survived, else IISS."""
    placemat = published["troops"].notna() & (published["troops"] == published["troops_afghan_final"])
    return pd.Series(np.where(placemat, "placemat", "iiss"), index=published.index)


def _no_iiss_years(published: pd.DataFrame) -> set[int]:
    """Years in which the published IISS deployment column is zero or missing for every state.

    Such a year has no IISS edition behind it (data year 2014), so its zeros are missing data.
    """
    listed = published.groupby("year")["troops_afghan_total"].apply(lambda s: bool((s.fillna(0) > 0).any()))
    return set(listed.index[~listed])


def _troop_reason(row, no_iiss: set[int], rtol: float) -> str:
    """Why the troop figures of one state-year in both panels differ."""
    reb, pub = row.troops_rebuilt, row.troops_published
    reb_src, pub_src = row.rebuilt_source, row.published_source
    if pub == 0 and reb > 0:
        return NO_IISS_YEAR if row.year in no_iiss else FALSE_ZERO
    if reb == 0 and pub > 0:
        if pub_src == "placemat":
            return MAX_VS_NEAREST
        if row.pub_unama > 0 and abs(pub - row.pub_unama) <= rtol * pub:
            return UNAMA
        return MERGE_LOST if reb_src == "placemat" else PUB_IISS_ONLY
    if pub_src == "placemat" and reb_src == "placemat":
        isaf_agrees = abs(pub - row.rebuilt_isaf) <= rtol * max(pub, row.rebuilt_isaf)
        return OEF_ADDED if row.rebuilt_oef > 0 and isaf_agrees else MAX_VS_NEAREST
    if pub_src == "iiss" and reb_src == "placemat":
        return MERGE_LOST
    if pub_src == "placemat":
        return PUB_PLACEMAT_REB_IISS
    if row.pub_unama > 0 and abs(pub - row.pub_unama - reb) <= rtol * pub:
        return UNAMA
    return IISS_CODING


def compare_contributions(
    rebuilt: pd.DataFrame,
    published: pd.DataFrame,
    names: pd.DataFrame | None = None,
    rtol: float = RTOL,
) -> pd.DataFrame:
    """Every state-year where rebuilt and published troops or share disagree, with a reason.

    Parameters
    ----------
    rebuilt : DataFrame
        The rebuilt panel (``panel`` schema).
    published : DataFrame
        The published panel (``published_panel`` schema: original columns plus our names).
    names : DataFrame, optional
        ``ccode`` and ``name`` (the crosswalk); the published ``country`` fills the rest.
    rtol : float
        Relative tolerance: values within ``rtol`` of the larger one agree.

    Returns
    -------
    DataFrame
        One row per disagreeing (ccode, year): both panels' troops, armed forces and
        shares, flags for which of them differ, and ``reason``. The reason is read off the
        columns: published ``troops`` (placemat maximum) against ``troops_afghan_total``
        (IISS) tells where the published figure came from, rebuilt ``troops_source`` where
        ours did; the troop reason wins over a share-only reason, since a different
        numerator already explains a different share.
    """
    key = ["ccode", "year"]
    reb = rebuilt[key + ["troops_afghanistan", "troops_isaf", "troops_oef", "troops_source", "armed_forces",
                         "armed_forces_fallback", "share"]].rename(columns={
        "troops_afghanistan": "troops_rebuilt", "troops_isaf": "rebuilt_isaf", "troops_oef": "rebuilt_oef",
        "troops_source": "rebuilt_source_detail", "armed_forces": "armed_forces_rebuilt", "share": "share_rebuilt"})
    pub = published[key + ["country", "troops_afghanistan", "armed_forces", "share", "troops_afghan_final_ratio",
                           "troops_afghan_unama"]].rename(columns={
        "troops_afghanistan": "troops_published", "armed_forces": "armed_forces_published",
        "share": "share_published", "troops_afghan_final_ratio": "published_ratio", "troops_afghan_unama": "pub_unama"})
    pub["published_source"] = _published_source(published).to_numpy()
    both = reb.merge(pub, on=key, how="outer", indicator="in_panels")
    both["rebuilt_source"] = both["rebuilt_source_detail"].astype("string").str.split().str[0].fillna("none")
    for col in ("rebuilt_isaf", "rebuilt_oef", "pub_unama"):
        both[col] = both[col].astype("float64").fillna(0.0)

    both["troops_differ"] = _differs(both["troops_rebuilt"], both["troops_published"], rtol)
    infinite = np.isinf(both["published_ratio"].astype("float64"))
    both["share_differ"] = _differs(both["share_rebuilt"], both["share_published"], rtol) | infinite
    both["armed_forces_differ"] = _differs(both["armed_forces_rebuilt"], both["armed_forces_published"], rtol)
    only = both["in_panels"] != "both"
    out = both[only | both["troops_differ"] | both["share_differ"]].copy()

    no_iiss = _no_iiss_years(published)
    reasons = []
    for row in out.itertuples(index=False):
        if row.in_panels == "left_only":
            reasons.append(ONLY_REBUILT)
        elif row.in_panels == "right_only":
            reasons.append(ONLY_PUBLISHED)
        elif row.troops_differ:
            reasons.append(_troop_reason(row, no_iiss, rtol))
        elif np.isinf(row.published_ratio):
            reasons.append(INFINITE_SHARE)
        elif row.armed_forces_differ:
            reasons.append(DENOMINATOR)
        else:
            reasons.append(OTHER)
    out["reason"] = reasons
    out["troops_difference"] = out["troops_rebuilt"].astype("float64") - out["troops_published"].astype("float64")

    name = out["country"].astype("string")
    if names is not None:
        lookup = names.set_index("ccode")["name"].astype("string")
        name = out["ccode"].map(lookup).astype("string").fillna(name)
    out["name"] = name
    columns = ["ccode", "year", "name", "reason", "troops_rebuilt", "troops_published", "troops_difference",
               "share_rebuilt", "share_published", "armed_forces_rebuilt", "armed_forces_published",
               "troops_differ", "share_differ", "armed_forces_differ", "rebuilt_source_detail", "published_source"]
    return out[columns].sort_values(key, kind="mergesort").reset_index(drop=True)


def reason_counts(disagreements: pd.DataFrame) -> pd.DataFrame:
    """State-years by reason (rows) and year (columns), with a total column, largest first."""
    table = pd.crosstab(disagreements["reason"], disagreements["year"])
    table["total"] = table.sum(axis=1)
    return table.sort_values("total", ascending=False, kind="mergesort")


def biggest_disagreements(disagreements: pd.DataFrame, n: int = 25) -> pd.DataFrame:
    """The ``n`` state-years in both panels with the largest absolute troop difference."""
    shown = disagreements.dropna(subset=["troops_difference"])
    order = shown["troops_difference"].abs().sort_values(ascending=False, kind="mergesort").index
    return shown.loc[order[:n], ["name", "year", "reason", "troops_rebuilt", "troops_published", "troops_difference",
                                 "share_rebuilt", "share_published"]].reset_index(drop=True)


def zero_replacements(troops: pd.DataFrame, observations: pd.DataFrame, names: pd.DataFrame) -> pd.DataFrame:
    """Every nation-year where a printed 0 ISAF yielded to the other source's positive figure.

    ``troops`` is troops_country_year (its ``isaf_zero_replaced`` flag), ``observations`` is
    troop_observations (every placemat and IISS ISAF figure that year, shown so the reader
    sees what the 0 stood against), ``names`` maps ccode to name.
    """
    cases = troops.loc[troops["isaf_zero_replaced"].astype(bool), ["ccode", "year", "troops_isaf", "troops_source"]]
    isaf = observations[observations["mission"] == "ISAF"]
    placemat = isaf[isaf["source"] == "placemat"].groupby(["ccode", "year"])["troops"].agg(
        placemat_snapshots="size", placemat_min="min", placemat_max="max")
    iiss = isaf[isaf["source"] == "iiss"].groupby(["ccode", "year"])["troops"].sum().rename("iiss_isaf")
    out = cases.merge(names, on="ccode", how="left").join(placemat, on=["ccode", "year"]).join(iiss, on=["ccode", "year"])
    columns = ["ccode", "name", "year", "troops_isaf", "troops_source", "placemat_snapshots", "placemat_min",
               "placemat_max", "iiss_isaf"]
    return out[columns].sort_values(["ccode", "year"]).reset_index(drop=True)


def allies_by_universe(panel: pd.DataFrame) -> pd.DataFrame:
    """Per year: states (excl. the US) allied with the US in the build's universe and in 'all'."""
    others = panel[~panel["us"].astype(bool)]
    table = others.groupby("year").agg(
        allied_default=("us_ally", lambda s: int(s.astype(bool).sum())),
        allied_all=("us_ally_all", lambda s: int(s.astype(bool).sum())),
    )
    table.loc["total"] = table.sum()
    return table.T.rename(index={"allied_default": "us_ally", "allied_all": "us_ally_all"}).rename_axis("column")


def alliances_outside_universe(membership: pd.DataFrame, panel: pd.DataFrame, items: pd.DataFrame,
                               universe: str) -> pd.DataFrame:
    """The US alliances of the 'all' universe that ``universe`` leaves out.

    One row per alliance: its ATOP alliance-level flags, membership rows and states, and the
    state-years that are not allied under ``universe`` (no other alliance of it covers them).
    """
    left_out = membership[~in_universe(membership, universe)]
    allied = set(zip(panel.loc[panel["us_ally"].astype(bool), "ccode"], panel.loc[panel["us_ally"].astype(bool), "year"]))
    lost = [(c, y) not in allied for c, y in zip(left_out["ccode"], left_out["year"])]
    abb = panel.drop_duplicates("ccode").set_index("ccode")["stateabb"]
    grouped = left_out.assign(lost=lost).groupby("atopid")
    table = pd.DataFrame({
        "years": grouped["year"].agg(lambda s: f"{s.min()}-{s.max()}"),
        "rows": grouped.size(),
        "states": grouped["ccode"].nunique(),
        "state_years_no_longer_allied": grouped["lost"].sum().astype(int),
    })
    no_longer = left_out.assign(lost=lost).query("lost").groupby("atopid")["ccode"]
    table["states_no_longer_allied"] = no_longer.agg(
        lambda s: ", ".join(str(abb.get(c, c)) for c in sorted(s.unique())[:10]) + (" ..." if s.nunique() > 10 else ""))
    flags = items.set_index("atopid")[["begyr", "defense", "offense", "nonagg", "consul"]]
    return flags.join(table, how="inner").reset_index()


def universe_alliances(membership: pd.DataFrame, items: pd.DataFrame, universe: str) -> pd.DataFrame:
    """The US alliances of ``universe``: years, phases in force, states, and their depth items of note.

    Shows ``milinst`` with the phase it comes from next to the phases the membership rows are
    in, so a mismatch between the item's phase and the phases in force is visible.
    """
    rows = membership[in_universe(membership, universe)]
    grouped = rows.groupby("atopid")
    table = pd.DataFrame({
        "years": grouped["year"].agg(lambda s: f"{s.min()}-{s.max()}"),
        "phases_in_force": grouped["phase"].agg(lambda s: ", ".join(str(v) for v in sorted(s.unique()))),
        "states": grouped["ccode"].nunique(),
        "state_years": grouped.size(),
    })
    columns = ["begyr", "defense", "offense", "milinst", "milinst_phase", "base", "organ1", "bc_depth"]
    return items.set_index("atopid")[columns].join(table, how="inner").reset_index()


def exclusions_by_source(exclusions: pd.DataFrame) -> pd.DataFrame:
    """Excluded raw rows per source file and reason, the sources ordered by rows excluded."""
    totals = exclusions.groupby("source")["n_rows"].transform("sum")
    ordered = exclusions.assign(_total=totals).sort_values(["_total", "source", "n_rows"], ascending=[False, True, False],
                                                           kind="mergesort")
    return ordered[["source", "reason", "n_rows"]].reset_index(drop=True)


def missingness_by_year(panel: pd.DataFrame, columns=KEY_COLUMNS) -> pd.DataFrame:
    """Percent of state-years with an empty cell, per key column (rows) and year (columns)."""
    table = panel.groupby("year")[list(columns)].apply(lambda g: g.isna().mean() * 100).T
    table.columns.name = "year"
    table.index.name = "column"
    return table.round(1)


def plot_coverage(coverage: pd.DataFrame) -> plt.Figure:
    """Left: states, contributors, defined shares, fallbacks; right: contributors by troop source."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    years = coverage.index.to_numpy()
    for column, label in (("states", "states (excl. US)"), ("share_defined", "share defined"),
                          ("contributors", "troops > 0 (excl. US)"), ("contributors_incl_us", "troops > 0 (incl. US)"),
                          ("armed_forces_fallback", "armed forces from COW fallback")):
        left.plot(years, coverage[column], marker="o", label=label)
    left.set(title="Coverage of the rebuilt panel", xlabel="year", ylabel="state-years")
    left.legend(fontsize=8)
    right.bar(years, coverage["source_iiss"], label="IISS Military Balance")
    right.bar(years, coverage["source_placemat"], bottom=coverage["source_iiss"], label="NATO placemat")
    right.set(title="Contributors by source of the troop figure", xlabel="year", ylabel="states with troops > 0")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_contributors(coverage: pd.DataFrame, published: pd.DataFrame) -> plt.Figure:
    """Contributor count and non-US troop total per year, rebuilt against published."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    left.plot(coverage.index, coverage["contributors"], marker="o", label="rebuilt")
    left.plot(published.index, published["contributors"], marker="s", linestyle="--", label="published")
    left.set(title="States with troops in Afghanistan (excl. US)", xlabel="year", ylabel="states")
    left.legend()
    right.plot(coverage.index, coverage["troops_excl_us"] / 1000, marker="o", label="rebuilt")
    right.plot(published.index, published["troops_excl_us"] / 1000, marker="s", linestyle="--", label="published")
    right.set(title="Non-US troops in Afghanistan", xlabel="year", ylabel="thousand troops")
    right.legend()
    fig.tight_layout()
    return fig


def plot_reason_heatmap(counts: pd.DataFrame) -> plt.Figure:
    """Heatmap of disagreeing state-years by reason and year, each cell annotated with its count."""
    grid = counts.drop(columns="total")
    fig, ax = plt.subplots(figsize=(13, 0.55 * len(grid) + 2))
    image = ax.imshow(grid.to_numpy(), aspect="auto", cmap="Oranges")
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [f"{r} ({t})" for r, t in zip(grid.index, counts["total"])], fontsize=8)
    top = grid.to_numpy().max() if grid.size else 0
    for (i, j), value in np.ndenumerate(grid.to_numpy()):
        if value:
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                    color="white" if value > top / 2 else "black")
    ax.set(title="Published vs rebuilt: disagreeing state-years by reason and year", xlabel="year")
    fig.colorbar(image, ax=ax, label="state-years")
    fig.tight_layout()
    return fig


def plot_missingness(missing: pd.DataFrame) -> plt.Figure:
    """Heatmap of percent missing per key panel column and year."""
    fig, ax = plt.subplots(figsize=(11, 0.4 * len(missing) + 1.8))
    image = ax.imshow(missing.to_numpy(), aspect="auto", cmap="Blues", vmin=0, vmax=100)
    ax.set_xticks(range(missing.shape[1]), [str(c) for c in missing.columns])
    ax.set_yticks(range(missing.shape[0]), list(missing.index))
    for (i, j), value in np.ndenumerate(missing.to_numpy()):
        if value:
            ax.text(j, i, f"{value:.1f}" if value < 1 else f"{value:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if value > 50 else "black")
    ax.set(title="Rebuilt panel: % of state-years missing", xlabel="year")
    fig.colorbar(image, ax=ax, label="% missing")
    fig.tight_layout()
    return fig


def _save(fig: plt.Figure, path: Path) -> None:
    """Write a PNG without timestamps, so reruns give the same bytes."""
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def write_data_report(tables_dir: Path, out_dir: Path) -> Path:
    """Write ``out_dir/report.md``, its figures and ``published_vs_rebuilt.csv``; return the report path.

    Parameters
    ----------
    tables_dir : Path
        Folder of the derived tables (``panel.csv``, ``published_panel.csv``,
        ``crosswalk.csv``, ``exclusions.csv``).
    out_dir : Path
        Output folder; figures go to ``out_dir/figures/`` under fixed names.
    """
    tables_dir, out_dir = Path(tables_dir), Path(out_dir)
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    panel = load_table("panel", tables_dir)
    # read without the COW-code check: the published panel keeps its own codes (0 = Republika
    # Srpska, 817 Vietnam, 665), which load_table would reject
    published = read_table(tables_dir / "published_panel.csv", SCHEMAS["published_panel"])
    crosswalk = load_table("crosswalk", tables_dir)
    exclusions = pd.read_csv(tables_dir / "exclusions.csv")
    universe = json.loads((tables_dir / "panel.meta.json").read_text())["rules"]["alliance_universe"]
    replaced = zero_replacements(load_table("troops_country_year", tables_dir), load_table("troop_observations", tables_dir),
                                 crosswalk[["ccode", "name"]])
    allies = allies_by_universe(panel)
    membership, items = load_table("us_alliance_membership", tables_dir), load_table("alliance_items", tables_dir)
    outside = alliances_outside_universe(membership, panel, items, universe)
    inside = universe_alliances(membership, items, universe)

    coverage = coverage_table(panel)
    pub_contrib = published_contributors(published)
    disagreements = compare_contributions(panel, published, crosswalk[["ccode", "name"]])
    disagreements.to_csv(out_dir / "published_vs_rebuilt.csv", index=False, float_format="%.10g", lineterminator="\n")
    counts = reason_counts(disagreements)
    missing = missingness_by_year(panel)

    _save(plot_coverage(coverage), figures / FIGURES["coverage"])
    _save(plot_contributors(coverage, pub_contrib), figures / FIGURES["contributors"])
    _save(plot_reason_heatmap(counts), figures / FIGURES["disagreements"])
    _save(plot_missingness(missing), figures / FIGURES["missingness"])

    n_all = len(disagreements)
    in_both = ~disagreements["reason"].isin([ONLY_REBUILT, ONLY_PUBLISHED])
    n_both = int(in_both.sum())
    n_troops = int((in_both & disagreements["troops_differ"]).sum())
    n_false_zero = int((disagreements["reason"] == FALSE_ZERO).sum())
    only_reb = disagreements["reason"] == ONLY_REBUILT
    only_reb_troops = int((only_reb & (disagreements["troops_rebuilt"] > 0)).sum())
    n_common = len(panel.merge(published[["ccode", "year"]], on=["ccode", "year"]))

    text = [
        "# Data report: rebuilt panel vs the published Gannon & Kent panel",
        "",
        "Generated by `allypot data report` (`allypot.data.report.write_data_report`) from the derived tables; "
        "do not edit by hand.",
        "",
        "## Summary",
        "",
        f"- Rebuilt panel: {len(panel)} state-years; published panel: {len(published)}; in both: {n_common}.",
        f"- **{n_all} state-years disagree** on the contribution variables (troops in Afghanistan or share of armed "
        f"forces, relative tolerance {RTOL:.0%} of the larger value; a missing value against a number disagrees): "
        f"{n_both} of the {n_common} state-years in both panels ({n_troops} with different troop figures, "
        f"{n_false_zero} of them published false zeros), plus {int(only_reb.sum())} only in the rebuilt panel "
        f"({only_reb_troops} with troops > 0) and {int((disagreements['reason'] == ONLY_PUBLISHED).sum())} only in "
        "the published one.",
        "- The full list, with both values and the reason, is `published_vs_rebuilt.csv` next to this report.",
        "- Rebuilt contributors (troops > 0, excl. US) per year: "
        + ", ".join(f"{y}: {c}" for y, c in coverage["contributors"].items()) + ".",
        "",
        "## Coverage by year",
        "",
        "States exclude the US; `contributors` = states with troops > 0; `source_*` count contributors by where their "
        "troop figure comes from (rebuilt `troops_source`: NATO placemat snapshot nearest 1 December, or the IISS "
        "Military Balance edition of the following year).",
        "",
        markdown_table(coverage, index=True),
        "",
        f"![coverage](figures/{FIGURES['coverage']})",
        "",
        "## Contributors by year",
        "",
        f"![contributors](figures/{FIGURES['contributors']})",
        "",
        markdown_table(pd.concat({"rebuilt": coverage[["contributors", "troops_excl_us"]], "published": pub_contrib},
                            axis=1).set_axis(["rebuilt contributors", "rebuilt troops excl. US",
                                              "published contributors", "published troops excl. US"], axis=1), index=True),
        "",
        "## Published vs rebuilt: cell-level comparison",
        "",
        f"Compared: `troops_afghanistan` (published `troops_afghan_final`) and `share` (published "
        f"`troops_afghan_final_ratio`) for every (ccode, year). Two values agree when both are missing or they differ "
        f"by at most {RTOL:.0%} of the larger; an infinite published ratio counts as a disagreement. Each "
        "disagreeing state-year gets one reason, the first of these that fits, read off the data: the published "
        "figure's origin is the placemat maximum where the published `troops` column survived the merge and equals "
        "`troops_afghan_final`, IISS `troops_afghan_total` otherwise; the rebuilt one's is `troops_source`. A year "
        "whose published IISS column is zero for every state has no IISS edition behind it.",
        "",
        markdown_table(counts, index=True),
        "",
        f"![disagreements](figures/{FIGURES['disagreements']})",
        "",
        "### The 25 largest troop disagreements",
        "",
        markdown_table(biggest_disagreements(disagreements), index=False),
        "",
        "## Printed zeros that yield to a positive figure",
        "",
        "Rule `zero_yields_to_positive` (`data/build_config.toml` [troops], where its reason is given): when the "
        "source chosen for a nation-year prints 0 ISAF troops and the other source gives a positive figure, the "
        f"positive figure is used. It applies to {len(replaced)} nation-years, all listed here with every ISAF "
        "figure of that year (placemat snapshots: how many list the nation, lowest and highest figure; IISS: the "
        "edition's ISAF figure).",
        "",
        markdown_table(replaced, index=False) if len(replaced) else "(none)",
        "",
        "## US alliance universe",
        "",
        f"`us_ally` and `n_us_alliances` follow the universe `{universe}` (`data/build_config.toml` [alliances]); "
        "`us_ally_all` counts every ATOP alliance shared with the US. State-years allied with the US (excl. the US): "
        f"{allies.loc['us_ally', 'total']} under `{universe}`, {allies.loc['us_ally_all', 'total']} under `all`; "
        f"{int((panel['us_ally_all'].astype(bool) & ~panel['us_ally'].astype(bool)).sum())} state-years are allied only "
        "under `all`.",
        "",
        markdown_table(allies, index=True),
        "",
        f"Alliances shared with the US that `{universe}` leaves out (flags: ATOP alliance-level obligations; "
        "`state_years_no_longer_allied`: state-years with no other alliance of the universe; a state-year left out "
        "by several of these alliances counts under each):",
        "",
        markdown_table(outside, index=False) if len(outside) else "(none)",
        "",
        f"US alliances of `{universe}` (`milinst`: Leeds & Anac military institutionalisation of phase "
        "`milinst_phase`, rule `[alliances] milinst_phase`; `phases_in_force`: the phases of the membership rows; "
        "`bc_depth`: Benson & Clinton's score, empty for alliances they did not score):",
        "",
        markdown_table(inside, index=False),
        "",
        "## Excluded raw rows",
        "",
        f"{len(exclusions)} documented exclusions, {int(exclusions['n_rows'].sum())} rows in all "
        "(`exclusions.csv`; examples there).",
        "",
        markdown_table(exclusions.groupby("source")["n_rows"].agg(["size", "sum"])
                  .set_axis(["reasons", "rows"], axis=1).sort_values("rows", ascending=False), index=True),
        "",
        markdown_table(exclusions_by_source(exclusions), index=False),
        "",
        "## Missingness of key panel columns (% of state-years)",
        "",
        markdown_table(missing, index=True),
        "",
        f"![missingness](figures/{FIGURES['missingness']})",
        "",
    ]
    path = out_dir / "report.md"
    path.write_text("\n".join(text))
    return path
