"""``allypot replicate``: Table 1 on the published panel and on the rebuilt panel, side by side.

The published panel carries the paper's own alliance potential (``pot_gain``). The rebuilt
panel carries none, because in this project potential is a model quantity. To run the same
regressions on it we compute the **plug-in potential**, i.e. the paper's two-step estimator on
our data, by the one plug-in estimator that the plug-in mode of ``compare`` also uses
(:func:`~allypot.models.potential.plugin_estimate`): posterior means of depth and preference
from the measurement model (Parts A-C), then the least-squares projection on all rows. OLS on
the rebuilt panel therefore treats an estimate as if it were data: its standard errors ignore
the measurement uncertainty, exactly as the published ones do. The joint and cut modes of
``allypot compare`` are the remedy; this command is only the like-for-like replication.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from allypot.inference.replicate import (
    compare_to_paper,
    format_table1,
    replicate_table1,
)
from allypot.models.inputs import DEFAULT_ITEM_SET, DEFAULT_UNIVERSE, us_alliances_in_universe, with_universe_allies
from allypot.models.potential import plugin_estimate
from allypot.models.sample import NON_CONTRIBUTORS

from allypot.markdown import markdown_table

KEY = ["ccode", "year"]
# the rebuilt panel's source column for each term replicate.py expects (documented in
# rebuilt_for_replication; democracy and potential are derived, not copied)
COPIED_COLUMNS = {
    "share": "share",
    "un_agreement_us": "un_agreement_share",
    "casualties_annual": "casualties",
    "us_ally": "us_ally",
    "cinc": "cinc",
    "gdp": "gdp",
    "gdp_per_capita": "gdp_per_capita",
    "dist_kabul_km": "dist_kabul_km",
}
# the paper's "dem" dummy is Polity IV democ >= 6; our sources carry only polity2
DEMOCRACY_THRESHOLD = 6
# a light measurement fit: enough for stable posterior means of depth and preference,
# which is all the plug-in estimator uses
LIGHT_SAMPLER = {"backend": "nutpie", "chains": 2, "draws": 300, "tune": 300, "target_accept": 0.9}
PLUGIN_NOTE = (
    "Note: the rebuilt panel has no published potential; its 'Alliance Potential' is the plug-in "
    "potential (posterior means of depth and UN-agreement preference from the measurement model, "
    "then the least-squares projection, as the paper's two-step). OLS standard errors and Bambi "
    "intervals on the rebuilt panel therefore ignore the measurement uncertainty of potential. "
    "Rebuilt 'Democracy' = 1[polity2 >= 6], an approximation of the paper's 1[democ >= 6]."
)


def rebuilt_for_replication(panel: pd.DataFrame, potential: pd.DataFrame) -> pd.DataFrame:
    """Give the rebuilt panel the columns :mod:`~allypot.inference.replicate` expects.

    Correspondence (paper variable -> rebuilt source):

    - ``share`` <- ``share`` (troops in Afghanistan / active armed forces);
    - ``potential`` <- the caller's plug-in potential, joined on (ccode, year);
    - ``un_agreement_us`` (``pctagreeus``) <- ``un_agreement_share`` (votes agreeing with the US
      / votes both cast), the same definition;
    - ``democracy`` (``dem`` = Polity IV ``democ >= 6``) <- ``1[polity2 >= 6]``. Our sources carry
      polity2 (democ - autoc), not democ, so this is an approximation: polity2 >= 6 is the
      conventional democracy cut and implies democ >= 6, but a few states with democ >= 6 and
      some autocratic traits fall below it. Missing polity2 stays missing;
    - ``casualties_annual`` <- ``casualties`` (deaths that year, not cumulative);
    - ``us_ally`` as the caller's panel has it (:func:`run_replication` recomputes it for the
      alliance universe of the plug-in measurement);
    - ``cinc``, ``gdp``, ``gdp_per_capita``, ``dist_kabul_km`` as they are (logs of GDP
      are taken by replicate.py; GDP units differ from the paper's, which only shifts the
      intercept).

    Afghanistan, the US and Iceland are left in: replicate.py's sample rule drops them, as the paper did.

    Parameters
    ----------
    panel : DataFrame
        The rebuilt panel (``data/tables/panel.csv``).
    potential : DataFrame
        ccode, year, potential (other columns are ignored).

    Returns
    -------
    DataFrame
        ccode, year and the replication columns. State-years that have an outcome but no
        potential are not dropped here (each regression's complete-case rule drops them);
        they are counted in ``attrs["missing_potential"]`` and reported with a warning, so a
        join that lost rows cannot pass unnoticed.
    """
    missing = [c for c in [*KEY, "polity2", *COPIED_COLUMNS.values()] if c not in panel.columns]
    if missing:
        raise ValueError(f"rebuilt panel lacks column(s) {missing}")
    if not {"ccode", "year", "potential"} <= set(potential.columns):
        raise ValueError("potential frame needs columns ccode, year, potential")
    if potential.duplicated(KEY).any():
        raise ValueError("potential frame has duplicate (ccode, year) rows")
    out = panel[KEY].astype("int64").copy()
    for target, source in COPIED_COLUMNS.items():
        out[target] = panel[source].astype("float64").to_numpy()
    polity = panel["polity2"].astype("float64")
    out["democracy"] = (polity >= DEMOCRACY_THRESHOLD).astype("float64").where(polity.notna()).to_numpy()
    pot = potential[[*KEY, "potential"]].astype({"ccode": "int64", "year": "int64"})
    out = out.merge(pot, on=KEY, how="left", validate="one_to_one")
    usable = out["share"].notna() & ~out["ccode"].isin(list(NON_CONTRIBUTORS))
    lacking = out[usable & out["potential"].isna()]
    out.attrs["missing_potential"] = len(lacking)
    if len(lacking):
        warnings.warn(
            f"{len(lacking)} rebuilt state-years with an outcome have no plug-in potential "
            f"(e.g. {lacking[KEY].head(3).to_numpy().tolist()}); every specification drops them",
            stacklevel=2,
        )
    return out


def measurement_config(seed: int, alliance_universe: str = DEFAULT_UNIVERSE, item_set: str = DEFAULT_ITEM_SET) -> dict:
    """The resolved config of the light measurement fit: baseline spec (widest sample)."""
    from allypot.inference.config import resolve_config

    return resolve_config({"run": {"name": "replicate", "seed": seed},
                           "model": {"specification": "baseline", "alliance_universe": alliance_universe,
                                     "items": item_set},
                           "sampler": dict(LIGHT_SAMPLER)})


def plugin_frame(inputs, measurement_posterior, projection: str) -> pd.DataFrame:
    """Plug-in depth, preference and potential per state-year of ``inputs`` (the shared
    estimator :func:`~allypot.models.potential.plugin_estimate`)."""
    estimate = plugin_estimate(measurement_posterior, inputs.us_ally, projection)
    return inputs.rows[KEY].reset_index(drop=True).assign(
        depth=estimate.depth, pref=estimate.pref, potential=estimate.potential)


def _from_run(potential_run: Path, tables_dir: Path, alliance_universe: str) -> pd.DataFrame | None:
    """Plug-in potential from a saved run's measurement posterior, or None if it has none."""
    from allypot.inference.fit import load_inputs
    from allypot.inference.runs import load_run

    idata, config, _ = load_run(potential_run)
    group = next((g for g in ("measurement", "posterior") if g in idata.children
                  and {"depth", "pref_row"} <= set(idata[g].data_vars)), None)
    if group is None:
        return None
    if config["model"]["alliance_universe"] != alliance_universe:
        raise ValueError(f"{potential_run}: its alliance universe is {config['model']['alliance_universe']!r}, "
                         f"the replication's {alliance_universe!r}; pass the same universe")
    inputs = load_inputs(config, tables_dir)
    post = idata[group]
    if post.sizes["row"] != len(inputs.rows):
        raise ValueError(f"{potential_run}: posterior has {post.sizes['row']} rows but its config's inputs "
                         f"have {len(inputs.rows)}; the tables changed since the run")
    print(f"plug-in potential from the measurement posterior of {potential_run} ({group} group)")
    return plugin_frame(inputs, post, config["model"]["projection"])


def plugin_potential(tables_dir: Path, seed: int, potential_run: Path | None = None, progress: bool = True,
                     alliance_universe: str = DEFAULT_UNIVERSE, item_set: str = DEFAULT_ITEM_SET) -> pd.DataFrame:
    """Plug-in potential per rebuilt state-year (ccode, year, depth, pref, potential).

    Uses the measurement posterior of ``potential_run`` when that run folder has one;
    otherwise fits the measurement model (Parts A-C) with :data:`LIGHT_SAMPLER` on the
    baseline specification, whose sample (every state-year of the sample rule with an
    outcome) is the widest, so every specification of Table 1 finds its rows.
    """
    from allypot.inference.config import model_options, priors_from_config
    from allypot.inference.fit import load_inputs
    from allypot.inference.modes import fit_measurement

    if potential_run is not None:
        frame = _from_run(Path(potential_run), tables_dir, alliance_universe)
        if frame is not None:
            return frame
        print(f"{potential_run} holds no measurement posterior (depth, pref_row); fitting the measurement model")
    config = measurement_config(seed, alliance_universe, item_set)
    inputs = load_inputs(config, tables_dir)
    s = config["sampler"]
    print(f"fitting the measurement model for the plug-in potential: {len(inputs.rows)} state-years, "
          f"{len(inputs.alliances)} alliances, {s['chains']} chains x {s['draws']} draws ({s['tune']} tune), seed {seed}")
    result = fit_measurement(inputs, model_options(config), priors_from_config(config), config, progress)
    print(f"measurement fit: {result.timings['measurement_sampling_s']:.0f} s, "
          f"{result.info['measurement_divergences']} divergences")
    return plugin_frame(inputs, result.idata["posterior"], config["model"]["projection"])


def compare_measures(published: pd.DataFrame, potential: pd.DataFrame, panel: pd.DataFrame) -> pd.DataFrame:
    """Plug-in measures vs the published panel's, on the state-years both have.

    A rebuilt coefficient that differs from the paper's is explained first by its regressor:
    this lists the correlation of our depth, preference and potential with the published
    ``alliance_depth``, ``un_agreement_us`` and ``potential``, and how often the two US-ally
    codings agree.
    """
    ours = potential.merge(panel[[*KEY, "us_ally"]].rename(columns={"us_ally": "our_ally"}), on=KEY)
    pub = published[[*KEY, "alliance_depth", "un_agreement_us", "potential", "us_ally"]].dropna(subset=KEY)
    both = pub.astype({"ccode": "int64", "year": "int64"}).merge(ours, on=KEY, suffixes=("_published", ""))
    allied = both[(both["us_ally"] == 1) & both["our_ally"].astype(bool)]
    pairs = [
        ("depth vs alliance_depth (all common state-years)", both, "depth", "alliance_depth"),
        ("depth vs alliance_depth (allied in both codings)", allied, "depth", "alliance_depth"),
        ("pref vs un_agreement_us", both, "pref", "un_agreement_us"),
        ("potential vs published potential", both, "potential", "potential_published"),
    ]
    # a caller-supplied potential may carry no depth or pref: those rows are skipped
    rows = [{"comparison": label, "n": int(frame[[a, b]].dropna().shape[0]), "correlation": float(frame[a].corr(frame[b]))}
            for label, frame, a, b in pairs if a in frame.columns]
    ally = both.dropna(subset=["us_ally"])
    for pub_ally, our_ally in [(1, True), (0, True), (1, False)]:
        n = int(((ally["us_ally"] == pub_ally) & (ally["our_ally"].astype(bool) == our_ally)).sum())
        rows.append({"comparison": f"state-years: published us_ally={pub_ally}, rebuilt us_ally={int(our_ally)}",
                     "n": n, "correlation": np.nan})
    return pd.DataFrame(rows)


def potential_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The alliance-potential rows of a Table 1 result, wide enough to read at a glance."""
    rows = table[table["term"] == "potential"][["spec", "panel", "method", "estimate", "lower", "upper", "n"]]
    return rows.reset_index(drop=True)


def run_replication(
    tables_dir: Path,
    out_dir: Path,
    bayes: bool = True,
    draws: int = 1000,
    seed: int = 20011007,
    potential_run: Path | None = None,
    potential: pd.DataFrame | None = None,
    chains: int = 4,
    progress: bool = True,
    alliance_universe: str = DEFAULT_UNIVERSE,
    item_set: str = DEFAULT_ITEM_SET,
) -> pd.DataFrame:
    """Table 1, published vs rebuilt panel, OLS and (if ``bayes``) Bambi; print and save it.

    Parameters
    ----------
    tables_dir, out_dir : Path
        Derived tables; where ``table1.md``, ``table1.csv`` and ``plugin_potential.csv`` go.
    bayes : bool
        Also fit the Bambi twin of every column (``draws`` draws and as many tuning steps).
    seed : int
        Seeds the measurement fit and Bambi.
    potential_run : Path, optional
        A run folder whose measurement posterior supplies the plug-in potential.
    potential : DataFrame, optional
        A ready plug-in potential (ccode, year, potential), e.g. in tests; skips the fit.
    alliance_universe, item_set : str
        The measurement choices (:mod:`allypot.models.inputs`); the universe also recodes the
        rebuilt panel's ``us_ally`` control.

    Returns
    -------
    DataFrame
        The tidy result of :func:`~allypot.inference.replicate.replicate_table1`.
    """
    from allypot.data.pipeline.published import PUBLISHED_SCHEMA
    from allypot.data.loaders import load_table
    from allypot.data.schema import read_table

    tables_dir, out_dir = Path(tables_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # no COW-code check: the published panel keeps the paper's own codes (0, 665, 817 ...)
    published = read_table(tables_dir / "published_panel.csv", PUBLISHED_SCHEMA)
    us_alliances = us_alliances_in_universe(load_table("us_alliance_membership", tables_dir), alliance_universe)
    rebuilt_panel = with_universe_allies(load_table("panel", tables_dir), us_alliances)
    if potential is None:
        potential = plugin_potential(tables_dir, seed, potential_run, progress, alliance_universe, item_set)
    potential.to_csv(out_dir / "plugin_potential.csv", index=False)
    rebuilt = rebuilt_for_replication(rebuilt_panel, potential)
    print("fitting Table 1 (" + ("OLS and Bambi" if bayes else "OLS") + ") on the published and rebuilt panels")
    table = replicate_table1({"published": published, "rebuilt": rebuilt}, bayes=bayes, draws=draws,
                             chains=chains, seed=seed)
    table.to_csv(out_dir / "table1.csv", index=False)
    paper = compare_to_paper(table)
    measures = compare_measures(published, potential, rebuilt_panel)
    text = "\n\n".join([
        "# Table 1 of Gannon & Kent (2020): published vs rebuilt panel",
        PLUGIN_NOTE,
        f"Rebuilt state-years with an outcome but no plug-in potential: {rebuilt.attrs['missing_potential']}.",
        format_table1(table),
        "## Alliance-potential coefficient (95% interval, N)",
        markdown_table(potential_rows(table), floatfmt="{:.4f}"),
        "## Published panel vs the printed table (OLS)",
        markdown_table(paper, floatfmt="{:.4f}"),
        "## Plug-in measures vs the published panel's (common state-years)",
        markdown_table(measures, floatfmt="{:.4f}"),
    ]) + "\n"
    (out_dir / "table1.md").write_text(text)
    print(text)
    print(f"written: {out_dir / 'table1.md'}, {out_dir / 'table1.csv'}, {out_dir / 'plugin_potential.csv'}")
    return table
